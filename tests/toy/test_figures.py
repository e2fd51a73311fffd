"""Figures from Parquet fixtures, and the correlation pooling against a direct computation."""
import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from revcurse import plotting
from revcurse.core.rope import rope_trace
from revcurse.data.toy import LOWER, MASK_ID, VOCAB_SIZE
from revcurse.toy import figures, probes
from revcurse.toy.__main__ import main as cli
from revcurse.toy.model import ModelConfig, ToyTransformer

ARM_FIELDS = dict(objective="next_token", attention="causal", pos_encoding="learned")
PROVENANCE = {"precision": "fp32", "config_hash": "cfg", "train_config_hash": "train", "code_version": "test"}


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


def figure_inputs(probe_files, figure) -> list[str]:
    """The probe files of ``figure`` as its rule passes them (Figure 5: the MDM only)."""
    inputs = [str(p) for key in FIGURE_INPUTS[figure] for p in probe_files[key]]
    return [p for p in inputs if "/mdm/" in p] if figure == "fig5" else inputs


@pytest.mark.parametrize("figure", sorted(FIGURE_INPUTS))
def test_every_figure_renders_from_parquet_files(probe_files, tmp_path, figure):
    inputs = figure_inputs(probe_files, figure)
    png, pdf, csv = (tmp_path / f"{figure}.{ext}" for ext in ("png", "pdf", "csv"))
    cli(["figure", figure, "--inputs", *inputs, "--settings", '{"correlation_pooling": "per_pair"}',
         "--png", str(png), "--pdf", str(pdf), "--csv", str(csv), "--config-hash", "abc"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    table = pd.read_csv(csv)
    assert len(table) > 0 and table["config_hash"].eq("abc").all()
    assert '"config_hash": "abc"' in Image.open(png).info["revcurse"]       # provenance travels with the image


def test_figure_tables_summarise_seeds_as_the_caption_says(probe_files):
    frames = figures.read_probes(probe_files[("toy", "query_probability")])
    probability = frames["query_probability"]
    summary = plotting.seed_summary(probability, plotting.MODEL_KEYS + ["direction", "step"], "probability")
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
        table = plotting.attention_correlation(frame, pooling)
        row = table[table.distance_sum == distance_sum].iloc[0]
        assert row["correlation"] == pytest.approx(value, abs=1e-10), pooling
        assert row["step"] == 5 and row["trace"] == pytest.approx(float(rope_trace(distance_sum / 2, 8, 10000.0)))
    assert expected["per_bin"] != pytest.approx(expected["pooled_seeds"], abs=0.02)   # the options differ


def test_positive_share_counts_the_bins_above_zero():
    frame = synthetic_attention()
    table = plotting.attention_correlation(frame, "per_pair")
    assert sorted(table["distance_sum"]) == list(range(2, 2 * (LENGTH - 1) + 1))
    flipped = table.assign(correlation=np.where(table["distance_sum"] <= 3, -0.5, 0.5))
    share = plotting.positive_share(flipped)
    assert share["positive_share"].item() == pytest.approx(3 / 5) and share["bins"].item() == 5


# ---------------------------------------------------------------- step 0 beside the trained model (Fig. 3/13)
@pytest.mark.parametrize("distance_sum", [2, 5])
def test_correlation_at_the_first_step_is_computed_on_step_0_only(distance_sum):
    frame = synthetic_attention()
    first = plotting.attention_correlation(frame, "per_pair", at="first")
    initial = frame[frame.step == 0]
    expected = np.mean([np.mean([np.corrcoef(f, r)[0, 1] for f, r in direct_pairs(initial, seed, distance_sum)])
                        for seed in (0, 1)])
    row = first[first.distance_sum == distance_sum].iloc[0]
    assert row["step"] == 0 and row["correlation"] == pytest.approx(expected, abs=1e-10)
    assert row["correlation_min"] <= row["correlation"] <= row["correlation_max"]
    with pytest.raises(ValueError, match="snapshot"):
        plotting.attention_correlation(frame, "per_pair", at="middle")


@pytest.mark.parametrize("figure", ["fig3", "fig13"])
def test_correlation_figures_carry_step_0_beside_the_trained_step(probe_files, figure):
    frames = figures.read_probes(probe_files[("toy", "attention")])
    fig, table = plotting.draw_figure(figures.FIGURES, figure, frames, {"correlation_pooling": "per_pair"})
    correlation = table[table["panel"] == "correlation"] if "panel" in table else table
    assert set(correlation["snapshot"]) == {"trained", "initialisation"}
    assert set(correlation.loc[correlation["snapshot"] == "initialisation", "step"]) == {0}
    assert set(correlation.loc[correlation["snapshot"] == "trained", "step"]) == {10}
    for snapshot, at in (("initialisation", "first"), ("trained", "last")):      # each equals its own computation
        expected = plotting.attention_correlation(frames["attention"], "per_pair", at=at)
        got = correlation[correlation["snapshot"] == snapshot]
        merged = got.merge(expected, on=["length", "distance_sum"], suffixes=("", "_expected"))
        assert len(merged) == len(expected)
        np.testing.assert_allclose(merged["correlation"], merged["correlation_expected"])
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "step 0 (initialisation)" in legend and "trained, step 10" in legend
    titles = [ax.get_title() for ax in fig.axes]
    assert any("(step 0:" in title for title in titles)
    plt_close(fig)


def test_a_run_probed_at_one_step_has_no_initialisation_rows():
    frame = synthetic_attention(steps=(7,))
    table = plotting.correlation_snapshots(frame, "per_pair")
    assert set(table["snapshot"]) == {"trained"} and set(table["step"]) == {7}


# ---------------------------------------------------------------- Fig. 5/12 boxes without step 0
@pytest.mark.parametrize("figure", ["fig5", "fig12"])
def test_cosine_boxes_leave_out_step_0(probe_files, figure):
    frames = figures.read_probes(figure_inputs(probe_files, figure))
    # Step 0 gets a cosine far from the others: if it were pooled the means would move.
    alignment = frames["gradient_alignment"]
    frames["gradient_alignment"] = alignment.assign(cosine=np.where(alignment["step"] == 0, -1.0, alignment["cosine"]))
    fig, table = plotting.draw_figure(figures.FIGURES, figure, frames, {})
    boxes = table[table["panel"] == "cosine"]
    trained = alignment[alignment["step"] > 0]
    expected = trained.groupby(plotting.MODEL_KEYS)["cosine"].agg(["mean", "count", "min"])
    for _, box in boxes.iterrows():
        want = expected.loc[(box["study"], box["model"], box["length"])]
        assert box["mean"] == pytest.approx(want["mean"]) and box["values"] == want["count"]
        assert box["min"] == pytest.approx(want["min"]) and box["min"] > -1.0
        assert box["step_min"] == 10 and box["excluded_step"] == 0
    tick_means = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels() if "mean" in t.get_text()]
    assert tick_means and all(f"mean {m:.3f}" in " ".join(tick_means) for m in boxes["mean"])
    plt_close(fig)


def test_cosine_boxes_refuse_a_table_with_step_0_only(probe_files):
    frames = figures.read_probes([p for p in probe_files[("toy", "gradient_alignment")] if "/mdm/" in str(p)])
    with pytest.raises(ValueError, match="step 0 only"):
        figures.after_initialisation(frames["gradient_alignment"].query("step == 0"))


# ---------------------------------------------------------------- bands inside the valid range
def _band_limits(fig) -> list[tuple[float, float]]:
    """(lowest, highest) y of every filled band (fill_between) of the figure."""
    from matplotlib.collections import PolyCollection

    limits = []
    for ax in fig.axes:
        for collection in ax.collections:
            if isinstance(collection, PolyCollection) and collection.get_paths():
                ys = np.concatenate([path.vertices[:, 1] for path in collection.get_paths()])
                limits.append((ys.min(), ys.max()))
    return limits


@pytest.mark.parametrize("figure", ["fig4", "fig5", "fig12"])
def test_bands_stay_inside_the_valid_range_where_plus_minus_sd_would_not(probe_files, figure):
    frames = figures.read_probes(figure_inputs(probe_files, figure))
    # Seeds far apart at the edges of the range: mean ± sd leaves [0, 1] and [−1, 1].
    probability, alignment = frames["query_probability"], frames["gradient_alignment"]
    frames["query_probability"] = probability.assign(probability=np.where(probability["seed"] == 0, 0.0, 0.98))
    frames["gradient_alignment"] = alignment.assign(cosine=np.where(alignment["seed"] == 0, -0.99, 0.999))
    summary = plotting.seed_summary(frames["query_probability"], plotting.MODEL_KEYS + ["direction", "step"], "probability")
    assert ((summary["mean"] - summary["sd"]) < 0).any()          # what the old band would have drawn
    fig, table = plotting.draw_figure(figures.FIGURES, figure, frames, {})
    limits = _band_limits(fig)
    assert limits, "no band drawn"
    for low, high in limits:
        assert -1.0 <= low and high <= 1.0
    probability_bands = [ax for ax in fig.axes if ax.get_ylabel() == "p(ground truth)"]
    for ax in probability_bands:
        for collection in ax.collections:
            for path in collection.get_paths():
                assert path.vertices[:, 1].min() >= 0.0 and path.vertices[:, 1].max() <= 1.0
    plt_close(fig)


# ---------------------------------------------------------------- Fig. 4: coinciding curves stay visible
def test_fig4_draws_coinciding_forward_and_reverse_both_visible_and_says_so(probe_files):
    frames = figures.read_probes(figure_inputs(probe_files, "fig4"))
    probability = frames["query_probability"]
    # The MDM's reverse query gets exactly its forward probabilities (as the L = 2 MDM nearly does).
    forward = probability[(probability["model"] == "mdm") & (probability["direction"] == "forward")]
    key = ["seed", "step", "letter"]
    mirrored = probability.merge(forward[key + ["probability"]].rename(columns={"probability": "fwd"}), on=key, how="left")
    is_mdm_reverse = (mirrored["model"] == "mdm") & (mirrored["direction"] == "reverse")
    is_arm_reverse = (mirrored["model"] == "arm") & (mirrored["direction"] == "reverse")
    frames["query_probability"] = probability.assign(      # and the ARM's reverse curve lies far from its forward one
        probability=np.where(is_mdm_reverse, mirrored["fwd"], np.where(is_arm_reverse, 0.95, mirrored["probability"])))
    fig, table = plotting.draw_figure(figures.FIGURES, "fig4", frames, {})
    right = fig.axes[1]
    mdm_lines = {line.get_label(): line for line in right.get_lines() if line.get_label().startswith("MDM")}
    forward_line, reverse_line = mdm_lines["MDM forward"], mdm_lines["MDM reverse"]
    np.testing.assert_allclose(forward_line.get_ydata(), reverse_line.get_ydata())
    assert forward_line.get_linewidth() > 2 * reverse_line.get_linewidth()      # the wide one shows under the thin one
    assert reverse_line.get_marker() not in (None, "None", "") and forward_line.get_zorder() < reverse_line.get_zorder()
    note = right.get_legend().get_title().get_text()
    assert "MDM: forward ≈ reverse" in note and "ARM" not in note          # the ARM's curves differ: no note
    plt_close(fig)


def test_coinciding_directions_names_only_models_whose_curves_overlap():
    rows = [dict(model=model, direction=direction, step=step,
                 mean=0.1 * step + (0.0 if model == "mdm" or direction == "forward" else 0.3))
            for model in ("mdm", "arm") for direction in ("forward", "reverse") for step in range(4)]
    assert list(plotting.coinciding_directions(pd.DataFrame(rows), "step")) == ["mdm"]


# ---------------------------------------------------------------- the quick-preset marker
def _watermarks(fig) -> list[str]:
    return [t.get_text() for t in fig.texts if t.get_text() == plotting.QUICK_MARKER]


@pytest.mark.parametrize("figure", sorted(FIGURE_INPUTS))
def test_every_toy_figure_of_the_quick_preset_is_marked_and_others_are_not(probe_files, figure, monkeypatch, tmp_path):
    frames = figures.read_probes(figure_inputs(probe_files, figure))
    quick = {name: frame.assign(preset="quick") for name, frame in frames.items()}
    drawn = []
    import matplotlib.pyplot as plt
    monkeypatch.setattr(plt, "close", drawn.append)          # keep the saved figure to look at its text
    figures.render(figure, quick, {"correlation_pooling": "per_pair"}, tmp_path / "q.png", tmp_path / "q.pdf",
                   tmp_path / "q.csv", {"config_hash": "abc"}, {})
    figures.render(figure, frames, {"correlation_pooling": "per_pair"}, tmp_path / "p.png", tmp_path / "p.pdf",
                   tmp_path / "p.csv", {"config_hash": "abc"}, {})
    quick_fig, other_fig = drawn
    assert _watermarks(quick_fig) == ["QUICK PRESET\nSMOKE TEST"]
    marker = next(t for t in quick_fig.texts if t.get_text() == plotting.QUICK_MARKER)
    assert marker.get_fontsize() >= 18 and marker.get_visible()
    assert _watermarks(other_fig) == []
    monkeypatch.undo()
    for fig in drawn:
        plt_close(fig)


def test_the_accuracy_over_training_figure_of_the_quick_preset_is_marked():
    rows = [dict(model=model, length=4, seed=seed, weights="raw", step=step, unmask_order="random",
                 direction=direction, letter="a", successes=step, samples=10, preset="quick", code_version="t")
            for model in ("mdm", "arm") for seed in (0, 1) for step in (0, 5, 10)
            for direction in ("forward", "reverse")]
    frames = {"accuracy_over_training": pd.DataFrame(rows)}
    fig, _ = plotting.draw_figure(figures.ACCURACY_FIGURES, "accuracy_over_training", frames, {})
    assert _watermarks(fig) == [plotting.QUICK_MARKER]
    plt_close(fig)
    frames = {"accuracy_over_training": pd.DataFrame(rows).assign(preset="paper_bf16")}
    fig, _ = plotting.draw_figure(figures.ACCURACY_FIGURES, "accuracy_over_training", frames, {})
    assert _watermarks(fig) == []
    plt_close(fig)


def test_the_accuracy_over_training_figure_has_no_empty_panel_where_the_arm_has_no_ema():
    """Only the MDM has EMA weights: the rows are the (model, weights) the runs have, the columns the lengths."""
    runs = [("mdm", "ema"), ("mdm", "raw"), ("arm", "raw")]
    rows = [dict(model=model, length=length, seed=seed, weights=weights, step=step, unmask_order="random",
                 direction=direction, letter="a", successes=step, samples=10, preset="paper_bf16", code_version="t")
            for model, weights in runs for length in (4, 6) for seed in (0, 1) for step in (0, 5, 10)
            for direction in ("forward", "reverse")]
    fig, table = plotting.draw_figure(figures.ACCURACY_FIGURES, "accuracy_over_training",
                                      {"accuracy_over_training": pd.DataFrame(rows)}, {})
    assert len(fig.axes) == len(runs) * 2 and all(ax.lines for ax in fig.axes)
    assert {ax.get_title() for ax in fig.axes} == {f"{model.upper()} L = {length} ({weights})"
                                                   for model, weights in runs for length in (4, 6)}
    assert len(table) == len(runs) * 2 * 2 * 3            # (model, weights) x L x direction x step
    plt_close(fig)


def test_quick_presets_reads_the_preset_column_of_every_frame():
    frames = {"a": pd.DataFrame({"preset": ["paper"]}), "b": pd.DataFrame({"preset": ["quick"]}),
              "c": pd.DataFrame({"x": [1]})}
    assert plotting.quick_presets(frames) == ["quick"]
    assert plotting.quick_presets({"a": frames["a"]}) == []


def plt_close(fig) -> None:
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_a_long_footer_stays_inside_the_figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(5, 4))
    frame = pd.DataFrame({"preset": ["paper_bf16"] * 3, "seed": [0, 1, 2], "weights": ["ema"] * 3,
                          "code_version": ["fa583ee6c651", "b69b0f1d2e3a", "0123456789ab"]})
    plotting.footer(fig, [frame], "weights", extra="pooling per_pair · a long extra note")
    fig.canvas.draw()
    text = fig.texts[-1].get_window_extent()
    assert text.x0 >= 0 and text.x1 <= fig.bbox.x1
    plt.close(fig)
