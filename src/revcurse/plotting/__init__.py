"""Figure helpers shared by the studies: per-seed summaries, the forward/reverse attention-score correlation,
bands and direction curves, the quick-preset watermark, the footer, and drawing + saving a figure with its
plotted values and provenance (``render_figure``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from revcurse.core.config import SMOKE_TEST_PRESETS
from revcurse.core.rope import rope_trace

CORRELATION_POOLINGS = ("per_pair", "per_bin", "pooled_seeds")
DIRECTION_COLORS = {"forward": "tab:blue", "reverse": "tab:orange"}
MODEL_LINESTYLES = ("-", "--", ":", "-.")     # models in the order of the config
MODEL_KEYS = ["study", "model", "length"]
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


def quick_presets(frames: dict[str, pd.DataFrame]) -> list[str]:
    """The smoke-test presets (``SMOKE_TEST_PRESETS``) among the ``preset`` values of ``frames``."""
    presets = {str(p) for frame in frames.values() if "preset" in frame.columns for p in frame["preset"].unique()}
    return sorted(presets & set(SMOKE_TEST_PRESETS))


def mark_quick_preset(fig, presets) -> bool:
    """A quick-preset figure says so on its face: a large red watermark, QUICK PRESET / SMOKE TEST,
    across the middle of the figure, pale enough to read the data through, sized to fit the
    figure. Nothing is drawn for other presets. True if marked."""
    if not set(map(str, presets)) & set(SMOKE_TEST_PRESETS):
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
    # One line across the figure: a long note (several presets or code versions) gets a smaller font
    # rather than running off the edge (a character is about 0.55 em wide).
    fits = 0.98 * fig.get_size_inches()[0] * 72 / (0.55 * 7)
    fig.text(0.01, 0.003, note, fontsize=7 * min(1.0, fits / len(note)), color="0.35", ha="left", va="bottom")


# ---------------------------------------------------------------- figures
Frames = dict[str, pd.DataFrame]


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


def save_figure(fig, png: Path | str, pdf: Path | str, provenance: dict, dpi: int = 170) -> None:
    """Save ``fig`` as PNG and PDF with ``provenance`` (JSON) in their metadata: the PNG text key
    ``revcurse`` and the PDF ``Subject``, the carriers every figure of the pipeline uses; close it."""
    import json

    import matplotlib.pyplot as plt

    record = json.dumps(provenance, sort_keys=True)
    for path in (png, pdf):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi, metadata={"revcurse": record})
    fig.savefig(pdf, metadata={"Subject": record})
    plt.close(fig)


def render_figure(figures: dict[str, tuple[Callable, tuple[str, ...]]], name: str, frames: Frames, settings: dict,
                  png: Path, pdf: Path, csv: Path, stamp: dict, versions: dict) -> pd.DataFrame:
    """Draw ``figures[name]`` (``draw_figure``: a quick-preset figure carries a visible marker) and
    save it as PNG and PDF, with ``stamp``, the package ``versions`` and ``settings`` in their
    metadata, and its plotted values as CSV with ``stamp`` columns."""
    import matplotlib
    matplotlib.use("Agg")

    fig, table = draw_figure(figures, name, frames, settings)
    save_figure(fig, png, pdf, {**stamp, **versions, "settings": settings})
    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    table = table.assign(**stamp)
    table.to_csv(csv, index=False)
    return table
