"""The Table 2 experiment (docs/toy.md, "The Table 2 experiment"): each candidate's MDM runs against the
paper's printed Table 2 cells, under the decision rule written before the runs.

Read from the runs' Parquet files only: ``eval.parquet`` (Table 2's final evaluation) and
``accuracy_over_training.parquet`` (every decoding choice at the last snapshot, and the best over training).
"""
from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pandas as pd
import yaml
from scipy.stats import spearmanr
from scipy.stats import t as t_dist

from revcurse.core.io import listed_values
from revcurse.toy.tables import UNLEARNED_BELOW_FORWARD_PCT, best_over_training, seed_interval

# The rule's constants, as docs/toy.md states them.
SEEDS_PER_CELL = 5
MIN_LEARNED_SEEDS = 4
FORWARD_WITHIN_PCT = 2.0          # at L >= FORWARD_FROM_L, |ours - printed| of the final forward success
FORWARD_FROM_L = 20
SD_FLOOR_PCT = 0.5
FAMILY_ALPHA = 0.05
FAMILY_CELLS = 8                  # Table 2's MDM cells: 4 lengths x 2 directions
# A choice: (weights, unmasking order) decoded at the last snapshot. 'table2' is Table 2's own evaluation.
CHOICES = [("ema", "random"), ("ema", "left_to_right"), ("raw", "random"), ("raw", "left_to_right")]
# The candidate whose model config.yaml sets (the rule's outcome: no candidate reproduces Table 2, so the fallback,
# RADD's initialisation): its runs at every L, MDM and ARM, are Table 2 re-run at the default
# (reference/paper/default/, built by workflow/rules/reference.smk).
DEFAULT_PRESET = "table2_init_radd"


def paper_mdm_cells(paper_values: str | Path) -> pd.DataFrame:
    """The paper's printed MDM cells of Table 2 (L, direction, printed) and how many seeds each averages,
    from resources/paper_values.yaml."""
    resource = yaml.safe_load(Path(paper_values).read_text())
    seeds = next(entry["seeds"] for entry in resource["paper_seeds"] if entry["source"] == "table2")
    rows = [{"L": int(v["ours"]["L"]), "direction": v["ours"]["direction"], "printed": float(v["printed"]),
             "paper_seeds": int(seeds)}
            for v in resource["values"]
            if v.get("ours", {}).get("source") == "table2" and v["ours"].get("model") == "mdm"]
    return pd.DataFrame(rows).sort_values(["L", "direction"]).reset_index(drop=True)


def compatibility(rates: pd.Series, printed: float, paper_seeds: int) -> dict:
    """Our per-seed rates (%) against the paper's mean of ``paper_seeds`` seeds, whose spread is taken as ours
    (floored at SD_FLOOR_PCT): t = (mean - printed) / (s·sqrt(1/n + 1/paper_seeds)), compatible if |t| is
    below the two-sided Student-t quantile at FAMILY_ALPHA / FAMILY_CELLS with n - 1 degrees of freedom."""
    n = len(rates)
    if n < 2:
        return {"t": math.nan, "t_threshold": math.nan, "compatible": False}
    spread = max(rates.std(ddof=1), SD_FLOOR_PCT)
    t = (rates.mean() - printed) / (spread * math.sqrt(1 / n + 1 / paper_seeds))
    threshold = t_dist.ppf(1 - FAMILY_ALPHA / FAMILY_CELLS / 2, n - 1)
    return {"t": t, "t_threshold": threshold, "compatible": bool(abs(t) < threshold)}


def per_seed_rates(evals: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Success (%) per (preset, L, seed, direction, choice): 'table2' (the final evaluation), each of CHOICES
    at the last snapshot, and 'best' (the best trained snapshot, decoded as Table 2), with ``learned``."""
    key = ["preset", "length", "seed", "direction"]
    final = evals.groupby(key, as_index=False)[["successes", "samples"]].sum().assign(choice="table2")
    last = curves[curves["step"] == curves.groupby(["preset", "length", "seed"])["step"].transform("max")]
    last = last.assign(choice=last["weights"] + "/" + last["unmask_order"])
    last = last[last["choice"].isin([f"{w}/{o}" for w, o in CHOICES])]
    choices = last.groupby(key + ["choice"], as_index=False)[["successes", "samples"]].sum()
    best = pd.concat([best_over_training(runs, "ema", "random") for _, runs in curves.groupby("preset")])
    best = best.groupby(key, as_index=False)[["successes", "samples"]].sum().assign(choice="best")
    rates = pd.concat([final, choices, best], ignore_index=True)
    rates["rate_pct"] = 100 * rates["successes"] / rates["samples"]
    forward = final[final["direction"] == "forward"].set_index(["preset", "length", "seed"])
    learned = 100 * forward["successes"] / forward["samples"] >= UNLEARNED_BELOW_FORWARD_PCT
    rates["learned"] = rates.set_index(["preset", "length", "seed"]).index.map(learned).astype(bool)
    return rates.rename(columns={"length": "L"})


def cells(rates: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """One row per (preset, L, direction, choice): seeds run and learned, the mean over learned seeds with its
    Student-t interval, the paper's value and, for the final-step choices, the compatibility test."""
    rows = []
    printed = paper.set_index(["L", "direction"])
    for (preset, length, direction, choice), group in rates.groupby(["preset", "L", "direction", "choice"]):
        learned = group[group["learned"]]["rate_pct"]
        low, high = seed_interval(learned)
        paper_cell = printed.loc[(length, direction)] if (length, direction) in printed.index else None
        test = (compatibility(learned, paper_cell["printed"], paper_cell["paper_seeds"])
                if paper_cell is not None and choice != "best" else {})
        rows.append({"preset": preset, "model": "mdm", "L": length, "direction": direction, "choice": choice,
                     "seeds": len(group), "learned_seeds": len(learned), "mean_pct": learned.mean(),
                     "seed_std_pct": learned.std(ddof=1), "seed_ci95_low_pct": low, "seed_ci95_high_pct": high,
                     "paper_pct": paper_cell["printed"] if paper_cell is not None else math.nan,
                     "t": test.get("t", math.nan), "t_threshold": test.get("t_threshold", math.nan),
                     "compatible": test.get("compatible", pd.NA)})
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame, preset: str, lengths: list[int]) -> dict:
    """The rule at ``lengths`` for one preset: (1) at every L at least MIN_LEARNED_SEEDS of SEEDS_PER_CELL seeds
    learn, (2) at L >= FORWARD_FROM_L the final forward success is within FORWARD_WITHIN_PCT of the paper's,
    (3) one choice makes every cell at these lengths compatible. The conditions are read at the lengths that have
    their seeds; a failure there (or too few seeds left to learn at a length still running) fails the rule
    whatever the missing runs do; otherwise it is 'incomplete' while a length lacks seeds."""
    mine = table[(table["preset"] == preset) & table["L"].isin(lengths)]
    final = mine[mine["choice"] == "table2"]
    forward = final[final["direction"] == "forward"]
    complete = sorted(forward[forward["seeds"] >= SEEDS_PER_CELL]["L"])
    failed = [f"L = {r.L}: {r.learned_seeds} of {r.seeds} seeds learn"
              + ("" if r.seeds >= SEEDS_PER_CELL else f" (at most {r.learned_seeds + SEEDS_PER_CELL - r.seeds} of {SEEDS_PER_CELL})")
              for r in forward.itertuples() if r.learned_seeds + max(SEEDS_PER_CELL - r.seeds, 0) < MIN_LEARNED_SEEDS]
    done = forward[forward["L"].isin(complete)]
    failed += [f"L = {r.L}: forward {r.mean_pct:.2f} vs {r.paper_pct:.2f} (more than {FORWARD_WITHIN_PCT:g} points)"
               for r in done.itertuples() if r.L >= FORWARD_FROM_L and abs(r.mean_pct - r.paper_pct) > FORWARD_WITHIN_PCT]
    tested = mine[mine["choice"].isin([f"{w}/{o}" for w, o in CHOICES]) & mine["L"].isin(complete)]
    compatible = tested.groupby("choice").apply(
        lambda c: len(c) == 2 * len(complete) and bool(c["compatible"].all()), include_groups=False)
    choices = sorted(compatible[compatible].index) if complete else []
    if complete and not choices:
        failed.append("no choice makes every cell compatible")
    largest_t = {choice: tested[tested["choice"] == choice]["t"].abs().max() for choice in choices}
    missing = [L for L in lengths if L not in complete]
    if failed:
        outcome = "fails"
    elif missing:
        return {"verdict": "incomplete", "why": f"needs {SEEDS_PER_CELL} seeds at L = {missing}",
                "compatible_choices": "", "largest_abs_t": math.nan}
    else:
        outcome = "passes"
    return {"verdict": outcome, "why": "; ".join(failed), "compatible_choices": ", ".join(choices),
            "largest_abs_t": min(largest_t.values()) if largest_t else math.nan}


def forward_and_reverse(rates: pd.DataFrame) -> pd.DataFrame:
    """Each run's final forward and reverse success (Table 2's evaluation), one row per (preset, L, seed)."""
    final = rates[rates["choice"] == "table2"]
    return final.pivot_table(index=["preset", "L", "seed", "learned"], columns="direction", values="rate_pct").reset_index()


def forward_reverse_correlation(runs: pd.DataFrame) -> pd.DataFrame:
    """Per L, over the learned runs of every candidate: Spearman's rank correlation of final forward with final
    reverse success, with its p-value (does a less saturated forward pairing go with a higher reverse?)."""
    rows = []
    for length, group in runs[runs["learned"]].groupby("L"):
        rho, p = spearmanr(group["forward"], group["reverse"]) if len(group) > 2 else (math.nan, math.nan)
        rows.append({"L": length, "learned_runs": len(group), "spearman_rho": rho, "p_value": p})
    return pd.DataFrame(rows)


def interval(r) -> str:
    if pd.isna(r.seed_ci95_low_pct):         # fewer than two learned seeds: no interval
        return f"{r.mean_pct:.1f} (n = {r.learned_seeds})"
    return f"{r.mean_pct:.1f} [{r.seed_ci95_low_pct:.1f}, {r.seed_ci95_high_pct:.1f}]"


def summary(table: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    """Candidate × L at a glance (Markdown): seeds learned, the final forward and reverse success of the learned
    seeds with their intervals (Table 2's evaluation), the best reverse over training, the paper's values; then
    each candidate's verdicts."""
    rows = []
    for (preset, length), group in table.groupby(["preset", "L"]):
        cell = group.set_index(["choice", "direction"])
        forward, reverse = cell.loc[("table2", "forward")], cell.loc[("table2", "reverse")]
        rows.append({"candidate": preset, "L": length,
                     "learned / seeds": f"{forward.learned_seeds} / {forward.seeds}",
                     "forward, final": interval(forward), "reverse, final": interval(reverse),
                     "reverse, best over training": f"{cell.loc[('best', 'reverse'), 'mean_pct']:.1f}",
                     "paper forward / reverse": f"{forward.paper_pct:.2f} / {reverse.paper_pct:.2f}"})
    shown = verdicts[["preset", "rule", "verdict", "why"]].rename(columns={"preset": "candidate"})
    return "\n".join([pd.DataFrame(rows).to_markdown(index=False), "", shown.to_markdown(index=False)])


def markdown(table: pd.DataFrame, verdicts: pd.DataFrame, runs: pd.DataFrame) -> str:

    lines = ["# The Table 2 experiment",
             "",
             "Protocol and rule: `docs/toy.md`, \"The Table 2 experiment\" (written before the runs). Built by "
             "`python -m revcurse.toy table2-experiment` from the runs' Parquet files. Success rates in %, mean over the "
             "learned seeds [Student-t 95% interval over seeds]; `t`: (ours - paper) / (s·sqrt(1/n + 1/3)), compatible "
             "where |t| is below the threshold (family-wise 5% over Table 2's 8 MDM cells).",
             "", "## Candidate × L", "",
             "Mean over the learned seeds [95% interval]; the best over training is shown, not judged (biased upward).",
             "", summary(table, verdicts),
             "", "## Verdicts", "",
             verdicts.to_markdown(index=False, floatfmt=".2f"),
             "", "## Forward against reverse, run by run", "",
             "Each run's final forward and reverse success (Table 2's evaluation; `learned`: forward at least "
             f"{UNLEARNED_BELOW_FORWARD_PCT:g}%), and per L Spearman's rank correlation of the two over the learned runs "
             "of every candidate: an association across configurations as much as within one, not a verdict. Where a "
             f"run's loss curve is shipped: its training loss over the last {LOSS_TAIL_STEPS} steps, the data's loss "
             "levels at its length and loss reduction (`loss_levels`: every position's marginal whatever is visible, "
             "the letters' placement without the pairing, and the data's entropy, the floor) and the nearest of them.",
             "",
             forward_reverse_correlation(runs).round(3).to_markdown(index=False), "",
             runs.to_markdown(index=False, floatfmt=".2f"),
             "", "## Final step and best over training", ""]
    for (preset, length), group in table.groupby(["preset", "L"]):
        lines += [f"### {preset}, L = {length}", ""]
        rows = []
        for r in group.sort_values(["choice", "direction"]).itertuples():
            test = "" if pd.isna(r.compatible) else f"t = {r.t:+.2f} (< {r.t_threshold:.2f}: {'yes' if r.compatible else 'no'})"
            rows.append({"choice": r.choice, "direction": r.direction, "learned / seeds": f"{r.learned_seeds} / {r.seeds}",
                         "ours": interval(r), "paper": f"{r.paper_pct:.2f}", "compatible": test})
        lines += [pd.DataFrame(rows).to_markdown(index=False), ""]
    return "\n".join(lines)


def experiment(evals: pd.DataFrame, curves: pd.DataFrame, paper_values: str | Path,
               losses: pd.DataFrame | None = None,
               loss_reductions: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every candidate's cells, its verdicts (stage A, L = 20, and the full rule, every printed L) and each run's
    final forward and reverse success, with its loss beside the data's loss levels where ``losses`` has its loss
    curve (``with_loss_levels``)."""
    if set(evals["model"]) != {"mdm"}:
        raise ValueError(f"the Table 2 experiment reads MDM runs only; the evaluations given hold models "
                         f"{sorted(set(evals['model']))}")
    paper = paper_mdm_cells(paper_values)
    rates = per_seed_rates(evals, curves)
    table = cells(rates, paper)
    verdicts = []
    for preset in sorted(table["preset"].unique()):
        for rule, lengths in (("stage A (L = 20)", [20]), ("Table 2 (every L)", sorted(map(int, paper["L"].unique())))):
            verdicts.append({"preset": preset, "rule": rule, **verdict(table, preset, lengths)})
    runs = forward_and_reverse(rates)
    if losses is not None:
        runs = with_loss_levels(runs, losses, loss_reductions or {})
    return table, pd.DataFrame(verdicts), runs


# Stage B's stuck seed: the run of paper_bf16_init_pytorch that did not learn the forward pairing (MDM, L = 40,
# seed 0), at today's code unchanged and under one change at a time (presets STUCK_CHANGE_PREFIX + <change>).
STUCK_CHANGE_PREFIX = "table2_stuck_"
LOSS_TAIL_STEPS = 500


LOSS_LEVELS = ("context_blind", "pairing_blind", "floor")


@cache   # one dataset build per (L, reduction), however many runs a table places
def loss_levels(length: int, reduction: str) -> dict[str, float]:
    """The expected masked-diffusion loss (revcurse.toy.train.masked_diffusion_loss, nats) of three predictors of
    the toy data of this length, from the data alone. A model whose conditionals are those of a distribution q has
    loss E[-log q(x)] over the data: the 1/t weight turns the loss into the average over unmasking orders of
    -log q(x) factorised in that order (RADD, §3), the same for every order. So:

    * ``context_blind``: every position's marginal, whatever is visible (q, the product of the marginals);
    * ``pairing_blind``: the letters' placement and case, the uppercase's letter drawn apart from the lowercase's
      (q uniform over the N·26 such sequences): log N + log 26;
    * ``floor``: the data's own distribution (uniform over its N sequences), log N: no model goes lower.

    Per sequence for ``reduction`` 'sum', per position (divided by L) for 'mean'."""
    import torch
    from revcurse.data.toy import N_LETTERS, VOCAB_SIZE, make_forward_dataset

    tokens = make_forward_dataset(length).tokens
    count = torch.zeros(length, VOCAB_SIZE).scatter_add_(1, tokens.T, torch.ones(tokens.T.shape))
    marginal = count / len(tokens)
    entropy = -(marginal * marginal.clamp_min(1e-30).log()).sum().item()
    levels = {"context_blind": entropy, "pairing_blind": math.log(len(tokens) * N_LETTERS), "floor": math.log(len(tokens))}
    return {name: value / (length if reduction == "mean" else 1) for name, value in levels.items()}


LOSS_TAIL = f"loss_last_{LOSS_TAIL_STEPS}_steps"


def with_loss_levels(runs: pd.DataFrame, losses: pd.DataFrame, loss_reductions: dict[str, str]) -> pd.DataFrame:
    """``runs`` (one row per preset, L, seed) with, where ``losses`` has the run's loss curve: its loss
    reduction (``loss_reductions``: preset -> 'sum' | 'mean'), its mean training loss over the last LOSS_TAIL_STEPS
    steps, the loss levels of its length and reduction (``loss_levels``) and the level nearest its loss."""
    missing = sorted(set(losses["preset"]) - set(loss_reductions))
    if missing:
        raise ValueError(f"loss levels: no loss reduction given for presets {missing}")
    run = ["preset", "length", "seed"]
    tail = losses[losses["step"] > losses.groupby(run)["step"].transform("max") - LOSS_TAIL_STEPS]
    tail = tail.groupby(run, as_index=False)["loss"].mean().rename(columns={"length": "L", "loss": LOSS_TAIL})
    tail["loss_reduction"] = tail["preset"].map(loss_reductions)
    levels = pd.DataFrame([loss_levels(int(r.L), r.loss_reduction) for r in tail.itertuples()], index=tail.index,
                          columns=list(LOSS_LEVELS)).add_prefix("loss_")
    tail = tail.join(levels)
    tail["loss_level"] = [min(LOSS_LEVELS, key=lambda level: abs(r[f"loss_{level}"] - r[LOSS_TAIL]))
                          for _, r in tail.iterrows()]
    return runs.merge(tail[["preset", "L", "seed", "loss_reduction", LOSS_TAIL, "loss_level",
                            *(f"loss_{level}" for level in LOSS_LEVELS)]], on=["preset", "L", "seed"], how="left")


def stuck_seed(evals: pd.DataFrame, curves: pd.DataFrame, losses: pd.DataFrame,
               loss_reductions: dict[str, str]) -> tuple[pd.DataFrame, str]:
    """One row per run: the change it makes (``none`` for the unchanged run), its final forward and reverse
    success (Table 2's evaluation), its forward success over training (EMA weights, random order, at the steps
    every run has a snapshot), its mean training loss over the last LOSS_TAIL_STEPS steps beside the loss levels
    of its length and loss reduction (``loss_reductions``: preset -> 'sum' | 'mean'; ``loss_levels``); and the
    protocol's reading (docs/toy.md, "The Table 2 experiment", stage B)."""
    rates = per_seed_rates(evals, curves)
    runs = forward_and_reverse(rates).rename(columns={"forward": "final_forward_pct", "reverse": "final_reverse_pct"})
    runs["change"] = [p.removeprefix(STUCK_CHANGE_PREFIX) if p.startswith(STUCK_CHANGE_PREFIX) else "none"
                      for p in runs["preset"]]
    ema = curves[(curves["weights"] == "ema") & (curves["unmask_order"] == "random")
                 & (curves["direction"] == "forward")]
    shared = sorted(set.intersection(*(set(steps) for _, steps in ema.groupby("preset")["step"])))
    over_training = (ema[ema["step"].isin(shared)].groupby(["preset", "step"])[["successes", "samples"]].sum()
                     .pipe(lambda d: 100 * d["successes"] / d["samples"]).unstack("step"))
    over_training.columns = [f"forward_pct_step_{step}" for step in over_training.columns]
    runs = (with_loss_levels(runs, losses, loss_reductions).merge(over_training, left_on="preset", right_index=True)
            .merge(evals.groupby("preset")["code_version"].agg(lambda c: ", ".join(listed_values(c))),
                   left_on="preset", right_index=True))
    first = ["change", "preset", "code_version", "L", "seed", "learned", "final_forward_pct", "final_reverse_pct",
             "loss_reduction", LOSS_TAIL, "loss_level", *(f"loss_{level}" for level in LOSS_LEVELS)]
    runs = runs[first + [c for c in runs.columns if c not in first]]
    runs = runs.sort_values("change", key=lambda c: c != "none").reset_index(drop=True)
    unchanged = runs[runs["change"] == "none"]
    if len(unchanged) != 1:
        raise ValueError(f"stuck seed: expected one unchanged run (a preset not named {STUCK_CHANGE_PREFIX}*), "
                         f"found {len(unchanged)}")
    unsticking = runs[(runs["change"] != "none") & runs["learned"]]["change"].tolist()
    if unchanged["learned"].item():
        reading = ("The unchanged run learns at today's code: the stuck seed was a trajectory of the earlier "
                   "arithmetic, not a property of the initialisation.")
    elif unsticking:
        reading = (f"The unchanged run stays stuck; {len(unsticking)} of {len(runs) - 1} single changes make it learn "
                   f"({', '.join(unsticking)}). One seed: a change also changes the whole trajectory, so a change "
                   "that frees it shows what the stuck trajectory depends on, not a cause found over seeds.")
    else:
        reading = "The unchanged run stays stuck, and no single change makes it learn."
    nearest = [f"{r['change']} {r[LOSS_TAIL]:.3g} ({r['loss_level']}, {r['loss_' + r['loss_level']]:.3g})"
               for _, r in runs.iterrows()]
    reading += (f" Training loss over the last {LOSS_TAIL_STEPS} steps, with the nearest of the data's loss levels "
                f"(`loss_levels`: {', '.join(LOSS_LEVELS)}): {'; '.join(nearest)}.")
    return runs, reading


def stuck_seed_markdown(runs: pd.DataFrame, reading: str) -> str:
    return "\n".join([
        "# The stuck seed (Table 2 experiment, stage B)", "",
        "`paper_bf16_init_pytorch`, MDM, L = 40, seed 0 did not learn the forward pairing in the reference run. Here "
        "it is run at one code version unchanged (`change: none`) and under one change at a time (presets "
        f"`{STUCK_CHANGE_PREFIX}<change>`, `reference/paper/config.yaml`). Success in %; `learned`: final forward at "
        f"least {UNLEARNED_BELOW_FORWARD_PCT:g}%; forward over training with the EMA weights, random order. Built by "
        "`python -m revcurse.toy stuck-seed` from the runs' Parquet files.", "",
        f"**Reading (docs/toy.md, stage B).** {reading}", "",
        runs.to_markdown(index=False, floatfmt=".2f"), ""])
