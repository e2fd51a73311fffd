"""Figures from Parquet fixtures, and the correlation pooling against a direct computation."""
import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from revcurse import figures, probes
from revcurse.cli import main as cli
from revcurse.data.toy import LOWER, MASK_ID, VOCAB_SIZE
from revcurse.models import ModelConfig, ToyTransformer
from revcurse.theory import rope_trace

ARM_FIELDS = dict(objective="next_token", attention="causal", pos_encoding="learned")
PROVENANCE = {"config_hash": "cfg", "train_config_hash": "train", "code_version": "test"}


def random_model(length, seed, **fields):
    cfg = ModelConfig(vocab_size=VOCAB_SIZE, seq_len=length, d_model=8, n_heads=1, dropout=0.0,
                      never_predict=MASK_ID, **fields)
    model = ToyTransformer(cfg, init_rng=[torch.Generator().manual_seed(seed)]).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=torch.Generator().manual_seed(seed + 100)))
    return model


@pytest.fixture(scope="module")
def probe_files(tmp_path_factory):
    """Every probe table of a small grid (MDM and ARM, L ∈ {3, 4}, seeds 0 and 1, steps 0 and 10)
    and of the attention-only study (L = 2), measured on random models, one file per run and probe."""
    root = tmp_path_factory.mktemp("probes")
    files = {}
    studies = [("toy", length, fields) for length in (3, 4) for fields in ({}, ARM_FIELDS)]
    studies += [("toy_attention_only", 2, {**fields, "mlp_ratio": 0}) for fields in ({}, ARM_FIELDS)]
    for (study, length, fields), seed in itertools.product(studies, (0, 1)):
        model_name = "arm" if fields.get("objective") == "next_token" else "mdm"
        run = {"preset": "test", "study": study, "model": model_name, "length": length, "seed": seed,
               "weights": "raw"}
        measurements = ["training_dynamics"]
        if study == "toy":
            measurements += ["reverse_positions"] + (["attention"] if model_name == "mdm" else [])
        tables: dict[str, list[pd.DataFrame]] = {}
        for step in (0, 10):
            model = random_model(length, seed * 10 + step, **fields)
            for measurement in measurements:
                if measurement == "reverse_positions" and step == 0:
                    continue
                for name, frame in probes.measure(measurement, model, length).items():
                    tables.setdefault(name, []).append(frame.assign(step=step))
        for name, frames in tables.items():
            path = root / study / model_name / f"L{length}" / f"seed{seed}" / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            probes.with_run_columns(pd.concat(frames, ignore_index=True), name, run, PROVENANCE).to_parquet(path)
            files.setdefault((study, name), []).append(path)
    return files


FIGURE_INPUTS = {
    "fig3": [("toy", "attention")],
    "fig4": [("toy_attention_only", "gradient_alignment"), ("toy_attention_only", "query_probability")],
    "fig5": [("toy", "gradient_alignment"), ("toy", "query_probability")],
    "fig11": [("toy", "reverse_positions")],
    "fig12": [("toy", "gradient_alignment"), ("toy", "query_probability")],
    "fig13": [("toy", "attention")],
}


@pytest.mark.parametrize("figure", sorted(FIGURE_INPUTS))
def test_every_figure_renders_from_parquet_files(probe_files, tmp_path, figure):
    inputs = [str(p) for key in FIGURE_INPUTS[figure] for p in probe_files[key]]
    if figure == "fig5":        # the MDM only, as the rule passes it
        inputs = [p for p in inputs if "/mdm/" in p]
    png, pdf, csv = (tmp_path / f"{figure}.{ext}" for ext in ("png", "pdf", "csv"))
    cli(["toy-figure", figure, "--inputs", *inputs, "--settings", '{"correlation_pooling": "per_pair"}',
         "--png", str(png), "--pdf", str(pdf), "--csv", str(csv), "--config-hash", "abc"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    table = pd.read_csv(csv)
    assert len(table) > 0 and table["config_hash"].eq("abc").all()
    assert '"config_hash": "abc"' in Image.open(png).info["revcurse"]       # provenance travels with the image


def test_figure_tables_summarise_seeds_as_the_caption_says(probe_files):
    frames = figures.read_probes(probe_files[("toy", "query_probability")])
    probability = frames["query_probability"]
    summary = figures.seed_summary(probability, figures.MODEL_KEYS + ["direction", "step"], "probability")
    one = summary[(summary.model == "mdm") & (summary.length == 4) & (summary.step == 10)
                  & (summary.direction == "reverse")].iloc[0]
    chosen = probability[(probability.model == "mdm") & (probability.length == 4) & (probability.step == 10)
                         & (probability.direction == "reverse")]
    per_seed = chosen.groupby("seed")["probability"].mean()
    assert one["mean"] == pytest.approx(per_seed.mean()) and one["sd"] == pytest.approx(per_seed.std())
    assert one["seeds"] == 2


def test_read_probes_refuses_a_file_that_is_not_a_probe_table(tmp_path):
    path = tmp_path / "eval.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with pytest.raises(ValueError, match="not a probe table"):
        figures.read_probes([path])


# ---------------------------------------------------------------- correlation pooling
LENGTH = 4


def synthetic_attention(seeds=(0, 1), steps=(0, 5)) -> pd.DataFrame:
    """Scores with letter structure shared between directions plus noise, so correlations are not ±1."""
    rows = []
    rng = np.random.default_rng(0)
    for seed, step in itertools.product(seeds, steps):
        letter_effect = rng.normal(size=26)
        for direction in ("forward", "reverse"):
            for first, second in itertools.combinations(range(LENGTH), 2):
                mask_pos, upper_pos = (first, second) if direction == "forward" else (second, first)
                # a per-seed offset: pooling over seeds then mixes levels, and must differ
                scores = 20.0 * seed + letter_effect * (1 + second - first) + rng.normal(size=26)
                for letter, score in zip(LOWER, scores):
                    rows.append(dict(seed=seed, step=step, direction=direction, mask_pos=mask_pos,
                                     upper_pos=upper_pos, letter=letter, score=score))
    frame = pd.DataFrame(rows).assign(
        preset="test", study="toy", model="mdm", length=LENGTH, weights="raw", layer=0, head=0,
        delta=lambda f: (f.upper_pos - f.mask_pos).abs(), weight=0.5, pos_encoding="rope", head_dim=8,
        rope_base=10000.0)
    return probes.with_run_columns(frame, "attention", {}, PROVENANCE)


def direct_pairs(frame, seed, distance_sum):
    """(forward scores, reverse scores) over letters for every pair of the bin, by explicit loops."""
    last = frame[(frame.seed == seed) & (frame.step == frame.step.max())]
    by_placement = {key: g.sort_values("letter")["score"].to_numpy()
                    for key, g in last.groupby(["direction", "mask_pos", "upper_pos"])}
    forward = [(k, v) for k, v in by_placement.items() if k[0] == "forward"]
    reverse = [(k, v) for k, v in by_placement.items() if k[0] == "reverse"]
    return [(f, r) for (kf, f), (kr, r) in itertools.product(forward, reverse)
            if abs(kf[2] - kf[1]) + abs(kr[2] - kr[1]) == distance_sum]


@pytest.mark.parametrize("distance_sum", [2, 4, 6])
def test_correlation_poolings_equal_a_direct_computation(distance_sum):
    frame = synthetic_attention()
    per_seed_pair, per_seed_bin, pooled_x, pooled_y = [], [], [], []
    for seed in (0, 1):
        pairs = direct_pairs(frame, seed, distance_sum)
        per_seed_pair.append(np.mean([np.corrcoef(f, r)[0, 1] for f, r in pairs]))
        xs, ys = np.concatenate([f for f, _ in pairs]), np.concatenate([r for _, r in pairs])
        per_seed_bin.append(np.corrcoef(xs, ys)[0, 1])
        pooled_x.append(xs)
        pooled_y.append(ys)
    expected = {
        "per_pair": np.mean(per_seed_pair),
        "per_bin": np.mean(per_seed_bin),
        "pooled_seeds": np.corrcoef(np.concatenate(pooled_x), np.concatenate(pooled_y))[0, 1],
    }
    for pooling, value in expected.items():
        table = figures.attention_correlation(frame, pooling)
        row = table[table.distance_sum == distance_sum].iloc[0]
        assert row["correlation"] == pytest.approx(value, abs=1e-10), pooling
        assert row["step"] == 5 and row["trace"] == pytest.approx(float(rope_trace(distance_sum / 2, 8, 10000.0)))
    assert expected["per_bin"] != pytest.approx(expected["pooled_seeds"], abs=0.02)   # the options differ


def test_positive_share_counts_the_bins_above_zero():
    frame = synthetic_attention()
    table = figures.attention_correlation(frame, "per_pair")
    assert sorted(table["distance_sum"]) == list(range(2, 2 * (LENGTH - 1) + 1))
    flipped = table.assign(correlation=np.where(table["distance_sum"] <= 3, -0.5, 0.5))
    share = figures.positive_share(flipped)
    assert share["positive_share"].item() == pytest.approx(3 / 5) and share["bins"].item() == 5
