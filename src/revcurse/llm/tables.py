"""Table 1 and the seed-level Tables 4-6, built only from the runs' prediction Parquet files.

Every accuracy is given two ways, labelled in a ``selection`` column:

- ``best``: the best checkpoint (every ``checkpoint_every`` epochs), chosen per direction, as the
  paper logs "the best forward and reverse accuracies" (App. C). It is selected on the
  evaluation queries themselves, so it is an optimistic figure;
- ``final``: the last checkpoint.

Table 1 is the mean over seeds; Tables 4, 5 and 6 list every seed for Parent-Child,
Person-Description and T-REx.
"""
from __future__ import annotations

import pandas as pd

from revcurse.core.config import smoke_test_line
from revcurse.data.relational import TASKS
from revcurse.llm.model.registry import STANDIN_REVISION

SEED_TABLES = {"table4": "parent_child", "table5": "person_description", "table6": "trex"}
SEED_TABLE_TITLES = {
    "table4": "Table 4. Parent-Child raw results across seeds",
    "table5": "Table 5. Person-Description raw results across seeds",
    "table6": "Table 6. T-REx raw results across seeds",
}
SELECTIONS = {
    "best": "Best checkpoint per direction (as the paper reports)",
    "final": "Final checkpoint",
}
RUN = ["model", "label", "kind", "task", "dataset", "seed"]
# Why the stand-ins' reverse accuracy says nothing about the reversal curse (docs/llm.md, Stand-ins;
# tests/llm/test_llm_standin_reverse.py checks both facts on the datasets).
STANDIN_NOTE = ("Stand-ins cannot answer reverse queries, whatever their kind: trained from scratch on the forward "
                "statements alone, they are never trained to produce a reverse query's answer (it is never a "
                "training completion, and the MDM objective, LLaDA's SFT recipe, never masks the prompt where it "
                "occurs), and the reverse relation's wording is not in their training data. The real models' "
                "reverse accuracy rests on what pre-training taught them (docs/llm.md, Stand-ins).")
SMOKE_TEST = "stand-in models trained from scratch on small settings, not paper-scale numbers"  # the bold line
PROVENANCE = ["preset", "code_version", "model_revision", "packages"]   # packages: those of the evaluation env


def checkpoint_accuracy(predictions: pd.DataFrame) -> pd.DataFrame:
    """Exact match (%) per run, checkpoint and direction."""
    return (
        predictions.groupby(RUN + ["epoch", "direction"], as_index=False)
        .agg(accuracy_pct=("correct", lambda c: 100 * c.mean()), queries=("correct", "size"))
    )


def seed_level(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per run and direction: the final checkpoint's and the best checkpoint's accuracy, with its epoch."""
    per_checkpoint = checkpoint_accuracy(predictions)
    last_epoch = per_checkpoint.groupby(RUN)["epoch"].transform("max")
    final = per_checkpoint[per_checkpoint["epoch"] == last_epoch].assign(selection="final")
    # The earliest epoch among ties, so the choice does not depend on row order.
    best = (
        per_checkpoint.sort_values(["accuracy_pct", "epoch"], ascending=[False, True])
        .drop_duplicates(RUN + ["direction"])
        .assign(selection="best")
    )
    rows = pd.concat([best, final], ignore_index=True)
    settings = predictions.groupby(RUN)[PROVENANCE].agg(lambda v: ", ".join(sorted(map(str, v.unique()))))
    rows = rows.merge(settings.reset_index(), on=RUN)
    rows["task"] = pd.Categorical(rows["task"], categories=list(TASKS), ordered=True)
    return rows.sort_values(["selection", "task", "model", "seed", "direction"]).reset_index(drop=True)


def table1(seeds: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (selection, task, model, direction), with the per-seed values."""
    rows = []
    for (selection, task, model, direction), group in seeds.groupby(
        ["selection", "task", "model", "direction"], observed=True, sort=True
    ):
        group = group.sort_values("seed")
        first = group.iloc[0]
        rows.append({
            "selection": selection,
            "task": task,
            "model": model,
            "label": first.label,
            "kind": first.kind,
            "direction": direction,
            "mean_pct": group["accuracy_pct"].mean(),
            "per_seed_pct": " / ".join(f"{x:.1f}" for x in group["accuracy_pct"]),
            "seeds": " / ".join(str(s) for s in group["seed"]),
            "epochs": " / ".join(str(e) for e in group["epoch"]),
            "queries_per_seed": int(first.queries),
            **{column: first[column] for column in PROVENANCE},
        })
    return pd.DataFrame(rows)


def _header(table: pd.DataFrame, config_hash: str) -> str:
    first = table.iloc[0]
    note = smoke_test_line(table["preset"], SMOKE_TEST)
    if (table["model_revision"] == STANDIN_REVISION).any():
        note += f"{STANDIN_NOTE}\n\n"
    revisions = table.drop_duplicates("label")
    models = ", ".join(f"{row.label} {row.model_revision}" for row in revisions.itertuples())
    return (f"{note}preset: **{first.preset}** · config {config_hash} · code {first.code_version} · "
            f"{first.packages} · model revisions: {models}\n\n")


def table1_markdown(table: pd.DataFrame, config_hash: str) -> str:
    """The paper's layout: one row per training dataset, forward/reverse per model, per selection."""
    seeds = table.iloc[0].seeds
    parts = [f"# Table 1. Exact match (%), mean over seeds {seeds}\n\n", _header(table, config_hash)]
    for selection, title in SELECTIONS.items():
        part = table[table.selection == selection]
        wide = part.pivot_table(index="task", columns=["label", "direction"], values="mean_pct",
                                aggfunc="first", observed=True)
        wide = wide.reindex(columns=_model_columns(part))
        wide.columns = [f"{label} {direction.capitalize()}" for label, direction in wide.columns]
        parts.append(f"## {title}\n\n{wide.reset_index().rename(columns={'task': 'Train dataset'}).to_markdown(index=False, floatfmt='.1f')}\n\n")
    return "".join(parts)


def seed_table_markdown(seeds: pd.DataFrame, table: str, config_hash: str) -> str:
    """One row per seed and their average; columns task × model × F/R, per selection."""
    title = SEED_TABLE_TITLES[table]
    part = seeds[seeds.dataset == SEED_TABLES[table]]
    if part.empty:
        return (f"# {title}\n\n{smoke_test_line(seeds['preset'], SMOKE_TEST)}No run of this preset's grid "
                f"(`llm.grid.tasks`) trains on {SEED_TABLES[table]}.\n")
    parts = [f"# {title}. F = Forward, R = Reverse.\n\n", _header(part, config_hash)]
    for selection, heading in SELECTIONS.items():
        rows = part[part.selection == selection]
        wide = rows.pivot_table(index="seed", columns=["task", "label", "direction"], values="accuracy_pct",
                                aggfunc="first", observed=True)
        wide.loc["Avg."] = wide.mean()
        wide.columns = [f"{task} {label} {direction[0].upper()}" for task, label, direction in wide.columns]
        parts.append(f"## {heading}\n\n{wide.reset_index().rename(columns={'seed': 'Seed'}).to_markdown(index=False, floatfmt='.1f')}\n\n")
    return "".join(parts)


def _model_columns(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, direction) in registry order of first appearance: MDMs first, as in the paper."""
    labels = table.sort_values("kind", key=lambda k: k.map({"mdm": 0, "arm": 1}), kind="stable")["label"].unique()
    return [(label, direction) for label in labels for direction in ("forward", "reverse")]
