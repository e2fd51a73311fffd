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

from .probes import SCHEMAS, validate
from .theory import rope_trace

CORRELATION_POOLINGS = ("per_pair", "per_bin", "pooled_seeds")
DIRECTION_COLORS = {"forward": "tab:blue", "reverse": "tab:orange"}
MODEL_LINESTYLES = ("-", "--", ":", "-.")     # models in the order of the config
MODEL_KEYS = ["study", "model", "length"]
# Presets whose figures are smoke tests, marked on the figure itself (``mark_quick_preset``).
QUICK_PRESETS = ("quick",)
QUICK_MARKER = "QUICK PRESET\nSMOKE TEST"
# Snapshots of Figures 3 and 13, as the CSV's ``snapshot`` column names them.
SNAPSHOTS = {"last": "trained", "first": "initialisation"}


# ---------------------------------------------------------------- summaries
def seed_summary(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Per ``keys``: mean, sd, min and max over seeds of the per-seed mean of ``value``, and the number of seeds."""
    per_seed = frame.groupby(keys + ["seed"], as_index=False)[value].mean()
    return per_seed.groupby(keys)[value].agg(mean="mean", sd="std", min="min", max="max", seeds="count").reset_index()


def final_step(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's last step."""
    last = frame.groupby(MODEL_KEYS + ["seed"])["step"].transform("max")
    return frame[frame["step"] == last]


def first_step(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's first step (step 0, the initialisation, when snapshots are kept)."""
    first = frame.groupby(MODEL_KEYS + ["seed"])["step"].transform("min")
    return frame[frame["step"] == first]


def after_initialisation(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows after step 0. At step 0 the MDM's forward and reverse gradients are those of the
    random initialisation, where their cosine is ≈ 1 whatever training will do (docs/probes.md),
    so Figures 5 and 12 summarise the cosine without it."""
    trained = frame[frame["step"] > 0]
    if trained.empty:
        raise ValueError("the gradient-alignment table has step 0 only; the cosine boxes summarise the steps after "
                         "it (set toy.train.snapshot_every, docs/probes.md)")
    return trained


def _pearson(n, sx, sy, sxx, syy, sxy):
    """Pearson correlation from sums over n pairs (arrays broadcast)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (n * sxy - sx * sy) / np.sqrt((n * sxx - sx**2) * (n * syy - sy**2))


def _pair_statistics(forward: pd.DataFrame, reverse: pd.DataFrame) -> pd.DataFrame:
    """Per Δ1 + Δ2: the number of (forward, reverse) placement pairs, the sum of their
    correlations over letters, and the sums over pairs × letters that give one pooled correlation."""
    def scores(direction: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        wide = direction.pivot(index=["mask_pos", "upper_pos"], columns="letter", values="score")
        delta = np.abs(wide.index.get_level_values("upper_pos") - wide.index.get_level_values("mask_pos"))
        return wide.to_numpy(dtype=np.float64), np.asarray(delta)

    (fwd, delta1), (rev, delta2) = scores(forward), scores(reverse)
    letters = fwd.shape[1]
    bins = (delta1[:, None] + delta2[None, :]).ravel()
    sx, sxx = fwd.sum(1)[:, None], (fwd**2).sum(1)[:, None]
    sy, syy = rev.sum(1)[None, :], (rev**2).sum(1)[None, :]
    sxy = fwd @ rev.T
    pair_corr = _pearson(letters, sx, sy, sxx, syy, sxy)
    shape = sxy.shape

    def per_bin(values) -> np.ndarray:
        return np.bincount(bins, weights=np.broadcast_to(values, shape).ravel())

    pairs = np.bincount(bins)
    table = pd.DataFrame({
        "distance_sum": np.arange(len(pairs)), "pairs": pairs, "pair_corr_sum": per_bin(pair_corr),
        "n": letters * pairs, "sx": per_bin(sx), "sy": per_bin(sy), "sxx": per_bin(sxx),
        "syy": per_bin(syy), "sxy": per_bin(sxy),
    })
    return table[table["pairs"] > 0]


def attention_correlation(attention: pd.DataFrame, pooling: str, at: str = "last") -> pd.DataFrame:
    """Correlation of the forward and reverse [M]→B scores as a function of Δ1 + Δ2, at each run's
    last step (``at="last"``, the trained model) or first step (``at="first"``, step 0: the
    initialisation when snapshots are kept).

    Every forward placement (Δ1) is paired with every reverse placement (Δ2). ``pooling``:

    * ``per_pair``: Pearson over the 26 letters for each pair (the conditional correlation of
      Theorem 4.1: the [M] query is fixed, the keys vary with the letter), averaged over the
      pairs of a bin, then over seeds;
    * ``per_bin``: one Pearson per seed and bin over all (letter, pair) of the bin, averaged over seeds;
    * ``pooled_seeds``: one Pearson per bin over all (seed, letter, pair).

    One row per (study, model, length, layer, head, Δ1 + Δ2) with ``correlation``, its sd, lowest
    and highest value over seeds (NaN for ``pooled_seeds``), the number of seeds and pairs per
    seed, and ``trace`` = (1/D)·Tr R(Δ1 + Δ2), Theorem 4.1's bound with Δ1 = Δ2 = (Δ1 + Δ2)/2
    (NaN without RoPE).
    """
    if pooling not in CORRELATION_POOLINGS:
        raise ValueError(f"correlation pooling {pooling!r}; expected one of {CORRELATION_POOLINGS}")
    if at not in SNAPSHOTS:
        raise ValueError(f"snapshot {at!r}; expected one of {sorted(SNAPSHOTS)}")
    keys = MODEL_KEYS + ["layer", "head"]
    selected = final_step(attention) if at == "last" else first_step(attention)
    per_seed = []
    for group_keys, group in selected.groupby(keys + ["seed"]):
        stats = _pair_statistics(group[group["direction"] == "forward"], group[group["direction"] == "reverse"])
        per_seed.append(stats.assign(**dict(zip(keys + ["seed"], group_keys))))
    stats = pd.concat(per_seed, ignore_index=True)
    sums = ["n", "sx", "sy", "sxx", "syy", "sxy"]
    if pooling == "pooled_seeds":
        pooled = stats.groupby(keys + ["distance_sum"], as_index=False)[sums + ["pairs"]].sum()
        table = pooled.assign(correlation=_pearson(*(pooled[c] for c in sums)), correlation_sd=np.nan,
                              correlation_min=np.nan, correlation_max=np.nan,
                              seeds=stats["seed"].nunique(), pairs=pooled["pairs"] / stats["seed"].nunique())
    else:
        stats["correlation"] = (stats["pair_corr_sum"] / stats["pairs"] if pooling == "per_pair"
                                else _pearson(*(stats[c] for c in sums)))
        table = stats.groupby(keys + ["distance_sum"], as_index=False).agg(
            correlation=("correlation", "mean"), correlation_sd=("correlation", "std"),
            correlation_min=("correlation", "min"), correlation_max=("correlation", "max"),
            seeds=("seed", "nunique"), pairs=("pairs", "mean"))
    geometry = selected.groupby(keys)[["pos_encoding", "head_dim", "rope_base", "step"]].max().reset_index()
    table = table.merge(geometry, on=keys)
    table["trace"] = [
        float(rope_trace(s / 2, d, b)) if enc == "rope" else np.nan
        for s, d, b, enc in zip(table["distance_sum"], table["head_dim"], table["rope_base"], table["pos_encoding"])
    ]
    columns = ["step", "distance_sum", "correlation", "correlation_sd", "correlation_min", "correlation_max",
               "seeds", "pairs", "head_dim", "trace"]
    return table[keys + columns].assign(pooling=pooling)


def correlation_snapshots(attention: pd.DataFrame, pooling: str) -> pd.DataFrame:
    """``attention_correlation`` with ``positive_share`` at the trained (last) step and at step 0
    (each run's first snapshot), one above the other, told apart by ``snapshot`` (``SNAPSHOTS``)
    and ``step``. A run probed at one step only has no initialisation rows."""
    keys = MODEL_KEYS + ["layer", "head"]
    tables = []
    for at, snapshot in SNAPSHOTS.items():
        correlation = attention_correlation(attention, pooling, at)
        tables.append(correlation.merge(positive_share(correlation), on=keys).assign(snapshot=snapshot))
    trained, initial = tables
    last_step = trained.groupby(keys)["step"].max().rename("last_step").reset_index()
    initial = initial.merge(last_step, on=keys)
    initial = initial[initial["step"] < initial["last_step"]].drop(columns="last_step")
    return pd.concat([trained, initial], ignore_index=True)


def positive_share(correlation: pd.DataFrame) -> pd.DataFrame:
    """Per model, length, layer and head: the share of Δ1 + Δ2 bins with a positive correlation."""
    keys = MODEL_KEYS + ["layer", "head"]
    return (correlation.assign(positive=correlation["correlation"] > 0)
            .groupby(keys)["positive"].agg(positive_share="mean", bins="count").reset_index())


# ---------------------------------------------------------------- drawing helpers
def band_line(ax, summary: pd.DataFrame, x: str, label: str, band: str = "sd", **style) -> None:
    """The mean of a ``seed_summary`` with a band of ± one sd, or (``band="range"``) from the lowest
    to the highest seed, which stays positive on a log scale."""
    summary = summary.sort_values(x)
    ax.plot(summary[x], summary["mean"], label=label, **style)
    if band == "range":
        low, high = summary["min"], summary["max"]
    else:
        low, high = summary["mean"] - summary["sd"].fillna(0), summary["mean"] + summary["sd"].fillna(0)
    ax.fill_between(summary[x], low, high, alpha=0.2, color=style.get("color"), linewidth=0)


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


# Forward thick and pale under reverse thin with hollow markers: curves that coincide stay both visible.
OVERLAP_STYLES = {"forward": dict(linewidth=3.2, alpha=0.55, zorder=2),
                  "reverse": dict(linewidth=1.2, marker="o", markersize=3.5, markerfacecolor="white", zorder=3)}


def direction_curves(ax, summary: pd.DataFrame, x: str, models: list[str], band: str = "sd",
                     overlap: bool = False) -> None:
    """Forward/reverse curves of a ``seed_summary``: colour by direction, line style by model; bands
    as ``band_line``'s ``band``. ``overlap``: forward drawn thick and pale under a thin reverse line
    with hollow markers (``OVERLAP_STYLES``), so a reverse curve on top of its forward one hides neither."""
    for model, linestyle in zip(models, MODEL_LINESTYLES):
        for direction, curve in summary[summary["model"] == model].groupby("direction"):
            label = f"{model.upper()} {direction}" if len(models) > 1 else direction
            style = OVERLAP_STYLES[direction] if overlap else {}
            band_line(ax, curve, x, label, band=band, color=DIRECTION_COLORS[direction], linestyle=linestyle, **style)


def coinciding_directions(summary: pd.DataFrame, x: str, tolerance: float = 0.005) -> dict[str, float]:
    """Per model whose forward and reverse mean curves of a ``seed_summary`` are closer than
    ``tolerance`` at every ``x`` (indistinguishable at the figure's scale): the largest difference."""
    coinciding = {}
    for model, curves in summary.groupby("model"):
        wide = curves.pivot_table(index=x, columns="direction", values="mean")
        if {"forward", "reverse"} <= set(wide.columns):
            gap = float((wide["forward"] - wide["reverse"]).abs().max())
            if gap < tolerance:
                coinciding[model] = gap
    return coinciding


def _models(frame: pd.DataFrame) -> list[str]:
    """Model names in the order the rule passed their files (the config's order)."""
    return list(pd.unique(frame["model"]))


def quick_presets(frames: dict[str, pd.DataFrame]) -> list[str]:
    """The smoke-test presets (``QUICK_PRESETS``) among the ``preset`` values of ``frames``."""
    presets = {str(p) for frame in frames.values() if "preset" in frame.columns for p in frame["preset"].unique()}
    return sorted(presets & set(QUICK_PRESETS))


def mark_quick_preset(fig, presets) -> bool:
    """A quick-preset figure says so on its face: a large red watermark, QUICK PRESET / SMOKE TEST,
    across the middle of the figure, pale enough to read the data through, sized to fit the
    figure. Nothing is drawn for other presets. True if marked."""
    if not set(map(str, presets)) & set(QUICK_PRESETS):
        return False
    width, height = fig.get_size_inches()
    longest = max(map(len, QUICK_MARKER.splitlines()))
    size = min(0.6 * 72 * width / (0.7 * longest), 0.2 * 72 * height, 64.0)
    fig.text(0.5, 0.5, QUICK_MARKER, fontsize=size, color="tab:red", alpha=0.17, rotation=12, ha="center",
             va="center", ma="center", fontweight="bold", zorder=100, gid="quick-preset-watermark")
    return True


def footer(fig, frames: list[pd.DataFrame], setting: str, extra: str = "") -> None:
    """Which preset, seeds, ``setting`` (a column: the toy's weights, the LLM probes' query
    context) and code produced the figure, on the figure itself."""
    frame = pd.concat([f[["preset", "seed", setting, "code_version"]] for f in frames])

    def values(column: str) -> str:
        return ", ".join(map(str, sorted(frame[column].unique())))

    note = (f"preset {values('preset')} · seeds {values('seed')} · {setting} {values(setting)} · "
            f"code {values('code_version')}{' · ' + extra if extra else ''}")
    fig.text(0.01, 0.003, note, fontsize=7, color="0.35", ha="left", va="bottom")


# ---------------------------------------------------------------- figures
Frames = dict[str, pd.DataFrame]


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
    """Forward/reverse success over training: one panel per (model, L), one row per weights kind;
    thin lines per seed, thick the mean over seeds (curves decoded as Table 2, final orders left out)."""
    import matplotlib.pyplot as plt

    curves = frames["accuracy_over_training"]
    run = ["model", "length", "seed", "weights"]
    first = curves[curves["step"] == curves.groupby(run)["step"].transform("min")]
    curves = curves.merge(first[run + ["unmask_order"]].drop_duplicates(), on=run + ["unmask_order"])  # the curve's order
    per_seed = curves.groupby(["model", "length", "weights", "direction", "seed", "step"], as_index=False)[
        ["successes", "samples"]].sum()
    per_seed["success_pct"] = 100 * per_seed["successes"] / per_seed["samples"]
    panels = per_seed[["model", "length"]].drop_duplicates().sort_values(["model", "length"]).to_numpy().tolist()
    weights = sorted(per_seed["weights"].unique())
    fig, axes = plt.subplots(len(weights), len(panels), figsize=(3.2 * len(panels), 2.8 * len(weights)),
                             squeeze=False, sharey=True)
    for row, kind in enumerate(weights):
        for col, (model, length) in enumerate(panels):
            ax = axes[row, col]
            cell = per_seed[(per_seed["model"] == model) & (per_seed["length"] == length) & (per_seed["weights"] == kind)]
            if cell.empty:
                ax.set_axis_off()           # a model without EMA has no 'ema' row
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


def draw_figure(figures: dict[str, tuple[Callable, tuple[str, ...]]], name: str, frames: Frames, settings: dict):
    """``figures[name]`` (a function of the probe tables it names) drawn on ``frames``: the figure,
    marked when the frames come from a quick preset (``mark_quick_preset``), and its plotted values."""
    import matplotlib
    matplotlib.use("Agg")
    import seaborn as sns

    if name not in figures:
        raise ValueError(f"unknown figure {name!r}; expected one of {sorted(figures)}")
    function, needed = figures[name]
    missing = [probe for probe in needed if probe not in frames]
    if missing:
        raise ValueError(f"{name} needs the probe tables {missing}")
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    fig, table = function(frames, settings)
    mark_quick_preset(fig, quick_presets(frames))
    return fig, table


def render_figure(figures: dict[str, tuple[Callable, tuple[str, ...]]], name: str, frames: Frames, settings: dict,
                  png: Path, pdf: Path, csv: Path, stamp: dict, versions: dict) -> pd.DataFrame:
    """Draw ``figures[name]`` (``draw_figure``: a quick-preset figure carries a visible marker) and
    save it as PNG and PDF, with ``stamp``, the package ``versions`` and ``settings`` in their
    metadata, and its plotted values as CSV with ``stamp`` columns."""
    import json

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, table = draw_figure(figures, name, frames, settings)
    for path in (png, pdf, csv):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    provenance = json.dumps({**stamp, **versions, "settings": settings}, sort_keys=True)
    fig.savefig(png, dpi=170, metadata={"revcurse": provenance})
    fig.savefig(pdf, metadata={"Subject": provenance})
    plt.close(fig)
    table = table.assign(**stamp)
    table.to_csv(csv, index=False)
    return table
