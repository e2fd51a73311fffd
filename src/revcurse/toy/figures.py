"""Figures 3, 4, 5, 11, 12 and 13 of the toy study, built only from the probe Parquet files.

Each figure is a function of the probe tables it needs (``FIGURES``) and of the
``toy.probes`` settings; it returns the figure and the table of the values it plots,
which ``render`` writes next to the PNG and PDF as CSV. Where a curve has a band, the
line is the mean over seeds of the per-seed mean and the band runs from the lowest to the
highest seed (``band="range"``): every quantity drawn is bounded (a cosine or correlation in
[−1, 1], a probability or attention weight in [0, 1]) and so is a band of per-seed values,
where ± one standard deviation is not. How forward/reverse attention scores become one
correlation per Δ1 + Δ2 is ``attention_correlation`` (and docs/probes.md, "pairing and pooling");
Figures 3 and 13 draw it at initialisation (each run's first snapshot, step 0) beside the
trained model (its last). Figures 5 and 12 box the gradient cosine over the snapshots after
step 0. ``render_figure`` marks every figure drawn from quick-preset tables (``mark_quick_preset``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from revcurse.plotting import (DIRECTION_COLORS, MODEL_KEYS, MODEL_LINESTYLES, SNAPSHOTS, Frames, band_line,
                               coinciding_directions, correlation_snapshots, direction_curves, footer, render_figure,
                               seed_summary)
from revcurse.toy.probes import SCHEMAS, validate


def after_initialisation(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows after step 0. At step 0 the MDM's forward and reverse gradients are those of the
    random initialisation, where their cosine is ≈ 1 whatever training will do (docs/probes.md),
    so Figures 5 and 12 summarise the cosine without it."""
    trained = frame[frame["step"] > 0]
    if trained.empty:
        raise ValueError("the gradient-alignment table has step 0 only; the cosine boxes summarise the steps after "
                         "it (set toy.train.snapshot_every, docs/probes.md)")
    return trained


def _step_label(snapshot: str, steps: pd.Series) -> str:
    """'trained, step 3000' / 'step 0 (initialisation)' for a legend ("steps 2990…3000" if runs differ;
    a first snapshot after step 0 is called that)."""
    low, high = int(steps.min()), int(steps.max())
    where = f"step {low}" if low == high else f"steps {low}…{high}"
    if snapshot == SNAPSHOTS["first"]:
        return f"{where} ({'initialisation' if high == 0 else 'first snapshot'})"
    return f"trained, {where}"


def _correlation_panel(ax, correlation: pd.DataFrame) -> None:
    """Measured correlation vs Δ1 + Δ2 with Theorem 4.1's (1/D)·Tr R(Δ1 + Δ2): the trained model
    (bars from the lowest to the highest seed) and, grey and dotted, the same at step 0.
    ``correlation`` is a ``correlation_snapshots`` table of one length."""
    trained = correlation[correlation["snapshot"] == SNAPSHOTS["last"]]
    initial = correlation[correlation["snapshot"] == SNAPSHOTS["first"]]
    several = trained.groupby(["model", "layer", "head"]).ngroups > 1
    for snapshot, table in ((SNAPSHOTS["first"], initial), (SNAPSHOTS["last"], trained)):
        if table.empty:
            continue
        first = snapshot == SNAPSHOTS["first"]
        when = _step_label(snapshot, table["step"])
        for (model, layer, head), curve in table.groupby(["model", "layer", "head"]):
            curve = curve.sort_values("distance_sum")
            low = (curve["correlation"] - curve["correlation_min"]).clip(lower=0).fillna(0)
            high = (curve["correlation_max"] - curve["correlation"]).clip(lower=0).fillna(0)
            name = f"{model.upper()}, layer {layer} head {head}, " if several else ""
            style = (dict(fmt="s:", color="0.55", markerfacecolor="white", zorder=2) if first
                     else dict(fmt="o-", color=None if several else "tab:blue", zorder=3))
            ax.errorbar(curve["distance_sum"], curve["correlation"], yerr=[low, high], markersize=3, linewidth=1,
                        capsize=2, label=f"{name}{when}", **style)
    theory = trained.drop_duplicates("distance_sum").sort_values("distance_sum")
    if theory["trace"].notna().any():
        ax.plot(theory["distance_sum"], theory["trace"], "--", color="0.3", linewidth=1.3,
                label=f"(1/D)·Tr R(Δ1+Δ2), D = {theory['head_dim'].iloc[0]}")
    ax.axhline(0, color="0.6", linewidth=0.8)
    shares = f"{100 * trained['positive_share'].mean():.0f}%"
    if not initial.empty:
        shares += f" (step {int(initial['step'].min())}: {100 * initial['positive_share'].mean():.0f}%)"
    ax.set(xlabel="Δ1 + Δ2", ylabel="corr(forward, reverse score)", ylim=(-1.05, 1.05),
           title=f"L = {correlation['length'].iloc[0]} · bins > 0: {shares}")


def _models(frame: pd.DataFrame) -> list[str]:
    """Model names in the order the rule passed their files (the config's order)."""
    return list(pd.unique(frame["model"]))


def figure3(frames: Frames, settings: dict):
    """Correlation of forward and reverse attention scores vs Δ1 + Δ2, one panel per L: the trained
    model and, beside it, the same at step 0 (initialisation); the CSV holds both (``snapshot``)."""
    import matplotlib.pyplot as plt

    correlation = correlation_snapshots(frames["attention"], settings["correlation_pooling"])
    lengths = sorted(correlation["length"].unique())
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.8), squeeze=False)
    for ax, length in zip(axes[0], lengths):
        _correlation_panel(ax, correlation[correlation["length"] == length])
    axes[0, 0].legend(fontsize=7, loc="lower left")
    footer(fig, [frames["attention"]], "weights", f"pooling {settings['correlation_pooling']} · bars: lowest to "
                                                  "highest seed")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig, correlation


def _probability_panel(ax, probability: pd.DataFrame, overlap: bool = False) -> pd.DataFrame:
    """Forward/reverse p(ground truth) over training per model, band from the lowest to the highest seed."""
    summary = seed_summary(probability, MODEL_KEYS + ["direction", "step"], "probability")
    direction_curves(ax, summary, "step", _models(probability), band="range", overlap=overlap)
    ax.set(xlabel="training step", ylabel="p(ground truth)", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    return summary.assign(panel="probability")


def figure4(frames: Frames, settings: dict):
    """Attention-only, L = 2 (§5.2): gradient cosine and ground-truth probability over training."""
    import matplotlib.pyplot as plt

    alignment, probability = frames["gradient_alignment"], frames["query_probability"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    cosine = seed_summary(alignment, MODEL_KEYS + ["step"], "cosine")
    trained = after_initialisation(alignment)
    for model, linestyle in zip(_models(alignment), MODEL_LINESTYLES):
        mean = trained.loc[trained["model"] == model, "cosine"].mean()
        band_line(left, cosine[cosine["model"] == model], "step", f"{model.upper()} (mean after step 0: {mean:.4f})",
                  band="range", color="tab:green", linestyle=linestyle)
    left.set(xlabel="training step", ylabel="cos(g_fwd, g_rev)", ylim=(-1.05, 1.05),
             title=f"gradient alignment, L = {', '.join(map(str, sorted(cosine['length'].unique())))}")
    left.axhline(0, color="0.6", linewidth=0.8)
    left.legend(fontsize=8)
    summary = _probability_panel(right, probability, overlap=True)
    right.set_title("ground-truth probability")
    coinciding = coinciding_directions(summary, "step")
    if coinciding:      # the reverse line lies on the forward one: the legend says so
        note = "\n".join(f"{model.upper()}: forward ≈ reverse (max |Δp| {gap:.1e})" for model, gap in coinciding.items())
        right.legend(fontsize=8, title=note + "\nthick pale: forward; thin, markers: reverse", title_fontsize=7)
    footer(fig, [alignment, probability], "weights", "bands: lowest to highest seed")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig, pd.concat([cosine.assign(panel="cosine"), summary], ignore_index=True)


def _cosine_box(ax, alignment: pd.DataFrame, x: str) -> pd.DataFrame:
    """Distribution of the gradient cosine over the steps after step 0 (``after_initialisation``),
    letters and seeds, its mean under each box; the table's ``step_min``/``step_max``/``steps`` say
    which steps it pools, ``excluded_step`` the step left out (0).

    The y range follows the data (a cosine near 1 would be a line on [−1, 1])."""
    import seaborn as sns

    trained = after_initialisation(alignment)
    order = _models(alignment) if x == "model" else sorted(alignment[x].unique())
    sns.boxplot(data=trained, x=x, y="cosine", order=order, ax=ax, color="tab:green", fliersize=1.5, width=0.5)
    means = trained.groupby(x)["cosine"].mean()
    ax.set_xticks(range(len(order)), [f"{str(key).upper()}\nmean {means.get(key, np.nan):.3f}" for key in order])
    ax.set_ylabel("cos(g_fwd, g_rev), steps > 0")
    steps = trained.groupby(MODEL_KEYS)["step"].agg(step_min="min", step_max="max", steps="nunique").reset_index()
    return (trained.groupby(MODEL_KEYS)["cosine"]
            .describe(percentiles=[0.25, 0.5, 0.75]).reset_index()
            .rename(columns={"25%": "q25", "50%": "median", "75%": "q75", "count": "values"})
            .merge(steps, on=MODEL_KEYS)
            .assign(excluded_step=0, panel="cosine"))


def figure5(frames: Frames, settings: dict):
    """The MDM over L: gradient cosine (box over steps, letters, seeds) and probabilities over training."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    alignment, probability = frames["gradient_alignment"], frames["query_probability"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), gridspec_kw={"width_ratios": [1, 1.6]})
    cosine = _cosine_box(left, alignment, "length")
    left.set(xlabel="sequence length L", title="gradient alignment (step 0 left out)")
    summary = seed_summary(probability, MODEL_KEYS + ["direction", "step"], "probability")
    lengths = sorted(summary["length"].unique())
    palette = dict(zip(lengths, sns.color_palette("viridis", len(lengths))))
    for (length, direction), curve in summary.groupby(["length", "direction"]):
        band_line(right, curve, "step", f"L = {length}, {direction}", band="range", color=palette[length],
                  linestyle="-" if direction == "forward" else "--")
    right.set(xlabel="training step", ylabel="p(ground truth)", ylim=(-0.02, 1.02),
              title="ground-truth probability (solid: forward, dashed: reverse)")
    right.legend(fontsize=7, ncol=2)
    footer(fig, [alignment, probability], "weights", "boxes: steps > 0 · bands: lowest to highest seed")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig, pd.concat([cosine, summary.assign(panel="probability")], ignore_index=True)


def figure11(frames: Frames, settings: dict):
    """Reverse prompt: probability of the correct lowercase and of the best wrong token per position."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    positions = frames["reverse_positions"]
    models, lengths = _models(positions), sorted(positions["length"].unique())
    fig, axes = plt.subplots(len(models), len(lengths), figsize=(4.2 * len(lengths), 3.0 * len(models)),
                             squeeze=False)
    # Log scale: the ARM's and an undertrained MDM's probabilities are flat lines at 0 on [0, 1].
    floor = 0.5 * positions[["prob_correct", "prob_best_wrong"]].to_numpy().min()
    tables = []
    for row, model in enumerate(models):
        for col, length in enumerate(lengths):
            ax = axes[row, col]
            run = positions[(positions["model"] == model) & (positions["length"] == length)]
            for value, label, color in (("prob_correct", "correct lowercase", "tab:red"),
                                        ("prob_best_wrong", "best wrong token (no pad)", "black")):
                summary = seed_summary(run, MODEL_KEYS + ["position"], value)
                band_line(ax, summary, "position", label, band="range", color=color, marker="o", markersize=3)
                tables.append(summary.assign(series=value))
            ax.set(xlabel="position i", ylabel="p(x_i | reverse prompt)", yscale="log", ylim=(floor, 1.5),
                   title=f"{model.upper()}, L = {length}")
            ax.yaxis.set_minor_locator(NullLocator())       # unlabelled minor ticks cost seconds in layout
    axes[0, 0].legend(fontsize=8)
    footer(fig, [positions], "weights")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig, pd.concat(tables, ignore_index=True)


def figure12(frames: Frames, settings: dict):
    """Per L: gradient cosine per model (box) and forward/reverse probabilities of every model over training."""
    import matplotlib.pyplot as plt

    alignment, probability = frames["gradient_alignment"], frames["query_probability"]
    lengths = sorted(alignment["length"].unique())
    fig, axes = plt.subplots(len(lengths), 2, figsize=(10, 3.2 * len(lengths)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2]})
    tables = []
    for (left, right), length in zip(axes, lengths):
        tables.append(_cosine_box(left, alignment[alignment["length"] == length], "model"))
        left.set(xlabel="model", title=f"L = {length} (step 0 left out)")
        tables.append(_probability_panel(right, probability[probability["length"] == length]))
        right.set_title(f"L = {length}: ground-truth probability")
    footer(fig, [alignment, probability], "weights", "boxes: steps > 0 · bands: lowest to highest seed")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig, pd.concat(tables, ignore_index=True)


def figure13(frames: Frames, settings: dict):
    """Per L: correlation vs Δ1 + Δ2 (left) and softmax weight from [M] to B over training (right)."""
    import matplotlib.pyplot as plt

    attention = frames["attention"]
    correlation = correlation_snapshots(attention, settings["correlation_pooling"])
    # averaged over letters, placements, layers and heads (the paper's model has one of each)
    weights = seed_summary(attention, MODEL_KEYS + ["direction", "step"], "weight")
    lengths = sorted(attention["length"].unique())
    fig, axes = plt.subplots(len(lengths), 2, figsize=(10, 3.3 * len(lengths)), squeeze=False)
    for (left, right), length in zip(axes, lengths):
        _correlation_panel(left, correlation[correlation["length"] == length])
        direction_curves(right, weights[weights["length"] == length], "step", _models(attention), band="range")
        right.set(xlabel="training step", ylabel="softmax weight [M] → B", title=f"L = {length}")
        right.legend(fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    footer(fig, [attention], "weights", f"pooling {settings['correlation_pooling']} · bars and bands: lowest to "
                                        "highest seed")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig, pd.concat([correlation.assign(panel="correlation"), weights.assign(panel="weight")], ignore_index=True)


# name: (function, probe tables it reads)
FIGURES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "fig3": (figure3, ("attention",)),
    "fig4": (figure4, ("gradient_alignment", "query_probability")),
    "fig5": (figure5, ("gradient_alignment", "query_probability")),
    "fig11": (figure11, ("reverse_positions",)),
    "fig12": (figure12, ("gradient_alignment", "query_probability")),
    "fig13": (figure13, ("attention",)),
}


def accuracy_over_training(frames: Frames, settings: dict):
    """Forward/reverse success over training: one row per (model, weights kind) the runs have (only the MDM
    has EMA weights), one column per L; thin lines per seed, thick the mean over seeds (curves decoded as
    Table 2, final orders left out)."""
    import matplotlib.pyplot as plt

    curves = frames["accuracy_over_training"]
    run = ["model", "length", "seed", "weights"]
    first = curves[curves["step"] == curves.groupby(run)["step"].transform("min")]
    # The curve's order: the first decoded at the first step (toy.eval.unmask_order; evaluate.accuracy_over_training).
    curves = curves.merge(first.groupby(run).head(1)[run + ["unmask_order"]], on=run + ["unmask_order"])
    per_seed = curves.groupby(["model", "length", "weights", "direction", "seed", "step"], as_index=False)[
        ["successes", "samples"]].sum()
    per_seed["success_pct"] = 100 * per_seed["successes"] / per_seed["samples"]
    rows = per_seed[["model", "weights"]].drop_duplicates().sort_values(["model", "weights"]).to_numpy().tolist()
    lengths = sorted(per_seed["length"].unique())
    fig, axes = plt.subplots(len(rows), len(lengths), figsize=(3.2 * len(lengths), 2.8 * len(rows)),
                             squeeze=False, sharey=True)
    for row, (model, kind) in enumerate(rows):
        for col, length in enumerate(lengths):
            ax = axes[row, col]
            cell = per_seed[(per_seed["model"] == model) & (per_seed["length"] == length) & (per_seed["weights"] == kind)]
            if cell.empty:
                ax.set_axis_off()           # this model was not run at this L
                continue
            for direction, color in DIRECTION_COLORS.items():
                lines = cell[cell["direction"] == direction].pivot(index="step", columns="seed", values="success_pct")
                ax.plot(lines.index, lines.to_numpy(), color=color, alpha=0.3, linewidth=0.8)
                ax.plot(lines.index, lines.mean(axis=1), color=color, linewidth=2, label=direction)
            ax.set(title=f"{model.upper()} L = {length} ({kind})", xlabel="training step", ylim=(-2, 102))
            if col == 0:
                ax.set_ylabel("success (%)")
    next(ax for ax in axes.flat if ax.lines).legend(fontsize=8)
    footer(fig, [frames["accuracy_over_training"]], "weights")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    summary = per_seed.groupby(["model", "length", "weights", "direction", "step"])["success_pct"].agg(
        mean="mean", sd="std", min="min", max="max", seeds="count").reset_index()
    return fig, summary


ACCURACY_FIGURES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "accuracy_over_training": (accuracy_over_training, ("accuracy_over_training",)),
}


def read_probes(paths: list[str | Path]) -> Frames:
    """Probe tables by name (a file ``<probe>.parquet`` holds probe ``<probe>``), each the
    validated concatenation of its files in the order given."""
    by_probe: dict[str, list[Path]] = {}
    for path in map(Path, paths):
        if path.stem not in SCHEMAS:
            raise ValueError(f"{path}: not a probe table; expected <probe>.parquet with a probe of {sorted(SCHEMAS)}")
        by_probe.setdefault(path.stem, []).append(path)
    return {probe: validate(pd.concat([pd.read_parquet(p) for p in files], ignore_index=True), probe)
            for probe, files in by_probe.items()}


def render(name: str, frames: Frames, settings: dict, png: Path, pdf: Path, csv: Path, stamp: dict,
           versions: dict) -> pd.DataFrame:
    """Draw toy figure ``name`` (``FIGURES``) and save it (``render_figure``)."""
    return render_figure(FIGURES, name, frames, settings, png, pdf, csv, stamp, versions)


