from types import SimpleNamespace

import pytest
import torch

from revcurse.data.toy import MASK_ID, make_forward_dataset
from revcurse.toy.train import EMA, TrainConfig, train, training_loss


class FixedLogits(torch.nn.Module):
    """Stands in for a model: the same logits whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.cfg = SimpleNamespace(objective="masked_diffusion")

    def forward(self, tokens, rng=None):
        return self.logits.expand(*tokens.shape, -1)


def test_masked_diffusion_loss_is_unbiased_for_mean_token_ce():
    """E_t,mask[(1/t)·Σ_masked CE]/L equals the mean CE over all positions; without 1/t it would be half."""
    torch.manual_seed(0)
    logits = torch.randn(54)
    clean = torch.randint(0, 53, (1, 4000, 8))
    ce = torch.nn.functional.cross_entropy(logits.expand(4000 * 8, -1), clean.flatten()).item()
    rng = [torch.Generator().manual_seed(1)]
    estimates = torch.stack([training_loss(FixedLogits(logits), clean, MASK_ID, rng) for _ in range(20)])
    assert estimates.mean().item() == pytest.approx(ce, rel=0.02)


def small_run(steps=12, **overrides):
    from revcurse.data.toy import VOCAB_SIZE
    from revcurse.toy.model import ModelConfig

    model = ModelConfig(vocab_size=VOCAB_SIZE, seq_len=5, d_model=16, n_heads=2, dropout=0.1, never_predict=MASK_ID)
    cfg = dict(steps=steps, batch_size=16, lr=1e-2, warmup_steps=3, grad_clip=0.5, weight_decay=0.0,
               ema_decay=0.999, checkpoint_every=4, log_every=2, device="cpu")
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
    assert torch.load(resume, weights_only=False)["step"] == 8        # last checkpoint before the kill
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
