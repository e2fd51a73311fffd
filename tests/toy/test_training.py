from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from revcurse.data.toy import MASK_ID, make_forward_dataset
from revcurse.toy.train import EMA, TrainConfig, next_token_loss, stratified_uniform, train, training_loss


class FixedLogits(torch.nn.Module):
    """Stands in for a model: the same logits whatever the input."""

    def __init__(self, logits, **cfg):
        super().__init__()
        self.logits = logits
        self.cfg = SimpleNamespace(objective="masked_diffusion", **cfg)

    def forward(self, tokens, rng=None):
        return self.logits.expand(*tokens.shape, -1)


@pytest.mark.parametrize("sampler", ["stratified", "iid"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_masked_diffusion_loss_is_unbiased_for_the_token_ce(sampler, reduction):
    """E_t,mask[(1/t)·Σ_masked CE] is the CE summed over the L positions ('sum', RADD's t_DCE_loss), or
    its mean ('mean'); without 1/t it would be half."""
    torch.manual_seed(0)
    logits = torch.randn(54)
    clean = torch.randint(0, 53, (1, 4000, 8))
    ce = torch.nn.functional.cross_entropy(logits.expand(4000 * 8, -1), clean.flatten()).item()
    rng = [torch.Generator().manual_seed(1)]
    model = FixedLogits(logits, mask_rate_sampler=sampler, loss_reduction=reduction)
    estimates = torch.stack([training_loss(model, clean, MASK_ID, rng) for _ in range(20)])
    assert estimates.mean().item() == pytest.approx(ce * (8 if reduction == "sum" else 1), rel=0.02)


def test_stratified_sampler_spreads_one_draw_per_member_over_the_batch():
    """RADD's Batch_Uniform_Sampler('vdm'): t_i = (u + i/B) mod 1 with one u ~ U(0, 1) per batch and member."""
    seeds, batch = [3, 4], 8
    drawn = stratified_uniform([torch.Generator().manual_seed(s) for s in seeds], batch, "cpu")
    for member, seed in zip(drawn, seeds):
        u = torch.rand(1, generator=torch.Generator().manual_seed(seed)).item()
        assert member.tolist() == pytest.approx([(u + i / batch) % 1 for i in range(batch)], abs=1e-6)
    assert not torch.equal(drawn[0], drawn[1])


def test_next_token_loss_sums_or_averages_over_positions():
    logits, targets = torch.randn(1, 3, 5, 54), torch.randint(0, 53, (1, 3, 5))
    ce = torch.nn.functional.cross_entropy(logits[0].reshape(-1, 54), targets.flatten(), reduction="none").view(3, 5)
    assert next_token_loss(logits, targets, "mean").item() == pytest.approx(ce.mean().item(), rel=1e-6)
    assert next_token_loss(logits, targets, "sum").item() == pytest.approx(ce.sum(-1).mean().item(), rel=1e-6)


def small_run(steps=12, **overrides):
    from revcurse.data.toy import VOCAB_SIZE
    from revcurse.toy.model import ModelConfig

    model = ModelConfig(vocab_size=VOCAB_SIZE, seq_len=5, d_model=16, n_heads=2, dropout=0.1, never_predict=MASK_ID)
    cfg = dict(steps=steps, batch_size=16, lr=1e-2, warmup_steps=3, grad_clip=0.5, weight_decay=0.0,
               ema_decay=0.999, checkpoint_every=4, log_every=2, device="cpu", precision="fp32")
    cfg.update(overrides)
    return model, TrainConfig(**cfg), make_forward_dataset(5).tokens


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    model_cfg, train_cfg, data = small_run()
    uninterrupted = train(model_cfg, train_cfg, data, [7], MASK_ID)

    def kill_at_step_10(state):
        if state.step == 10:
            raise Killed

    resume = tmp_path / "resume.pt"
    with pytest.raises(Killed):
        train(model_cfg, train_cfg, data, [7], MASK_ID, resume_path=resume, fingerprint="x", callbacks=[kill_at_step_10])
    assert torch.load(resume, weights_only=True)["step"] == 8         # last checkpoint before the kill
    resumed = train(model_cfg, train_cfg, data, [7], MASK_ID, resume_path=resume, fingerprint="x")
    for name, tensor in uninterrupted.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for a, b in zip(uninterrupted.ema.shadow, resumed.ema.shadow):
        assert torch.equal(a, b)
    assert uninterrupted.losses == resumed.losses


def test_resume_ignores_a_checkpoint_of_another_configuration(tmp_path):
    model_cfg, train_cfg, data = small_run(steps=4)
    resume = tmp_path / "resume.pt"
    train(model_cfg, small_run(steps=8)[1], data, [7], MASK_ID, resume_path=resume, fingerprint="other")
    fresh = train(model_cfg, train_cfg, data, [7], MASK_ID, resume_path=resume, fingerprint="mine")
    assert fresh.step == 4 and fresh.losses[0]["step"] == 2


def test_every_file_a_run_saves_loads_with_weights_only(tmp_path):
    """model.pt and snapshots.pt hold tensors and plain containers only: torch.load(weights_only=True) (resume.pt:
    test_killed_run_resumes_to_the_same_weights)."""
    from revcurse.core.provenance import provenance
    from revcurse.toy.train import load_run, load_snapshots, save_run, save_snapshots

    model_cfg, train_cfg, data = small_run(steps=4, snapshot_every=2)
    state = train(model_cfg, train_cfg, data, [7], MASK_ID)
    spec = {"preset": "test", "model": "mdm", "length": 5, "seed": 7}
    save_run(tmp_path / "model.pt", state, 0, spec, "x", provenance())
    save_snapshots(tmp_path / "snapshots.pt", state, 0, spec, "x", provenance())
    for name in ("model.pt", "snapshots.pt"):
        torch.load(tmp_path / name, weights_only=True)
    assert load_run(tmp_path / "model.pt")[1]["weights_used"] == "ema"
    assert [step for step, _ in load_snapshots(tmp_path / "snapshots.pt")[0]] == [0, 2, 4]


def test_loss_curve_writes_the_losses_the_run_logged(tmp_path):
    """`python -m revcurse.toy loss-curve` (rule toy_loss_curve): the checkpoint's logged losses, one row per step,
    with the run's name and the code version that trained it."""
    from revcurse.core.provenance import provenance
    from revcurse.toy.__main__ import main
    from revcurse.toy.train import save_run

    model_cfg, train_cfg, data = small_run(steps=4)
    state = train(model_cfg, train_cfg, data, [7], MASK_ID)
    spec = {"preset": "test", "model": "mdm", "length": 5, "seed": 7, "train": {"precision": "bf16"}}
    save_run(tmp_path / "model.pt", state, 0, spec, "x", {**provenance(), "code_version": "trainer"})
    main(["loss-curve", "--model", str(tmp_path / "model.pt"), "--out", str(tmp_path / "loss_curve.parquet")])
    curve = pd.read_parquet(tmp_path / "loss_curve.parquet")
    assert curve["step"].tolist() == [entry["step"] for entry in state.losses]
    assert curve["loss"].tolist() == pytest.approx([entry["loss"] for entry in state.losses])
    assert set(curve["preset"]) == {"test"} and set(curve["seed"]) == {7} and set(curve["code_version"]) == {"trainer"}


def test_a_damaged_resume_file_names_itself_and_the_remedy(tmp_path):
    from revcurse.core.cli import BadInput

    model_cfg, train_cfg, data = small_run(steps=4)
    resume = tmp_path / "resume.pt"
    resume.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(BadInput) as error:
        train(model_cfg, train_cfg, data, [7], MASK_ID, resume_path=resume, fingerprint="x")
    assert str(error.value) == (f"{resume}: not a readable checkpoint (PytorchStreamReader failed reading zip archive: "
                                f"not a ZIP archive); delete it to restart this run from step 0")


# A member trains in a stack (E=2) with the same arithmetic as alone (E=1): forward, backward, its own
# dropout generator, and clip_member_grad_norms adding the per-tensor norms in the same order for
# every E. Anything that mixes members (one clip norm over all of them, a shared dropout generator)
# moves weights by 1e-3 to 1e-1 in these 6 steps, so equality is exact.
@pytest.mark.parametrize("objective", ["masked_diffusion", "next_token"])
def test_member_of_a_stack_trains_like_a_solo_run(objective):
    model_cfg, train_cfg, data = small_run(steps=6)
    if objective == "next_token":
        from dataclasses import replace
        model_cfg = replace(model_cfg, objective="next_token", attention="causal", pos_encoding="learned")
    stacked = train(model_cfg, train_cfg, data, [3, 4], MASK_ID)
    solo = train(model_cfg, train_cfg, data, [4], MASK_ID)
    for name, tensor in solo.model.state_dict().items():
        assert torch.equal(stacked.model.state_dict()[name][1:2], tensor), name


def test_training_reduces_the_loss():
    model_cfg, train_cfg, data = small_run(steps=60, log_every=10)
    losses = [row["loss"] for row in train(model_cfg, train_cfg, data, [0], MASK_ID).losses]
    assert losses[-1] < 0.7 * losses[0]


def test_ema_warmup_follows_the_sedd_schedule():
    param = torch.zeros(3)
    ema = EMA([param], decay=0.9999, warmup=True)
    ema.update([torch.ones(3)])
    decay = min(0.9999, 2 / 11)
    assert torch.allclose(ema.shadow[0], torch.full((3,), 1 - decay))
    constant = EMA([param], decay=0.9999, warmup=False)
    constant.update([torch.ones(3)])
    assert torch.allclose(constant.shadow[0], torch.full((3,), 1e-4))


def test_bad_input_to_the_command_line_stops_before_training_with_one_line(tmp_path, capsys):
    """A run folder that cannot be written (here a file stands where it should be) and a data file of another
    length each end `python -m revcurse.toy train` with one line naming the path, before step 1."""
    import json

    import yaml

    from revcurse.core.config import REPO_ROOT, resolve_config
    from revcurse.data.toy import write_dataset
    from revcurse.toy.__main__ import main
    from revcurse.toy.specs import toy_train_spec

    config = resolve_config({**yaml.safe_load((REPO_ROOT / "config.yaml").read_text()), "preset": "quick"})
    data = tmp_path / "L5.parquet"
    write_dataset(make_forward_dataset(5), data, tmp_path / "L5.json")
    blocker = tmp_path / "run"
    blocker.write_text("a file where the run folder should be")
    for length, out, expected in ((5, blocker / "model.pt", f"error: {blocker}: cannot write there"),
                                  (6, tmp_path / "ok" / "model.pt", f"error: {data}: sequences of length 5; expected L = 6")):
        spec = json.dumps(toy_train_spec(config, "mdm", length, 0))
        with pytest.raises(SystemExit) as stop:
            main(["train", "--spec", spec, "--data", str(data), "--out", str(out)])
        assert stop.value.code == 1
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith(expected)
