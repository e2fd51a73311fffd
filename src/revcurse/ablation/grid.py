"""The ablation grid of the toy study (docs/ablation.md): which ingredient moves reverse accuracy.

A *cell* is one setting of four axes — position encoding, attention, objective, depth —
over the fields of the paper's model that trains with its objective (``ablation.fields_from``). Every cell is trained, evaluated and probed with the same
commands, training settings and seeds as the paper's MDM and ARM; the cells that *are*
the MDM and the ARM (``ablation.reference_models``) are the Table 2 runs themselves.
Everything but the Snakemake rules (workflow/rules/ablation.smk) is here: the grid's
expansion and validity, cell names, run directories and specs, the table, the
per-factor effects with their intervals, the written conclusion and the figure.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from revcurse.core.config import derive_seed, smoke_test_line
from revcurse.core.io import listed_values
from revcurse.core.paths import run_dir
from revcurse.toy.specs import toy_eval_spec, toy_model_fields, toy_probe_spec
from revcurse.toy.tables import table2

STUDY = "ablation"
AXES = ("pos_encoding", "attention", "objective", "n_layers")
# Short labels for cell names: rope_bi_diff_depth1 is RoPE, bidirectional, masked diffusion, one layer.
SHORT_NAMES = {
    "rope": "rope", "learned": "abs", "none": "nope",
    "bidirectional": "bi", "causal": "causal",
    "masked_diffusion": "diff", "fixed_rate_masking": "fixed", "next_token": "ntp",
}
# Readable labels of the axes' levels, for the figure: "learned pos · bidirectional · masked diffusion · 1 layer".
READABLE_NAMES = {
    "rope": "RoPE", "learned": "learned pos", "none": "no pos",
    "bidirectional": "bidirectional", "causal": "causal",
    "masked_diffusion": "masked diffusion", "fixed_rate_masking": "fixed-rate masking", "next_token": "next token",
}
# A cell whose mean forward accuracy is below this did not learn the trained direction,
# so its reverse accuracy says little about transfer; the conclusion names such cells.
LEARNED_FORWARD_PCT = 50.0


@dataclass(frozen=True)
class Cell:
    name: str
    pos_encoding: str
    attention: str
    objective: str
    n_layers: int
    model_fields: dict            # ModelConfig fields (+ ema_decay) as in a toy run spec
    paper_model: str | None       # the toy.models entry this cell is, if any

    def axes(self) -> dict:
        return {axis: getattr(self, axis) for axis in AXES}

    def probe_tables(self) -> tuple[str, ...]:
        """The probe tables measured for this cell.

        Causal attention with a masking objective gets none: the probes' [M] queries put the
        forward context B *after* [M] ("[M] … B"), which causal attention cannot see, so its
        attention route does not exist and the forward gradient is that of a query the model
        cannot answer; the queries this model does answer ("A … [M]") are not in probes.py
        (docs/ablation.md). Only masking objectives read [M], so only they have an attention table.
        """
        if self.objective == "next_token":
            return ("gradient_alignment",)
        if self.attention == "causal":
            return ()
        return ("gradient_alignment", "attention")


def cell_name(pos_encoding: str, attention: str, objective: str, n_layers: int) -> str:
    return f"{SHORT_NAMES[pos_encoding]}_{SHORT_NAMES[attention]}_{SHORT_NAMES[objective]}_depth{n_layers}"


def cell_model_fields(config: dict, pos_encoding: str, attention: str, objective: str, n_layers: int) -> dict:
    """A cell's model fields: those of the toy model its objective takes them from (``ablation.fields_from``:
    EMA, head, biases, loss reduction...) with the four axes."""
    ablation = config["ablation"]
    fields = {**toy_model_fields(config, ablation["fields_from"][objective]), "pos_encoding": pos_encoding,
              "attention": attention, "objective": objective, "n_layers": n_layers}
    if objective == "fixed_rate_masking":
        fields["fixed_mask_rate"] = ablation["fixed_mask_rate"]
    return fields


def invalid_reason(config: dict, model_fields: dict) -> str | None:
    """Why ``ModelConfig`` rejects these fields (e.g. next-token with bidirectional attention), or None."""
    from revcurse.toy.train import toy_configs

    try:
        toy_configs({"length": config["ablation"]["length"], "model_fields": model_fields,
                     "train": config["toy"]["train"]})
    except ValueError as error:
        return str(error)
    return None


def expand_grid(config: dict) -> tuple[list[Cell], list[dict]]:
    """The cells of ``config['ablation']`` in axis order (objective outermost), and the excluded
    combinations as {cell, reason}. ModelConfig's own checks decide validity, so the grid can never
    hold a model the training code would refuse."""
    ablation, toy = config["ablation"], config["toy"]
    if ablation["length"] not in toy["lengths"]:
        raise ValueError(f"config.yaml: ablation.length = {ablation['length']} is not in toy.lengths "
                         f"{toy['lengths']}: the reference cells reuse the Table 2 runs of that length")
    for key, named in (("reference_models", ablation["reference_models"]),
                       ("fields_from", ablation["fields_from"].values())):
        unknown = sorted({m for m in named if m not in toy["models"]})
        if unknown:
            raise ValueError(f"config.yaml: ablation.{key} names {unknown}, which are not keys of toy.models "
                             f"({', '.join(toy['models'])})")
    references = {m: toy_model_fields(config, m) for m in ablation["reference_models"]}
    axes = ablation["axes"]
    cells, excluded = [], []
    for objective, attention, pos_encoding, n_layers in itertools.product(
            axes["objective"], axes["attention"], axes["pos_encoding"], axes["n_layers"]):
        name = cell_name(pos_encoding, attention, objective, n_layers)
        fields = cell_model_fields(config, pos_encoding, attention, objective, n_layers)
        reason = invalid_reason(config, fields)
        if reason:
            excluded.append({"cell": name, "reason": reason})
            continue
        paper_model = next((m for m, f in references.items() if f == fields), None)
        cells.append(Cell(name, pos_encoding, attention, objective, n_layers, fields, paper_model))
    found = {c.paper_model for c in cells}
    for model in ablation["reference_models"]:
        if model not in found:
            settings = {axis: references[model].get(axis) for axis in AXES}
            raise ValueError(
                f"config.yaml: ablation.reference_models names {model!r}, but toy.models.{model} "
                f"({settings}) is not a cell of the grid ablation.axes = {axes} with "
                f"ablation.fields_from = {ablation['fields_from']}"
            )
    return cells, excluded


def check_ablation_config(config: dict) -> None:
    """The ablation section's rules that span several keys, checked when the config is loaded
    (revcurse.pipeline.config): ``expand_grid`` raises ValueError naming them."""
    expand_grid(config)


# ---------------------------------------------------------------- runs, as the workflow sees them
def cell_run_dirs(config: dict, cell: Cell) -> list[str]:
    """One directory per seed: the Table 2 run for a reference cell, the cell's own otherwise."""
    study, model = ("toy", cell.paper_model) if cell.paper_model else (STUDY, cell.name)
    return [run_dir(config["preset"], study, model, config["ablation"]["length"], seed)
            for seed in config["toy"]["seeds"]]


def cell_inputs(config: dict, cell: Cell) -> list[str]:
    """The files the table reads for one cell."""
    names = ["eval.parquet"] + [f"probes/{table}.parquet" for table in cell.probe_tables()]
    return [f"{directory}/{name}" for directory in cell_run_dirs(config, cell) for name in names]


def train_spec(config: dict, cell: Cell, seed: int) -> dict:
    """A cell's training spec: the toy training settings, snapshots only at the start and the end
    (the table reads the final step; snapshots change no weights)."""
    train = {**config["toy"]["train"], "snapshot_every": config["toy"]["train"]["steps"]}
    return {"preset": config["preset"], "study": STUDY, "model": cell.name, "length": config["ablation"]["length"],
            "seed": seed, "model_fields": cell.model_fields, "train": train}


def train_arguments(config: dict, cell: Cell) -> list[str]:
    """``python -m revcurse.toy train`` arguments that train every seed of a cell as one stack."""
    arguments = []
    for seed, directory in zip(config["toy"]["seeds"], cell_run_dirs(config, cell)):
        arguments += ["--spec", json.dumps(train_spec(config, cell, seed), sort_keys=True),
                      "--out", f"{directory}/model.pt", "--snapshots", f"{directory}/snapshots.pt"]
    return arguments


def eval_spec(config: dict, cell: Cell, seed: int) -> dict:
    return toy_eval_spec(config, cell.name, config["ablation"]["length"], seed)


def probe_spec(config: dict, cell: Cell, seed: int) -> dict:
    """As probes.smk's spec for a grid run, with the ablation as study."""
    return toy_probe_spec(config, STUDY, cell.name, config["ablation"]["length"], seed)


def grid_record(config: dict) -> dict:
    """Everything the table job needs, as JSON: the settings and, per cell, its axes and run directories."""
    cells, excluded = expand_grid(config)
    return {
        "preset": config["preset"],
        "length": config["ablation"]["length"],
        "seeds": config["toy"]["seeds"],
        "steps": config["toy"]["train"]["steps"],
        "baseline": config["ablation"]["reference_models"][0],
        "bootstrap_replicates": config["ablation"]["bootstrap_replicates"],
        "correlation_pooling": config["toy"]["probes"]["correlation_pooling"],
        "cells": [{**asdict(cell), "runs": cell_run_dirs(config, cell), "probe_tables": list(cell.probe_tables())}
                  for cell in cells],
        "excluded": excluded,
    }


# ---------------------------------------------------------------- the table
def read_cell_runs(grid: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (cell, seed) the probe summaries at the last step, and every evaluation with ``model`` set to the cell."""
    from revcurse.plotting import attention_correlation, final_step

    evals, probes = [], []
    for cell in grid["cells"]:
        for directory in map(Path, cell["runs"]):
            evaluation = pd.read_parquet(directory / "eval.parquet").assign(model=cell["name"])
            row = {"cell": cell["name"], "seed": int(evaluation["seed"].iloc[0]),
                   "gradient_cosine": np.nan, "attention_correlation": np.nan}
            if "gradient_alignment" in cell["probe_tables"]:
                alignment = final_step(pd.read_parquet(directory / "probes/gradient_alignment.parquet"))
                row["gradient_cosine"] = alignment["cosine"].mean()
            if "attention" in cell["probe_tables"]:
                attention = pd.read_parquet(directory / "probes/attention.parquet")
                correlation = attention_correlation(attention, grid["correlation_pooling"])
                row["attention_correlation"] = correlation["correlation"].mean()
            evals.append(evaluation)
            probes.append(row)
    return pd.DataFrame(probes), pd.concat(evals, ignore_index=True)


def per_seed_table(grid: dict, probes: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, seed): the cell's axes, forward/reverse successes and rates, and the probe summaries."""
    counts = evals.pivot_table(index=["model", "seed"], columns="direction", values=["successes", "samples"],
                               aggfunc="sum")
    counts.columns = [f"{direction}_{value}" for value, direction in counts.columns]
    counts = counts.reset_index().rename(columns={"model": "cell"})
    for direction in ("forward", "reverse"):
        counts[f"{direction}_pct"] = 100 * counts[f"{direction}_successes"] / counts[f"{direction}_samples"]
    code = evals.groupby(["model", "seed"])["code_version"].agg(lambda v: ", ".join(sorted(set(v))))
    counts = counts.merge(code.reset_index().rename(columns={"model": "cell"}), on=["cell", "seed"])
    axes = pd.DataFrame([{"cell": c["name"], "paper_model": c["paper_model"] or "", **{a: c[a] for a in AXES}}
                         for c in grid["cells"]])
    return axes.merge(counts, on="cell").merge(probes, on=["cell", "seed"])


def cell_table(grid: dict, per_seed: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: accuracy exactly as Table 2 computes it (``aggregation.table2``) and the
    mean and sd over seeds of each probe summary."""
    accuracy = table2(evals).rename(columns={"model": "cell"})
    wide = accuracy.pivot(index="cell", columns="direction",
                          values=["mean_pct", "seed_std_pct", "ci95_low_pct", "ci95_high_pct", "per_seed_pct"])
    wide.columns = [f"{direction}_{value}" for value, direction in wide.columns]
    probes = per_seed.groupby("cell").agg(
        gradient_cosine_mean=("gradient_cosine", "mean"), gradient_cosine_sd=("gradient_cosine", "std"),
        attention_correlation_mean=("attention_correlation", "mean"),
        attention_correlation_sd=("attention_correlation", "std"))
    settings = accuracy.groupby("cell").first()[["L", "seeds", "samples_per_seed", "preset", "code_version"]]
    rows = []
    for cell in grid["cells"]:
        name = cell["name"]
        probed = cell["probe_tables"]
        rows.append({
            "cell": name, "paper_model": cell["paper_model"] or "", **{a: cell[a] for a in AXES},
            **settings.loc[name].to_dict(), **wide.loc[name].to_dict(), **probes.loc[name].to_dict(),
            "probes": ", ".join(probed) if probed else "none (causal attention cannot see the [M] query's context)",
            "run_dir": str(Path(cell["runs"][0]).parent),
        })
    columns = ["cell", "paper_model", *AXES, "L", "seeds", "samples_per_seed"]
    columns += [f"{d}_{v}" for d in ("forward", "reverse")
                for v in ("mean_pct", "seed_std_pct", "ci95_low_pct", "ci95_high_pct", "per_seed_pct")]
    columns += ["gradient_cosine_mean", "gradient_cosine_sd", "attention_correlation_mean",
                "attention_correlation_sd", "probes", "run_dir", "preset", "code_version"]
    return pd.DataFrame(rows)[columns]


# ---------------------------------------------------------------- effects and the conclusion
def bootstrap_reverse_pct(per_seed: pd.DataFrame, replicates: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per cell, ``replicates`` bootstrap draws of its mean reverse accuracy (%): the seeds are
    resampled with replacement and each drawn seed's successes redrawn binomially, so the
    interval carries both the spread between seeds and the sampling noise of the evaluation."""
    draws = {}
    for cell, group in per_seed.groupby("cell", sort=False):
        samples = group["reverse_samples"].to_numpy()
        rates = group["reverse_successes"].to_numpy() / samples
        chosen = rng.integers(0, len(group), size=(replicates, len(group)))
        draws[cell] = 100 * (rng.binomial(samples[chosen], rates[chosen]) / samples[chosen]).mean(axis=1)
    return draws


def _mean_difference(pairs: list[tuple[str, str]], observed: pd.Series,
                     draws: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """Mean over (reference cell, changed cell) pairs of the change in reverse accuracy, and its 95% interval."""
    if not pairs:
        return np.nan, np.nan, np.nan
    effect = np.mean([observed[changed] - observed[reference] for reference, changed in pairs])
    replicates = np.mean([draws[changed] - draws[reference] for reference, changed in pairs], axis=0)
    low, high = np.percentile(replicates, [2.5, 97.5])
    return float(effect), float(low), float(high)


def factor_effects(per_seed: pd.DataFrame, baseline: str, replicates: int, seed: int = 0) -> pd.DataFrame:
    """Per factor and per level other than the baseline cell's: the change in mean reverse accuracy (pp).

    ``effect_pp``: averaged over every *matched pair* of cells (the two levels, the other three
    factors equal, both cells in the grid); ``from_baseline_pp``: the one pair whose other factors
    are the baseline's (the paper MDM's), NaN when that cell is not in the grid. 95% intervals are
    percentiles of ``bootstrap_reverse_pct``.
    """
    cells = per_seed.drop_duplicates("cell").set_index("cell")
    observed = per_seed.groupby("cell")["reverse_pct"].mean()
    draws = bootstrap_reverse_pct(per_seed, replicates, np.random.default_rng(derive_seed(seed, "ablation-bootstrap")))
    base = cells[cells["paper_model"] == baseline].iloc[0]
    by_axes = {tuple(row[a] for a in AXES): name for name, row in cells.iterrows()}
    rows = []
    for index, factor in enumerate(AXES):
        for level in pd.unique(cells[factor]):
            if level == base[factor]:
                continue
            pairs = []
            for name, row in cells[cells[factor] == base[factor]].iterrows():
                key = tuple(level if i == index else row[a] for i, a in enumerate(AXES))
                if key in by_axes:
                    pairs.append((name, by_axes[key]))
            if not pairs:
                continue
            base_key = tuple(level if i == index else base[a] for i, a in enumerate(AXES))
            from_baseline = [(base.name, by_axes[base_key])] if base_key in by_axes else []
            effect, low, high = _mean_difference(pairs, observed, draws)
            base_effect, base_low, base_high = _mean_difference(from_baseline, observed, draws)
            rows.append({"factor": factor, "from_level": str(base[factor]), "to_level": str(level),
                         "pairs": len(pairs), "effect_pp": effect, "ci95_low_pp": low, "ci95_high_pp": high,
                         "from_baseline_pp": base_effect, "from_baseline_ci95_low_pp": base_low,
                         "from_baseline_ci95_high_pp": base_high})
    return pd.DataFrame(rows)


def _interval(effect: float, low: float, high: float) -> str:
    return "n/a" if np.isnan(effect) else f"{effect:+.1f} [{low:+.1f}, {high:+.1f}]"


def conclusion_markdown(grid: dict, table: pd.DataFrame, effects: pd.DataFrame) -> str:
    """The written conclusion: every number in it comes from ``table`` and ``effects``."""
    baseline = grid["baseline"]
    lines = [
        "# Ablation: which ingredient moves reverse accuracy (toy task)",
        "",
        smoke_test_line(grid["preset"]) +
        f"Measured on the toy task at L = {grid['length']}, preset **{grid['preset']}**, seeds "
        f"{', '.join(map(str, grid['seeds']))}, {grid['steps']} training steps, {len(table)} cells "
        f"({len(grid['excluded'])} combinations excluded as invalid: next-token training with bidirectional "
        "attention sees its own target). Reverse accuracy: share of reverse queries (uppercase prompt) "
        "whose generation contains the lowercase, as in Table 2.",
        "",
        f"Effect of a factor: the change in mean reverse accuracy, in percentage points, when that factor "
        f"alone moves from the paper {baseline.upper()}'s level to another, averaged over all matched pairs "
        "of cells (equal in the other three factors, both in the grid); and for the single pair that "
        f"equals the {baseline.upper()} in the other three factors. 95% intervals: bootstrap "
        f"({grid['bootstrap_replicates']} replicates) over seeds and evaluation samples.",
        "",
        f"| factor | change | matched pairs | effect (pp) [95%] | from the {baseline.upper()} (pp) [95%] |",
        "|---|---|---|---|---|",
    ]
    for row in effects.itertuples():
        lines.append(f"| {row.factor} | {row.from_level} → {row.to_level} | {row.pairs} | "
                     f"{_interval(row.effect_pp, row.ci95_low_pp, row.ci95_high_pp)} | "
                     f"{_interval(row.from_baseline_pp, row.from_baseline_ci95_low_pp, row.from_baseline_ci95_high_pp)} |")
    lines += ["", "## Reading"]
    if effects.empty:
        lines.append("The grid varies no factor, so no effect is measured.")
    else:
        ranked = effects.assign(size=effects["effect_pp"].abs()).sort_values("size", ascending=False)
        for position, row in enumerate(ranked.drop_duplicates("factor").itertuples()):
            excludes_zero = row.ci95_low_pp > 0 or row.ci95_high_pp < 0
            lead = "Largest measured change: " if position == 0 else ""
            lines.append(
                f"- {lead}{row.factor} {row.from_level} → {row.to_level} changed mean reverse accuracy by "
                f"{row.effect_pp:+.1f} pp (95% interval [{row.ci95_low_pp:+.1f}, {row.ci95_high_pp:+.1f}], "
                f"{row.pairs} matched pair{'s' if row.pairs != 1 else ''}); the interval "
                + ("excludes 0." if excludes_zero else "includes 0: no change distinguishable with these seeds and samples.")
            )
    unlearned = table[table["forward_mean_pct"] < LEARNED_FORWARD_PCT]
    if len(unlearned):
        lines.append(f"- Mean forward accuracy below {LEARNED_FORWARD_PCT:.0f}% (the trained direction was not "
                     f"learnt, so reverse accuracy says little about transfer): "
                     + ", ".join(f"{r.cell} ({r.forward_mean_pct:.1f}%)" for r in unlearned.itertuples()) + ".")
    order_blind = table[(table["pos_encoding"] == "none") & (table["attention"] == "bidirectional")]
    if len(order_blind):
        lines.append("- Cells without position encoding and with bidirectional attention cannot tell a sequence "
                     "from its permutations, so their reverse query is their forward query reordered: "
                     + ", ".join(order_blind["cell"]) + ".")
    probed = table.dropna(subset=["gradient_cosine_mean"])
    rho = np.nan
    if len(probed) >= 3 and probed["gradient_cosine_mean"].nunique() > 1 and probed["reverse_mean_pct"].nunique() > 1:
        rho = probed["gradient_cosine_mean"].corr(probed["reverse_mean_pct"], method="spearman")
    if not np.isnan(rho):
        lines.append(f"- Across the {len(probed)} cells with a gradient probe, the Spearman correlation between mean "
                     f"forward/reverse gradient cosine and mean reverse accuracy is {rho:+.2f}.")
    for row in table[table["paper_model"] != ""].itertuples():
        lines.append(f"- Cell {row.cell} is the paper's {row.paper_model.upper()}: its runs are the Table 2 runs "
                     f"in {row.run_dir} (forward {row.forward_mean_pct:.2f}%, reverse {row.reverse_mean_pct:.2f}%).")
    lines += ["", "These are measurements of these cells on this toy task with these seeds and training settings; "
              "they do not by themselves say how the factors act in other tasks, sizes or training lengths."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the figure
def cell_label(cell: dict) -> str:
    """The figure's label of a cell (an entry of ``grid_record``'s ``cells``), its axes spelled
    out, e.g. "learned pos · bidirectional · masked diffusion · 1 layer", and "= paper's MDM"
    for a reference cell; the CSVs' ``cell`` column abbreviates the same (``cell_name``)."""
    layers = int(cell["n_layers"])
    label = " · ".join([*(READABLE_NAMES[cell[axis]] for axis in AXES[:3]), f"{layers} layer{'s' if layers > 1 else ''}"])
    return label + (f"  = paper's {cell['paper_model'].upper()}" if cell.get("paper_model") else "")


def figure(per_seed: pd.DataFrame, grid: dict, code_versions: list[str]):
    """Forward and reverse accuracy, mean gradient cosine and mean attention correlation per cell:
    points are means over seeds, bars ± one sd over seeds."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from revcurse.plotting import mark_quick_preset

    labels = {c["name"]: cell_label(c) for c in grid["cells"]}
    frame = per_seed.assign(label=per_seed["cell"].map(labels))
    order = list(labels.values())
    accuracy = frame.melt(id_vars=["label", "seed"], value_vars=["forward_pct", "reverse_pct"],
                          var_name="direction", value_name="accuracy (%)")
    accuracy["direction"] = accuracy["direction"].str.removesuffix("_pct")
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.0)
    fig, axes = plt.subplots(1, 3, sharey=True, figsize=(13, 2.2 + 0.32 * len(order)))
    point = dict(y="label", order=order, errorbar="sd", linestyle="none", markersize=4, capsize=0.3, err_kws={"linewidth": 1})
    sns.pointplot(data=accuracy, x="accuracy (%)", hue="direction", dodge=0.4,
                  palette={"forward": "tab:blue", "reverse": "tab:orange"}, ax=axes[0], **point)
    sns.pointplot(data=frame, x="gradient_cosine", color="tab:green", ax=axes[1], **point)
    sns.pointplot(data=frame, x="attention_correlation", color="tab:purple", ax=axes[2], **point)
    axes[0].set(xlim=(-3, 103), ylabel="cell")          # the tick labels spell out its four settings
    axes[1].set(xlabel="forward/reverse gradient cosine", xlim=(-1.05, 1.05))
    axes[2].set(xlabel="attention-score correlation\n(mean over Δ1+Δ2)", xlim=(-1.05, 1.05))
    for ax in axes[1:]:
        ax.axvline(0, color="0.6", linewidth=0.8)
    code = code_versions[0] + (f" (+{len(code_versions) - 1} more, see ablation.csv)" if len(code_versions) > 1 else "")
    fig.text(0.01, 0.003, f"preset {grid['preset']} · L = {grid['length']} · seeds "
             f"{', '.join(map(str, grid['seeds']))} · {grid['steps']} steps · code {code} · "
             "mean ± sd over seeds; no point: not measured for that cell", fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    mark_quick_preset(fig, [grid["preset"]])
    return fig


def write_outputs(grid: dict, csv: Path, per_seed_csv: Path, md: Path, png: Path, pdf: Path,
                  stamp: dict) -> pd.DataFrame:
    """Read every cell's runs and write the table, the per-seed values, the conclusion and the figure
    (``stamp`` as columns of the tables, with the package versions in the figure's metadata)."""
    import matplotlib
    matplotlib.use("Agg")

    from revcurse.core.provenance import provenance
    from revcurse.plotting import save_figure

    probes, evals = read_cell_runs(grid)
    per_seed = per_seed_table(grid, probes, evals)
    table = cell_table(grid, per_seed, evals)
    effects = factor_effects(per_seed, grid["baseline"], grid["bootstrap_replicates"])
    for path in (csv, per_seed_csv, md, png, pdf):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.assign(**stamp).to_csv(csv, index=False, float_format="%.4f")
    per_seed.assign(**stamp).to_csv(per_seed_csv, index=False, float_format="%.4f")
    md.write_text(conclusion_markdown(grid, table, effects))
    code_versions = listed_values(table["code_version"])
    save_figure(figure(per_seed, grid, code_versions), png, pdf, {**stamp, **provenance()}, dpi=150)
    return table
