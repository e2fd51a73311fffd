"""Tables built from the per-run Parquet files, never from anything typed in."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import pandas as pd
from scipy.stats import binomtest
from scipy.stats import t as t_dist

from revcurse.core.config import smoke_test_line
from revcurse.core.io import listed_values, load_checkpoint
from revcurse.data.toy import N_LETTERS

# A toy run whose forward success (the trained direction) ends below this did not learn the task
# (at paper scale every learned run ends near 100%).
UNLEARNED_BELOW_FORWARD_PCT = 90.0
# Settings recorded with every evaluation and carried into each table row.
RUN_SETTINGS = ("top_k", "unmask_order", "weights", "preset", "code_version")


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def seed_interval(rates: pd.Series) -> tuple[float, float]:
    """Student-t 95% interval of the mean of per-seed rates (%), clipped to [0, 100]: how sure the
    number is over seeds (NaN for one seed)."""
    n = len(rates)
    if n < 2:
        return float("nan"), float("nan")
    half = t_dist.ppf(0.975, n - 1) * rates.std(ddof=1) / math.sqrt(n)
    return max(0.0, rates.mean() - half), min(100.0, rates.mean() + half)


def best_over_training(curves: pd.DataFrame, weights: str, unmask_order: str) -> pd.DataFrame:
    """Per (length, model, seed, direction): the trained snapshot (step > 0: the initialisation is not a
    checkpoint of training, and an untrained ARM emits random letters that hit the reverse target by
    chance) with the highest success rate (earliest on ties) of the curve decoded as Table 2 is
    (``weights``, ``unmask_order``; models without EMA: raw)."""
    decoded = curves[curves["unmask_order"].isin([unmask_order, "n/a"]) & (curves["step"] > 0)]
    has_weights = decoded.groupby(["model", "length", "seed"])["weights"].transform(lambda w: weights in set(w))
    decoded = decoded[~has_weights | (decoded["weights"] == weights)]
    per_step = decoded.groupby(["length", "model", "direction", "seed", "step"] + list(RUN_SETTINGS[:-1]),
                               as_index=False)[["samples", "successes", "code_version"]].agg(
        {"samples": "sum", "successes": "sum", "code_version": "first"})
    per_step["rate"] = per_step["successes"] / per_step["samples"]
    per_step = per_step.sort_values(["rate", "step"], ascending=[False, True])
    return per_step.drop_duplicates(["length", "model", "direction", "seed"]).drop(columns="rate")


def evaluated_decoding(evals: pd.DataFrame) -> tuple[str, str]:
    """The MDM weights and unmasking order the final evaluation used (raw / random where only the ARM ran)."""
    weights = _values(evals["weights"][evals["weights"] != "raw"]) or "raw"
    return weights, _values(evals["unmask_order"][evals["unmask_order"] != "n/a"]) or "random"


def table2(evals: pd.DataFrame, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """Toy success rates (%) per (L, model, direction, selection) over seeds.

    ``selection`` 'final' reads the final evaluation (``evals``); 'best' the best snapshot of
    each seed and direction in the accuracy over training (``curves``, fewer samples; picking the
    maximum of noisy points biases it upward). ``mean_pct`` is the mean of the per-seed rates
    (every seed has the same number of samples, so it equals the pooled rate). ``seed_ci95_*``
    is the Student-t interval over seeds: how far another set of seeds could move the mean.
    ``ci95_*`` is the Wilson interval of the pooled rate: the sampling uncertainty of the mean
    over *these* seeds only; ``seed_std_pct`` is the spread between seeds.
    """
    selections = [evals.assign(selection="final", step=pd.NA)]
    if curves is not None:
        selections.append(best_over_training(curves, *evaluated_decoding(evals)).assign(selection="best"))
    runs = pd.concat(selections, ignore_index=True)
    keys = ["length", "model", "direction", "selection"]
    per_seed = runs.groupby(keys + ["seed"], as_index=False).agg(
        samples=("samples", "sum"), successes=("successes", "sum"), step=("step", "first"))
    per_seed["rate_pct"] = 100 * per_seed["successes"] / per_seed["samples"]
    settings = runs.groupby(keys)[list(RUN_SETTINGS)].agg(lambda values: ", ".join(sorted(map(str, values.unique()))))
    rows = []
    for (length, model, direction, selection), group in per_seed.groupby(keys):
        group = group.sort_values("seed")
        low, high = wilson_interval(group["successes"].sum(), group["samples"].sum())
        seed_low, seed_high = seed_interval(group["rate_pct"])
        rows.append({
            "L": length,
            "model": model,
            "direction": direction,
            "selection": selection,
            "mean_pct": group["rate_pct"].mean(),
            "per_seed_pct": " / ".join(f"{x:.2f}" for x in group["rate_pct"]),
            "seeds": " / ".join(str(s) for s in group["seed"]),
            "best_steps": " / ".join(str(int(s)) for s in group["step"]) if selection == "best" else "",
            "seed_std_pct": group["rate_pct"].std(ddof=1) if len(group) > 1 else float("nan"),
            "seed_ci95_low_pct": seed_low,
            "seed_ci95_high_pct": seed_high,
            "ci95_low_pct": 100 * low,
            "ci95_high_pct": 100 * high,
            "samples_per_seed": int(group["samples"].iloc[0]),
            "samples": int(group["samples"].sum()),
            **settings.loc[(length, model, direction, selection)].to_dict(),
        })
    order = {"final": 0, "best": 1}
    table = pd.DataFrame(rows)
    return table.sort_values(["selection", "L", "model", "direction"], key=lambda c: c.map(order) if c.name == "selection"
                             else c, kind="stable").reset_index(drop=True)


def decoding_choices(curves: pd.DataFrame) -> pd.DataFrame:
    """Final-snapshot success (%) per (L, model, direction, weights, unmasking order), mean over seeds
    with the Student-t interval over seeds: what each decoding choice does to the same trained runs."""
    last = curves["step"] == curves.groupby(["model", "length", "seed"])["step"].transform("max")
    per_seed = curves[last].groupby(["length", "model", "direction", "weights", "unmask_order", "seed"],
                                    as_index=False)[["samples", "successes"]].sum()
    per_seed["rate_pct"] = 100 * per_seed["successes"] / per_seed["samples"]
    rows = []
    for (length, model, direction, weights, order), group in per_seed.groupby(
            ["length", "model", "direction", "weights", "unmask_order"]):
        low, high = seed_interval(group["rate_pct"])
        rows.append({"L": length, "model": model, "direction": direction, "weights": weights, "unmask_order": order,
                     "mean_pct": group["rate_pct"].mean(), "seed_ci95_low_pct": low, "seed_ci95_high_pct": high,
                     "per_seed_pct": " / ".join(f"{x:.1f}" for x in group["rate_pct"]),
                     "seeds": len(group), "samples_per_seed": int(group["samples"].iloc[0])})
    choices = pd.DataFrame(rows)
    if "preset" in curves.columns:       # which preset made the runs: the Markdown says so
        choices["preset"] = _values(curves["preset"])
    return choices


def decoding_choices_markdown(table: pd.DataFrame) -> str:
    cell = table.assign(value=lambda t: t.apply(
        lambda r: f"{r.mean_pct:.1f}" + (f" [{r.seed_ci95_low_pct:.1f}, {r.seed_ci95_high_pct:.1f}]"
                                         if r.seeds > 1 else ""), axis=1))
    wide = cell.pivot_table(index=["model", "L", "weights", "unmask_order"], columns="direction", values="value",
                            aggfunc="first").reset_index()
    note = smoke_test_line(table["preset"]) if "preset" in table.columns else ""
    header = (f"Final-snapshot success rate (%) of the same trained runs under each decoding choice: mean over "
              f"{_values(table['seeds'])} seeds [Student-t 95% interval over seeds], "
              f"{_values(table['samples_per_seed'] // N_LETTERS)} samples per letter.\n\n")
    return note + header + wide.to_markdown(index=False) + "\n"


def table2_markdown(table: pd.DataFrame) -> str:
    """The paper's layout, once per selection (final, best): one row per L, forward/reverse per model,
    mean [Student-t 95% interval over seeds] and the Wilson interval of the pooled samples."""
    def cell(r) -> str:
        seeds = f" [{r.seed_ci95_low_pct:.1f}, {r.seed_ci95_high_pct:.1f}]" if not math.isnan(r.seed_ci95_low_pct) else ""
        return f"{r.mean_pct:.2f}{seeds} ({r.ci95_low_pct:.1f}–{r.ci95_high_pct:.1f})"

    per_model = table.drop_duplicates("model").set_index("model")
    decoding = "; ".join(
        f"{model.upper()}: top-k = {row.top_k}, weights {row.weights}"
        + (f", unmasking order {row.unmask_order}" if row.unmask_order != "n/a" else "")
        for model, row in per_model.iterrows()
    )
    parts = [
        smoke_test_line(table["preset"]),
        f"Toy success rate (%): mean over seeds, [Student-t 95% interval over seeds] (Wilson 95% interval of the "
        f"pooled samples). {decoding}.\n\n"
        f"preset: **{_values(table['preset'])}** · config {_values(table['config_hash'])} · "
        f"code {_values(table['code_version'])}\n"
    ]
    titles = {"final": "Final step", "best": "Best snapshot over training, per seed and direction (biased upward: "
                                            "the maximum of noisy points)"}
    for selection, rows in table.groupby("selection", sort=False):
        wide = rows.assign(value=rows.apply(cell, axis=1)).pivot_table(
            index="L", columns=["model", "direction"], values="value", aggfunc="first")
        wide.columns = [f"{m.upper()} {d}" for m, d in wide.columns]
        wide = wide.fillna("not run")          # a (model, L) cell whose runs are not there yet
        samples = rows["samples_per_seed"]
        parts.append(f"\n### {titles.get(selection, selection)}\n\nseeds {_values(rows['seeds'])}; "
                     f"{_values(samples)} samples per seed ({_values(samples // N_LETTERS)} per letter)\n\n"
                     + wide.reset_index().to_markdown(index=False) + "\n")
    return "".join(parts)


def _values(column: pd.Series) -> str:
    """A column's value, or all of its values where the rows differ (e.g. a run missing a seed)."""
    return ", ".join(listed_values(column))


def loss_curves(runs: Iterable[Path | str]) -> pd.DataFrame:
    """The logged training loss of each run checkpoint (model.pt), one row per (run, step)."""
    frames = []
    for path in runs:
        payload = load_checkpoint(path, "rerun the training job that writes it")
        spec = payload["spec"]
        frames.append(pd.DataFrame(payload["losses"]).assign(
            preset=spec["preset"], model=spec["model"], length=spec["length"], seed=spec["seed"],
            precision=spec["train"].get("precision", "fp32"), code_version=payload["provenance"]["code_version"]))
    return pd.concat(frames, ignore_index=True)


def preset_comparison(evals: pd.DataFrame, losses: pd.DataFrame, baseline: str, variant: str,
                      curves: pd.DataFrame | None = None, last_steps: int = 500) -> pd.DataFrame:
    """Two presets that differ in one setting (precision, initialisation, ...) on the same cells and
    seeds: per (L, model, metric) that both ran, each preset's mean and sd over seeds, the difference
    (variant − baseline) and, where both have two seeds or more, its Welch 95% interval and p-value
    (a single seed, e.g. one run trained longer, gets its numbers side by side and no interval).

    Metrics: forward and reverse success (%) of the final evaluation, the mean training loss over
    the last ``last_steps`` steps (the loss curve's end, where the runs have converged) and, given the
    accuracy over training (``curves``), each direction's best over training as Table 2 reads it
    (``best_over_training``): whether a setting moves the peak or only where training ends.
    ``*_unlearned_seeds``: the seeds of the cell whose forward success is below ``UNLEARNED_BELOW_FORWARD_PCT``,
    runs that did not learn the task. Their reverse number measures no reversal, so the reverse
    metrics leave them out (``*_seeds`` counts the seeds each row averages); forward and loss keep
    them, where the failure shows.
    """
    from scipy.stats import ttest_ind

    run = ["preset", "length", "model", "seed"]
    per_seed = evals.groupby(run + ["direction"])[["successes", "samples"]].sum()
    rates = (100 * per_seed["successes"] / per_seed["samples"]).rename("value").reset_index()
    rates["metric"] = rates["direction"] + " success (%)"
    tail = losses[losses["step"] > losses.groupby(run)["step"].transform("max") - last_steps]
    final_loss = tail.groupby(run, as_index=False)["loss"].mean()
    final_loss = final_loss.rename(columns={"loss": "value"}).assign(metric=f"loss, last {last_steps} steps")
    values = [rates.drop(columns="direction"), final_loss]
    if curves is not None:
        decoding = evaluated_decoding(evals)
        best = pd.concat([best_over_training(runs, *decoding) for _, runs in curves.groupby("preset")])
        values.append(best.assign(value=100 * best["successes"] / best["samples"],
                                  metric=best["direction"] + " success, best over training (%)")[run + ["value", "metric"]])
    values = pd.concat(values, ignore_index=True)
    forward = rates[rates["direction"] == "forward"]
    unlearned_runs = forward[forward["value"] < UNLEARNED_BELOW_FORWARD_PCT]
    unlearned = unlearned_runs.groupby(["preset", "length", "model"])["seed"].apply(
        lambda seeds: " ".join(map(str, sorted(seeds))))
    is_unlearned = values.set_index(run).index.isin(unlearned_runs.set_index(run).index)
    values["left_out"] = is_unlearned & values["metric"].str.startswith("reverse")
    rows = []
    for (length, model, metric), cell in values.groupby(["length", "model", "metric"]):
        if not {baseline, variant} <= set(cell["preset"]):
            continue
        # After leaving unlearned seeds out, a side of a reverse row can have no seed left.
        by = {name: cell[(cell["preset"] == name) & ~cell["left_out"]]["value"] for name in (baseline, variant)}
        if not any(len(v) for v in by.values()):       # no seed of either learned: nothing to compare
            continue
        low = high = p = float("nan")
        if all(len(v) >= 2 for v in by.values()):
            test = ttest_ind(by[variant], by[baseline], equal_var=False)
            low, high, p = *test.confidence_interval(0.95), test.pvalue
        rows.append({"L": length, "model": model, "metric": metric,
                     "baseline": baseline, "baseline_mean": by[baseline].mean(),
                     "baseline_sd": by[baseline].std(ddof=1), "baseline_seeds": len(by[baseline]),
                     "variant": variant, "variant_mean": by[variant].mean(),
                     "variant_sd": by[variant].std(ddof=1), "variant_seeds": len(by[variant]),
                     "difference": by[variant].mean() - by[baseline].mean(), "diff_ci95_low": low,
                     "diff_ci95_high": high, "welch_p": p,
                     "baseline_unlearned_seeds": unlearned.get((baseline, length, model), ""),
                     "variant_unlearned_seeds": unlearned.get((variant, length, model), "")})
    return pd.DataFrame(rows)
