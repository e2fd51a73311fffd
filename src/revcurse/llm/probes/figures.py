"""Figures 6, 7 and 9 of the large-scale study, built only from the probe Parquet files.

The correlation of forward and reverse attention scores per Δ1 + Δ2 is the shared
``revcurse.plotting.attention_correlation`` (the toy study's pairing and poolings, samples in place
of letters); the per-seed summaries and curve helpers are shared with the toy figures too. Each figure returns the figure and
the table of the values it plots, written next to the PNG and PDF as CSV.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from revcurse.llm.probes.measure import SCHEMAS, validate
from revcurse.plotting import (attention_correlation, band_line, direction_curves, footer, positive_share,
                               render_figure, seed_summary)

RUN_KEYS = ["model", "task"]


# ---------------------------------------------------------------- reading
def read_probe_tables(paths: list[str | Path]) -> dict[str, pd.DataFrame]:
    """Probe tables by name (``<probe>.parquet`` holds probe ``<probe>``), each the validated
    concatenation of its files in the order given (the config's order of models)."""
    by_probe: dict[str, list[Path]] = {}
    for path in map(Path, paths):
        if path.stem not in SCHEMAS:
            raise ValueError(f"{path}: not a large-scale probe table; expected <probe>.parquet with a probe of "
                             f"{sorted(SCHEMAS)}")
        by_probe.setdefault(path.stem, []).append(path)
    return {probe: validate(pd.concat([pd.read_parquet(p) for p in files], ignore_index=True), probe)
            for probe, files in by_probe.items()}


def excluded_note(*frames: pd.DataFrame) -> str:
    """The figure's count of samples left out because A or B would be different tokens in their two
    queries (``probes.query_pair``): summed over the runs drawn."""
    runs = pd.concat([f[RUN_KEYS + ["seed", "excluded_samples"]] for f in frames]).drop_duplicates(RUN_KEYS + ["seed"])
    return f"excluded samples: {int(runs['excluded_samples'].sum())}"


def final_epoch(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's last probed checkpoint."""
    last = frame.groupby(RUN_KEYS + ["seed"])["epoch"].transform("max")
    return frame[frame["epoch"] == last]


# ---------------------------------------------------------------- Figure 6: attention correlation
def llm_attention_correlation(attention: pd.DataFrame, pooling: str) -> pd.DataFrame:
    """Per (model, task, layer, head, Δ1 + Δ2) at each run's last checkpoint: the toy probe's
    correlation (``figures.attention_correlation``) with samples as its letters and placements
    as its (mask, B) positions; the toy's run keys (study, model, length) become (task, model, 0)."""
    forward = attention["direction"] == "forward"
    toy_view = pd.DataFrame({
        "study": attention["task"], "model": attention["model"], "length": 0, "seed": attention["seed"],
        "step": attention["epoch"], "layer": attention["layer"], "head": attention["head"],
        "direction": attention["direction"], "letter": attention["fact_id"],
        # Only the distance matters to the pairing: forward [M] at 0 and B at Δ1, reverse B at 0 and [M] at Δ2.
        "mask_pos": np.where(forward, 0, attention["delta"]), "upper_pos": np.where(forward, attention["delta"], 0),
        "score": attention["score"], "pos_encoding": "rope", "head_dim": attention["head_dim"],
        "rope_base": attention["rope_base"],
    })
    correlation = attention_correlation(toy_view, pooling)
    shares = positive_share(correlation)
    return (correlation.merge(shares, on=["study", "model", "length", "layer", "head"])
            .rename(columns={"study": "task", "step": "epoch"}).drop(columns="length"))


def figure6(frames: dict[str, pd.DataFrame], settings: dict):
    """Per (MDM, task): correlation vs Δ1 + Δ2 over all layers and heads (top) and per layer (bottom)."""
    import matplotlib.pyplot as plt

    attention = frames["llm_attention"]
    correlation = llm_attention_correlation(attention, settings["correlation_pooling"])
    runs = list(correlation[RUN_KEYS].drop_duplicates().itertuples(index=False))
    fig, axes = plt.subplots(2, len(runs), figsize=(max(7.0, 4.8 * len(runs)), 7.4), squeeze=False)
    tables = []
    for column, (model, task) in enumerate(runs):
        run = correlation[(correlation["model"] == model) & (correlation["task"] == task)]
        label = attention.loc[attention["model"] == model, "label"].iloc[0]
        # Over heads: the spread of the per-head correlations (each already averaged over seeds).
        heads = (run.groupby("distance_sum")["correlation"].agg(mean="mean", sd="std", min="min", max="max")
                 .reset_index())
        top = axes[0, column]
        band_line(top, heads, "distance_sum", "mean over layers × heads (± sd over heads)", color="tab:blue", marker="o",
              markersize=3)
        trace = run.drop_duplicates("distance_sum").sort_values("distance_sum")
        top.plot(trace["distance_sum"], trace["trace"], "--", color="0.3", linewidth=1.2,
                 label=f"(1/D)·Tr R(Δ1+Δ2), D = {trace['head_dim'].iloc[0]}")
        top.axhline(0, color="0.6", linewidth=0.8)
        top.set(xlabel="Δ1 + Δ2", ylabel="corr(forward, reverse score)", ylim=(-1.05, 1.05),
                title=f"{label}, {task} · {100 * (run['correlation'] > 0).mean():.0f}% of (layer, head, bin) > 0")
        top.legend(fontsize=7, loc="lower left")
        per_layer = run.groupby(["layer", "distance_sum"])["correlation"].mean().unstack("distance_sum")
        bottom = axes[1, column]
        image = bottom.imshow(per_layer.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, origin="lower",
                              extent=(per_layer.columns.min() - 0.5, per_layer.columns.max() + 0.5,
                                      -0.5, len(per_layer) - 0.5))
        bottom.grid(False)
        bottom.set_yticks(range(len(per_layer)), per_layer.index.tolist() if len(per_layer) <= 16
                          else [str(layer) if layer % 4 == 0 else "" for layer in per_layer.index])
        bottom.set(xlabel="Δ1 + Δ2", ylabel="layer", title="per layer: mean over heads")
        fig.colorbar(image, ax=bottom, label="correlation")
        tables.append(heads.assign(model=model, task=task, panel="all_heads"))
    footer(fig, [attention], "context", f"pooling {settings['correlation_pooling']} · checkpoint: last probed · "
                                         f"{excluded_note(attention)}")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig, pd.concat([correlation.assign(panel="per_head"), *tables], ignore_index=True)


# ---------------------------------------------------------------- Figure 7: training dynamics
def figure7(frames: dict[str, pd.DataFrame], settings: dict):
    """Per (model, task): gradient cosine per checkpoint (box over samples and seeds), gradient inner
    product (mean ± sd over seeds) and p(ground truth) of the forward and reverse query over training."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    alignment, probability = frames["llm_gradient_alignment"], frames["llm_query_probability"]
    runs = list(alignment[RUN_KEYS].drop_duplicates().itertuples(index=False))
    fig, axes = plt.subplots(len(runs), 3, figsize=(14, 3.4 * len(runs)), squeeze=False)
    tables = []
    for (cos_ax, inner_ax, prob_ax), (model, task) in zip(axes, runs):
        run = alignment[(alignment["model"] == model) & (alignment["task"] == task)]
        label = run["label"].iloc[0]
        sns.boxplot(data=run, x="epoch", y="cosine", ax=cos_ax, color="tab:green", fliersize=1.5, width=0.5)
        cos_ax.axhline(0, color="0.6", linewidth=0.8)
        cos_ax.set(ylabel="cos(g_fwd, g_rev)",
                   title=f"{label}, {task}: gradient cosine (mean {run['cosine'].mean():.3f})")
        inner = seed_summary(run, RUN_KEYS + ["epoch"], "inner_product")
        band_line(inner_ax, inner, "epoch", "mean over samples, ± sd over seeds", color="tab:purple", marker="o",
              markersize=3)
        inner_ax.axhline(0, color="0.6", linewidth=0.8)
        inner_ax.set(xlabel="epoch", ylabel="⟨g_fwd, g_rev⟩", title="gradient inner product")
        probabilities = probability[(probability["model"] == model) & (probability["task"] == task)]
        summary = seed_summary(probabilities, RUN_KEYS + ["direction", "epoch"], "probability")
        direction_curves(prob_ax, summary, "epoch", [model])
        where = "first masked position" if run["kind"].iloc[0] == "mdm" else "next token after the prompt"
        prob_ax.set(xlabel="epoch", ylabel="p(ground truth)", ylim=(-0.02, 1.02),
                    title=f"ground-truth probability, {where}")
        prob_ax.legend(fontsize=8)
        cosine = (run.groupby(RUN_KEYS + ["epoch"])["cosine"].describe(percentiles=[0.25, 0.5, 0.75]).reset_index()
                  .rename(columns={"25%": "q25", "50%": "median", "75%": "q75", "count": "values"}))
        tables += [cosine.assign(panel="cosine"), inner.assign(panel="inner_product"),
                   summary.assign(panel="probability")]
    footer(fig, [alignment, probability], "context", excluded_note(alignment, probability))
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig, pd.concat(tables, ignore_index=True)


# ---------------------------------------------------------------- Figure 9: reverse token probability and rank
def figure9(frames: dict[str, pd.DataFrame], settings: dict):
    """Per task, at each run's last checkpoint: (a) p(correct reverse token) and (b) its rank, per model."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    probability = frames["llm_query_probability"]
    reverse = final_epoch(probability[probability["direction"] == "reverse"])
    tasks = list(pd.unique(reverse["task"]))
    order = list(pd.unique(reverse["label"]))
    fig, axes = plt.subplots(len(tasks), 2, figsize=(4 + 1.6 * len(order), 3.6 * len(tasks)), squeeze=False)
    for (prob_ax, rank_ax), task in zip(axes, tasks):
        run = reverse[reverse["task"] == task]
        for ax, value, title in ((prob_ax, "probability", "(a) p(correct reverse token)"),
                                 (rank_ax, "rank", "(b) its rank (1 = top)")):
            sns.boxplot(data=run, x="label", y=value, order=order, ax=ax, color="tab:orange", fliersize=0, width=0.5,
                        log_scale=True)
            sns.stripplot(data=run, x="label", y=value, order=order, ax=ax, color="0.25", size=2, alpha=0.5)
            medians = run.groupby("label")[value].median()
            ax.set_xticks(range(len(order)), [f"{m}\nmedian {medians.get(m, np.nan):.3g}" for m in order])
            ax.set(xlabel="", ylabel=value, title=f"{task}: {title}")
    table = (reverse.groupby(["task", "model", "label", "kind", "epoch"])
             .agg(probability_mean=("probability", "mean"), probability_median=("probability", "median"),
                  rank_median=("rank", "median"), rank_mean=("rank", "mean"),
                  top1_share=("rank", lambda r: (r == 1).mean()),
                  samples=("fact_id", "count"), seeds=("seed", "nunique"))
             .reset_index())
    footer(fig, [probability], "context", f"reverse queries · last probed checkpoint · {excluded_note(probability)}")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig, table


# ---------------------------------------------------------------- figure registry
# name: (function, probe tables it reads)
FIGURES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "fig6": (figure6, ("llm_attention",)),
    "fig7": (figure7, ("llm_gradient_alignment", "llm_query_probability")),
    "fig9": (figure9, ("llm_query_probability",)),
}


def render(name: str, frames: dict[str, pd.DataFrame], settings: dict, png: Path, pdf: Path, csv: Path,
           stamp: dict, versions: dict) -> pd.DataFrame:
    """Draw figure ``name`` of ``FIGURES`` and save it (``revcurse.plotting.render_figure``)."""
    return render_figure(FIGURES, name, frames, settings, png, pdf, csv, stamp, versions)
