"""Tables built from the per-run Parquet files, never from anything typed in."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd
from scipy.stats import binomtest

from .data.toy import N_LETTERS

# Settings recorded with every evaluation and carried into each table row.
RUN_SETTINGS = ("top_k", "unmask_order", "weights", "preset", "code_version")


def read_parquets(paths: Iterable[Path | str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def table2(evals: pd.DataFrame) -> pd.DataFrame:
    """Toy success rates (%) per (L, model, direction) over seeds.

    ``mean_pct`` is the mean of the per-seed rates (every seed has the same number of
    samples, so it equals the pooled rate). ``ci95_*`` is the Wilson interval of that
    pooled rate: the sampling uncertainty of the mean over *these* seeds; the spread
    between seeds is ``seed_std_pct``.
    """
    per_seed = (
        evals.groupby(["length", "model", "direction", "seed"], as_index=False)[["samples", "successes"]].sum()
    )
    per_seed["rate_pct"] = 100 * per_seed["successes"] / per_seed["samples"]
    settings = evals.groupby(["length", "model", "direction"])[list(RUN_SETTINGS)].agg(
        lambda values: ", ".join(sorted(map(str, values.unique())))
    )
    rows = []
    for (length, model, direction), group in per_seed.groupby(["length", "model", "direction"]):
        group = group.sort_values("seed")
        low, high = wilson_interval(group["successes"].sum(), group["samples"].sum())
        rows.append({
            "L": length,
            "model": model,
            "direction": direction,
            "mean_pct": group["rate_pct"].mean(),
            "per_seed_pct": " / ".join(f"{x:.2f}" for x in group["rate_pct"]),
            "seeds": " / ".join(str(s) for s in group["seed"]),
            "seed_std_pct": group["rate_pct"].std(ddof=1) if len(group) > 1 else float("nan"),
            "ci95_low_pct": 100 * low,
            "ci95_high_pct": 100 * high,
            "samples_per_seed": int(group["samples"].iloc[0]),
            "samples": int(group["samples"].sum()),
            **settings.loc[(length, model, direction)].to_dict(),
        })
    return pd.DataFrame(rows)


def table2_markdown(table: pd.DataFrame) -> str:
    """The paper's layout: one row per L, forward/reverse per model, mean [95% interval]."""
    cell = table.assign(
        value=lambda t: t.apply(
            lambda r: f"{r.mean_pct:.2f} [{r.ci95_low_pct:.1f}, {r.ci95_high_pct:.1f}]", axis=1
        )
    )
    wide = cell.pivot_table(index="L", columns=["model", "direction"], values="value", aggfunc="first")
    wide.columns = [f"{m.upper()} {d}" for m, d in wide.columns]
    per_model = table.drop_duplicates("model").set_index("model")
    decoding = "; ".join(
        f"{model.upper()}: top-k = {row.top_k}, weights {row.weights}"
        + (f", unmasking order {row.unmask_order}" if row.unmask_order != "n/a" else "")
        for model, row in per_model.iterrows()
    )
    samples = table["samples_per_seed"]
    header = (
        f"Toy success rate (%), mean over seeds {_values(table['seeds'])} with the Wilson 95% interval of the "
        f"pooled {_values(samples)} samples per seed ({_values(samples // N_LETTERS)} per letter). {decoding}.\n\n"
        f"preset: **{_values(table['preset'])}** · config {_values(table['config_hash'])} · "
        f"code {_values(table['code_version'])}\n\n"
    )
    return header + wide.reset_index().to_markdown(index=False) + "\n"


def _values(column: pd.Series) -> str:
    """A column's value, or all of its values where the rows differ (e.g. a run missing a seed)."""
    return ", ".join(map(str, sorted(column.unique())))
