"""Probes of toy models: snapshots, schemas and shapes, and each measurement against a direct computation."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from revcurse.data.toy import MASK_ID, N_LETTERS, PAD_ID, VOCAB, VOCAB_SIZE, make_forward_dataset
from revcurse.toy import probes
from revcurse.toy.__main__ import main as cli
from revcurse.toy.model import ModelConfig, ToyTransformer
from revcurse.toy.train import TrainConfig, load_snapshots, save_run, save_snapshots, train

LENGTH = 5
PLACEMENTS = LENGTH * (LENGTH - 1) // 2
ARM_FIELDS = dict(objective="next_token", attention="causal", pos_encoding="learned")


def model_config(**overrides):
    fields = dict(vocab_size=VOCAB_SIZE, seq_len=LENGTH, d_model=16, n_heads=2, dropout=0.0, never_predict=MASK_ID)
    return ModelConfig(**{**fields, **overrides})


def train_config(**overrides):
    fields = dict(steps=12, batch_size=16, lr=1e-2, warmup_steps=3, grad_clip=0.5, weight_decay=0.0,
                  ema_decay=0.999, checkpoint_every=4, log_every=2, snapshot_every=4, device="cpu", precision="fp32")
    return TrainConfig(**{**fields, **overrides})


def run(model_cfg, train_cfg, **kwargs):
    return train(model_cfg, train_cfg, make_forward_dataset(LENGTH).tokens, [7], MASK_ID, **kwargs)


def randomised(model_cfg, seed=0, scale=0.5):
    """A model whose weights are far from the small initialisation, so scores and gradients are not trivial."""
    model = ToyTransformer(model_cfg, init_rng=[torch.Generator().manual_seed(seed)]).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(scale * torch.randn(param.shape, generator=generator))
    return model


# ---------------------------------------------------------------- snapshots
def test_snapshots_leave_training_bit_identical_and_hold_the_weights_of_their_steps():
    plain = run(model_config(), train_config(snapshot_every=None))
    snapped = run(model_config(), train_config(snapshot_every=5))
    for name, tensor in plain.model.state_dict().items():
        assert torch.equal(tensor, snapped.model.state_dict()[name]), name
    assert plain.losses == snapped.losses and plain.snapshots == []
    assert [s["step"] for s in snapped.snapshots] == [0, 5, 10, 12]
    final = snapped.snapshots[-1]
    assert all(torch.equal(final["raw"][k], v) for k, v in snapped.model.state_dict().items())
    assert all(torch.equal(final["ema"][k], v) for k, v in snapped.ema_state_dict().items())
    assert not torch.equal(snapped.snapshots[0]["raw"]["head.weight"], final["raw"]["head.weight"])


class Killed(Exception):
    pass


def test_a_resumed_run_keeps_the_snapshots_taken_before_the_kill(tmp_path):
    uninterrupted = run(model_config(), train_config())

    def kill_at_step_10(state):
        if state.step == 10:
            raise Killed

    resume = tmp_path / "resume.pt"
    with pytest.raises(Killed):
        run(model_config(), train_config(), resume_path=resume, fingerprint="x", callbacks=[kill_at_step_10])
    resumed = run(model_config(), train_config(), resume_path=resume, fingerprint="x")
    assert [s["step"] for s in resumed.snapshots] == [0, 4, 8, 12]
    for mine, theirs in zip(resumed.snapshots, uninterrupted.snapshots):
        assert all(torch.equal(mine["raw"][k], theirs["raw"][k]) for k in mine["raw"])


# ---------------------------------------------------------------- every probe through the CLI
@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """A tiny trained MDM and ARM, written as the training rule writes them."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name, fields in (("mdm", {}), ("arm", ARM_FIELDS)):
        ema = 0.999 if name == "mdm" else None
        state = run(model_config(**fields), train_config(steps=150, lr=2e-2, snapshot_every=50, ema_decay=ema))
        spec = {"model": name, "length": LENGTH, "seed": 7}
        save_run(root / name / "model.pt", state, 0, spec, "train-hash", {"code_version": "test"})
        save_snapshots(root / name / "snapshots.pt", state, 0, spec, "train-hash", {"code_version": "test"})
        runs[name] = root / name
    return runs


def probe_via_cli(run_dir, measurement, tmp_path, every=50, precision="fp32"):
    names, source = probes.MEASUREMENTS[measurement]
    spec = {"preset": "test", "study": "toy", "model": run_dir.name, "length": LENGTH, "seed": 7, "weights": "ema",
            "every": every, "precision": precision, "device": "cpu"}
    checkpoint = run_dir / ("model.pt" if source == "final" else "snapshots.pt")
    outs = {name: tmp_path / f"{name}.parquet" for name in names}
    cli(["probe", measurement, "--spec", json.dumps(spec), "--checkpoint", str(checkpoint),
         *[arg for name, path in outs.items() for arg in ("--out", f"{name}={path}")]])
    return {name: pd.read_parquet(path) for name, path in outs.items()}


SNAPSHOTS = [0, 50, 100, 150]
SNAPSHOT_STEPS = len(SNAPSHOTS)
EXPECTED_ROWS = {           # (model, probe): rows
    ("mdm", "attention"): SNAPSHOT_STEPS * 2 * N_LETTERS * PLACEMENTS * 2,      # directions, heads
    ("mdm", "gradient_alignment"): SNAPSHOT_STEPS * N_LETTERS,
    ("mdm", "query_probability"): SNAPSHOT_STEPS * 2 * N_LETTERS,
    ("mdm", "reverse_positions"): N_LETTERS * (LENGTH - 1),
    ("arm", "gradient_alignment"): SNAPSHOT_STEPS * N_LETTERS,
    ("arm", "query_probability"): SNAPSHOT_STEPS * 2 * N_LETTERS,
    ("arm", "reverse_positions"): N_LETTERS * (LENGTH - 1),
}


@pytest.mark.parametrize("model, measurement", [
    ("mdm", "attention"), ("mdm", "training_dynamics"), ("mdm", "reverse_positions"),
    ("arm", "training_dynamics"), ("arm", "reverse_positions"),
])
def test_each_probe_writes_its_schema_with_one_row_per_measurement(trained_runs, tmp_path, model, measurement):
    for name, frame in probe_via_cli(trained_runs[model], measurement, tmp_path).items():
        probes.validate(frame, name)
        assert len(frame) == EXPECTED_ROWS[(model, name)], name
        assert frame["weights"].unique().tolist() == (["ema"] if model == "mdm" else ["raw"])
        assert frame["train_config_hash"].eq("train-hash").all()
        if name != "reverse_positions":
            assert sorted(frame["step"].unique()) == SNAPSHOTS
        key = [c for c in ("step", "letter", "direction", "mask_pos", "upper_pos", "head", "position")
               if c in frame]
        assert not frame.duplicated(key).any(), f"{name}: rows are not one per measurement"


def test_the_probes_read_the_snapshots_every_so_many_steps_and_the_last(trained_runs, tmp_path):
    frames = probe_via_cli(trained_runs["mdm"], "training_dynamics", tmp_path, every=100)
    for name, frame in frames.items():
        assert sorted(frame["step"].unique()) == [0, 100, 150], name


def test_bf16_probes_are_labelled_and_close_to_fp32(trained_runs, tmp_path):
    fp32 = probe_via_cli(trained_runs["mdm"], "attention", tmp_path / "fp32")["attention"]
    bf16 = probe_via_cli(trained_runs["mdm"], "attention", tmp_path / "bf16", precision="bf16")["attention"]
    assert fp32["precision"].eq("fp32").all() and bf16["precision"].eq("bf16").all()
    assert not np.array_equal(fp32["score"], bf16["score"])          # the arithmetic did change
    # bf16 keeps 8 bits of mantissa: scores agree to about 1e-5 in correlation, weights to a few 1e-3 on average
    assert np.corrcoef(fp32["score"], bf16["score"])[0, 1] > 0.9999
    assert (fp32["weight"] - bf16["weight"]).abs().mean() < 0.005


def test_attention_probe_covers_every_placement_in_both_directions(trained_runs, tmp_path):
    frame = probe_via_cli(trained_runs["mdm"], "attention", tmp_path)["attention"]
    forward = frame[frame["direction"] == "forward"]
    reverse = frame[frame["direction"] == "reverse"]
    assert (forward["mask_pos"] < forward["upper_pos"]).all() and (reverse["mask_pos"] > reverse["upper_pos"]).all()
    assert (frame["delta"] == (frame["upper_pos"] - frame["mask_pos"]).abs()).all()
    assert forward.groupby(["mask_pos", "upper_pos"]).ngroups == PLACEMENTS == reverse.groupby(["mask_pos", "upper_pos"]).ngroups
    assert frame["weight"].between(0, 1).all()


def test_validate_rejects_a_frame_that_breaks_the_schema(trained_runs, tmp_path):
    frame = probe_via_cli(trained_runs["arm"], "reverse_positions", tmp_path)["reverse_positions"]
    with pytest.raises(ValueError, match="columns"):
        probes.validate(frame.drop(columns="position"), "reverse_positions")
    with pytest.raises(ValueError, match="types.*position"):
        probes.validate(frame.assign(position=frame["position"].astype(float)), "reverse_positions")
    with pytest.raises(ValueError, match="null"):
        probes.validate(frame.assign(prob_correct=float("nan")), "reverse_positions")


# ---------------------------------------------------------------- attention scores
def rotate(x, position, base):
    """RoPE written out: pairs (i, i + D/2) rotated by position·base^(−2i/D)."""
    half = x.shape[-1] // 2
    angle = position * base ** (-2 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * angle.cos() - second * angle.sin(), second * angle.cos() + first * angle.sin()], -1)


def test_attention_score_from_hooks_equals_the_score_recomputed_from_the_weights():
    cfg = model_config()
    model = randomised(cfg).double()
    frame = probes.attention_probe(model, LENGTH)
    state = {k: v[0] for k, v in model.state_dict().items()}
    D, H, hd = cfg.d_model, cfg.n_heads, cfg.head_dim

    def projected(token, part):
        h = F.layer_norm(state["tok_emb"][token], (D,)) * state["blocks.0.ln_attn.weight"] + state["blocks.0.ln_attn.bias"]
        qkv = h @ state["blocks.0.attn.qkv.weight"] + state["blocks.0.attn.qkv.bias"]
        return qkv[part * D:(part + 1) * D].view(H, hd)

    checked = 0
    for row in frame.sample(40, random_state=0).itertuples():
        upper = VOCAB.index(row.letter.upper())
        q = rotate(projected(MASK_ID, 0)[row.head], row.mask_pos, cfg.rope_base)
        k = rotate(projected(upper, 1)[row.head], row.upper_pos, cfg.rope_base)
        assert row.score == pytest.approx(float(q @ k), rel=1e-5)     # the RoPE tables are float32
        checked += 1
    assert checked == 40


def test_attention_weights_are_the_ones_the_model_attends_with():
    """softmax(q·k/√d) from the hooks' q, k, applied to v and projected, is the attention layer's output at [M]."""
    cfg = model_config(n_heads=1, d_model=8)
    model = randomised(cfg, seed=3).double()
    tokens = torch.full((1, 1, LENGTH), PAD_ID)
    tokens[0, 0, 1], tokens[0, 0, 3] = MASK_ID, VOCAB.index("C")
    attn = model.blocks[0].attn
    calls = []
    handle = attn.register_forward_hook(lambda module, args, out: calls.append((args, out)))
    with probes.recorded_queries_keys(model) as records:
        model(tokens)
    handle.remove()
    (q, k), = records
    (layer_input, rope), output = calls[0]
    weights = (q[0, 0, 0, 1] @ k[0, 0, 0].T / math.sqrt(cfg.head_dim)).softmax(-1)
    v = attn.queries_keys_values(layer_input, rope)[2][0, 0, 0]
    expected = weights @ v @ attn.out.weight[0] + attn.out.bias[0]
    assert torch.allclose(output[0, 0, 1], expected, atol=1e-10)
    frame = probes.attention_probe(model, LENGTH)
    row = frame[(frame.letter == "c") & (frame.mask_pos == 1) & (frame.upper_pos == 3)]
    assert row["weight"].item() == pytest.approx(weights[3].item(), rel=1e-9)   # the same pad-filled sequence


def test_attention_probe_refuses_a_model_that_never_reads_the_mask():
    with pytest.raises(ValueError, match="never reads \\[M\\]"):
        probes.attention_probe(ToyTransformer(model_config(**ARM_FIELDS)), LENGTH)


# ---------------------------------------------------------------- gradients and probabilities
def test_gradient_cosine_of_a_vector_with_itself_is_one():
    g = torch.randn(3, 1000, dtype=torch.float64)
    same = probes.gradient_alignment(g, g)
    assert same["cosine"].tolist() == pytest.approx([1.0] * 3, abs=1e-12)
    assert same["inner_product"].tolist() == pytest.approx((g.norm(dim=1) ** 2).tolist())
    assert probes.gradient_alignment(g, -2 * g)["cosine"].tolist() == pytest.approx([-1.0] * 3, abs=1e-12)


@pytest.mark.parametrize("fields", [{}, ARM_FIELDS], ids=["mdm", "arm"])
def test_per_letter_gradients_equal_those_of_the_single_model(fields):
    """The replicated stack gives each letter's forward/reverse loss gradient of the one model."""
    model = randomised(model_config(**fields), seed=5)
    alignment, probability = probes.training_dynamics(model, LENGTH)
    letter = 2
    grads, probs = [], []
    for direction in ("forward", "reverse"):
        batch = probes.queries(model.cfg, LENGTH, direction)
        logits = model(batch.tokens[letter][None])[0]                       # [P, T, V]
        log_p = logits[torch.arange(PLACEMENTS), batch.read_pos].log_softmax(-1)[:, batch.targets[letter]]
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(-log_p.mean(), list(model.parameters()))]))
        probs.append(log_p.exp().mean().item())
    row = alignment.iloc[letter]
    assert row["letter"] == "c"
    assert row["inner_product"] == pytest.approx(float(grads[0] @ grads[1]), rel=1e-4)
    assert row["cosine"] == pytest.approx(float(F.cosine_similarity(grads[0], grads[1], dim=0)), abs=1e-5)
    measured = probability[probability["letter"] == "c"].set_index("direction")["probability"]
    assert measured.tolist() == pytest.approx(probs, rel=1e-5)


def test_arm_reverse_probability_at_initialisation_is_near_uniform(trained_runs):
    models, _ = load_snapshots(trained_runs["arm"] / "snapshots.pt")
    (first_step, initial), (last_step, trained) = models[0], models[-1]
    assert [first_step, last_step] == [SNAPSHOTS[0], SNAPSHOTS[-1]]
    _, at_init = probes.training_dynamics(initial, LENGTH)
    uniform = 1 / (VOCAB_SIZE - 1)                       # every token but [M]
    assert at_init["probability"].to_numpy() == pytest.approx(uniform, rel=0.15)
    _, after = probes.training_dynamics(trained, LENGTH)
    mean = after.groupby("direction")["probability"].mean()
    # the same measurement sees the trained forward conditional and not the reverse one
    assert mean["forward"] > 5 * uniform and mean["reverse"] < uniform


def test_arm_queries_are_cropped_before_the_target():
    batch = probes.queries(model_config(**ARM_FIELDS), LENGTH, "reverse")
    assert batch.tokens.shape == (N_LETTERS, PLACEMENTS, LENGTH - 1)
    assert (batch.read_pos == batch.target_pos - 1).all() and (batch.context_pos < batch.target_pos).all()
    assert batch.target_case == "lowercase"
    upper = batch.tokens[0, torch.arange(PLACEMENTS), batch.context_pos]
    assert (upper == VOCAB.index("A")).all()


# ---------------------------------------------------------------- reverse prompts
def test_reverse_positions_exclude_the_pad_and_the_correct_token_from_the_best_wrong():
    model = randomised(model_config(), seed=2)
    with torch.no_grad():
        model.head.bias[0, PAD_ID] += 20.0                  # the pad now takes almost all the mass
    frame = probes.reverse_positions(model, LENGTH)
    assert len(frame) == N_LETTERS * (LENGTH - 1) and sorted(frame["position"].unique()) == list(range(1, LENGTH))
    assert not frame["best_wrong_token"].isin(["0", "[M]"]).any()
    assert (frame["best_wrong_token"] != frame["letter"]).all()
    tokens = torch.full((1, 1, LENGTH), MASK_ID)
    tokens[0, 0, 0] = VOCAB.index("B")
    probs = model(tokens)[0, 0].softmax(-1)
    row = frame[(frame.letter == "b") & (frame.position == 2)].iloc[0]
    assert row["prob_correct"] == pytest.approx(probs[2, VOCAB.index("b")].item(), rel=1e-6)
    others = probs[2].clone()
    others[[PAD_ID, VOCAB.index("b")]] = 0
    assert row["prob_best_wrong"] == pytest.approx(others.max().item(), rel=1e-6)


def test_the_probe_cost_benchmark_runs_and_prints_both_precisions():
    script = Path(__file__).parents[2] / "benchmarks" / "toy_probe_cost.py"
    out = subprocess.run([sys.executable, str(script), "--tiny"], capture_output=True, text=True, check=True).stdout
    assert "fp32/bf16" in out and "score correlation" in out and "every 500 steps" in out
