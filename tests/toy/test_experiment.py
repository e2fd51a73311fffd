"""The Table 2 experiment's rule (docs/toy.md) on made-up runs whose verdict is known."""
import numpy as np
import pandas as pd
import pytest
from helpers import workflow
from revcurse.core.paths import run_dir

from revcurse.toy.experiment import (CHOICES, compatibility, experiment, forward_reverse_correlation, markdown,
                                     loss_levels, paper_mdm_cells, stuck_seed, stuck_seed_markdown, summary)

PAPER_VALUES = "resources/paper_values.yaml"


def runs(preset: str, forward: list[float], reverse: list[float], length: int = 20, samples: int = 5200):
    """eval.parquet and accuracy_over_training.parquet rows of one preset's seeds with these success rates (%)."""
    evals, curves = [], []
    for seed, (fwd, rev) in enumerate(zip(forward, reverse)):
        for direction, pct in (("forward", fwd), ("reverse", rev)):
            row = {"preset": preset, "model": "mdm", "length": length, "seed": seed, "direction": direction,
                   "samples": samples, "successes": round(pct * samples / 100), "code_version": "abc"}
            evals.append(row)
            for step in (0, 1500, 3000):
                for weights, order in CHOICES:
                    curves.append({**row, "step": step, "weights": weights, "unmask_order": order,
                                   "top_k": 3, "precision": "bf16",
                                   "successes": round(pct * samples / 100) if step else 0})
    return pd.DataFrame(evals), pd.DataFrame(curves)


def test_paper_cells_are_the_eight_printed_mdm_values():
    paper = paper_mdm_cells(PAPER_VALUES)
    assert len(paper) == 8 and set(paper["L"]) == {10, 20, 30, 40} and (paper["paper_seeds"] == 3).all()
    assert paper.set_index(["L", "direction"]).loc[(20, "reverse"), "printed"] == pytest.approx(55.70)


def test_compatibility_takes_the_papers_noise_from_our_spread():
    rates = pd.Series([50.0, 54.0, 58.0, 52.0, 56.0])          # mean 54, sd 3.16
    near = compatibility(rates, 55.70, 3)
    assert near["compatible"] and near["t"] == pytest.approx((54 - 55.7) / (rates.std() * np.sqrt(1 / 5 + 1 / 3)))
    assert not compatibility(rates - 38, 55.70, 3)["compatible"]      # a 39-point gap is not noise
    assert compatibility(pd.Series([99.6] * 5), 99.31, 3)["t"] == pytest.approx(0.29 / (0.5 * np.sqrt(1 / 5 + 1 / 3)))


def test_a_candidate_like_the_paper_passes_stage_a_and_one_like_the_reference_fails():
    like_paper = runs("table2_like_paper", [97.0, 97.5, 97.8, 96.9, 97.4], [52.0, 58.0, 55.0, 57.0, 54.0])
    like_ours = runs("table2_like_ours", [99.6, 99.7, 99.8, 99.5, 99.7], [16.0, 18.0, 15.0, 19.0, 17.0])
    unlearned = runs("table2_unlearned", [97.0, 97.5, 0.5, 1.0, 97.4], [52.0, 58.0, 0.0, 0.0, 54.0])
    partial = runs("table2_partial", [97.0, 97.5], [52.0, 58.0])
    evals, curves = (pd.concat(frames) for frames in zip(like_paper, like_ours, unlearned, partial))
    table, verdicts, per_run = experiment(evals, curves, PAPER_VALUES)
    stage_a = verdicts[verdicts["rule"].str.startswith("stage A")].set_index("preset")
    assert stage_a.loc["table2_like_paper", "verdict"] == "passes"
    assert stage_a.loc["table2_like_paper", "compatible_choices"] == ", ".join(sorted(f"{w}/{o}" for w, o in CHOICES))
    assert stage_a.loc["table2_like_ours", "verdict"] == "fails"
    assert "more than 2 points" in stage_a.loc["table2_like_ours", "why"]
    assert "no choice" in stage_a.loc["table2_like_ours", "why"]
    assert "3 of 5 seeds learn" in stage_a.loc["table2_unlearned", "why"]
    assert stage_a.loc["table2_partial", "verdict"] == "incomplete"
    full = verdicts[verdicts["rule"].str.startswith("Table 2")].set_index("preset")
    # Only L = 20 ran: a failure there fails the whole rule, whatever the other lengths do.
    assert full["verdict"].to_dict() == {"table2_like_paper": "incomplete", "table2_like_ours": "fails",
                                         "table2_unlearned": "fails", "table2_partial": "incomplete"}
    assert "needs 5 seeds at L = [10, 30, 40]" in full.loc["table2_like_paper", "why"]
    reverse = table[(table["preset"] == "table2_unlearned") & (table["choice"] == "table2")
                    & (table["direction"] == "reverse")].iloc[0]
    assert reverse["learned_seeds"] == 3 and reverse["mean_pct"] == pytest.approx(np.mean([52.0, 58.0, 54.0]), abs=0.05)
    assert len(per_run) == 17 and per_run["learned"].sum() == 15
    rho = forward_reverse_correlation(per_run).set_index("L").loc[20, "spearman_rho"]
    assert rho < -0.5            # like_paper's lower forward goes with its higher reverse
    report = markdown(table, verdicts, per_run)
    assert "### table2_like_paper, L = 20" in report and "| table2_like_ours" in report


def test_a_length_still_running_fails_the_rule_once_too_few_seeds_can_learn():
    """table2_init_radd at L = 40 after four seeds, one learned: at most 2 of 5 can learn, so it fails already."""
    evals, curves = (pd.concat(frames) for frames in zip(
        runs("table2_radd", [99.9, 99.8, 99.9, 99.7, 99.9], [5.0, 6.0, 4.0, 5.0, 6.0], length=20),
        runs("table2_radd", [0.6, 74.0, 0.2, 99.9], [0.0, 89.0, 0.1, 1.8], length=40)))
    table, verdicts, _ = experiment(evals, curves, PAPER_VALUES)
    full = verdicts.set_index("rule").loc["Table 2 (every L)"]
    assert full["verdict"] == "fails" and "L = 40: 1 of 4 seeds learn (at most 2 of 5)" in full["why"]
    assert "| 1 / 4             | 99.9 (n = 1) " in summary(table, verdicts)      # one learned seed: no interval


def test_the_rule_reads_mdm_runs_only():
    """An ARM run among the evaluations (the default's candidate runs both models) is an error, never pooled."""
    evals, curves = runs("table2_radd", [99.9, 99.8, 99.9, 99.7, 99.9], [5.0, 6.0, 4.0, 5.0, 6.0])
    arm = evals.assign(model="arm")
    with pytest.raises(ValueError, match=r"MDM runs only.*\['arm', 'mdm'\]"):
        experiment(pd.concat([evals, arm]), curves, PAPER_VALUES)


def test_a_run_with_a_loss_curve_gets_the_loss_level_nearest_its_loss():
    evals, curves = runs("table2_radd", [99.9, 0.5], [5.0, 0.1], length=10)
    levels = loss_levels(10, "sum")
    losses = pd.DataFrame([{"preset": "table2_radd", "length": 10, "seed": 1, "step": step,
                            "loss": levels["context_blind"] + (0.3 if step > 2500 else 5.0)} for step in range(100, 3001, 100)])
    per_run = experiment(evals, curves, PAPER_VALUES, losses, {"table2_radd": "sum"})[2].set_index("seed")
    assert per_run.loc[1, "loss_level"] == "context_blind"          # its last 500 steps only
    assert per_run.loc[1, "loss_last_500_steps"] == pytest.approx(levels["context_blind"] + 0.3)
    assert pd.isna(per_run.loc[0, "loss_level"])                       # no loss curve shipped


def stuck_runs(**forward_by_preset: float):
    """One L = 40 seed-0 run per preset with this final forward success (and its losses: 1.0 minus it; per
    position, loss reduction 'mean')."""
    frames = [runs(preset, [fwd], [fwd / 2], length=40) for preset, fwd in forward_by_preset.items()]
    evals, curves = (pd.concat(parts) for parts in zip(*frames))
    losses = pd.DataFrame([{"preset": p, "length": 40, "seed": 0, "step": step, "loss": 1.0 - fwd / 100}
                           for p, fwd in forward_by_preset.items() for step in range(100, 3001, 100)])
    return evals, curves, losses, {preset: "mean" for preset in forward_by_preset}


def test_the_loss_levels_are_the_datas_entropies():
    """Against the closed form of the toy data (one lowercase at i, its uppercase at j > i, pads elsewhere):
    position p holds a lowercase with probability (L-1-p)/n and an uppercase with p/n, n = L(L-1)/2."""
    length = 10
    n = length * (length - 1) / 2
    context_blind = 0.0
    for p in range(length):
        lower, upper = (length - 1 - p) / n, p / n
        for prob, letters in ((lower, 26), (upper, 26), (1 - lower - upper, 1)):
            context_blind -= prob * np.log(prob / letters) if prob > 0 else 0.0
    levels = loss_levels(length, "sum")
    assert levels["context_blind"] == pytest.approx(context_blind, rel=1e-6)
    assert levels["floor"] == pytest.approx(np.log(26 * n))
    assert levels["pairing_blind"] == pytest.approx(np.log(26 * n) + np.log(26))
    assert levels["floor"] < levels["pairing_blind"] < levels["context_blind"]
    assert loss_levels(length, "mean")["floor"] == pytest.approx(levels["floor"] / length)


def test_the_stuck_seed_reading_names_the_changes_that_free_it():
    runs_, reading = stuck_seed(*stuck_runs(table2_stuck_fp32=1.0, paper_bf16_init_pytorch=0.5,
                                             table2_stuck_no_attention_bias=98.0))
    assert runs_["change"].tolist()[0] == "none" and set(runs_["change"]) == {"none", "fp32", "no_attention_bias"}
    assert "stays stuck; 1 of 2 single changes make it learn (no_attention_bias)" in reading
    freed = runs_.set_index("change").loc["no_attention_bias"]
    assert freed["forward_pct_step_3000"] == pytest.approx(98.0, abs=0.05) and freed["forward_pct_step_0"] == 0
    assert freed["loss_last_500_steps"] == pytest.approx(0.02)
    assert freed["loss_floor"] == pytest.approx(loss_levels(40, "mean")["floor"])
    assert f"no_attention_bias 0.02 (floor, {loss_levels(40, 'mean')['floor']:.3g})" in reading
    assert "| none" in stuck_seed_markdown(runs_, reading)
    assert "earlier arithmetic" in stuck_seed(*stuck_runs(paper_bf16_init_pytorch=99.0, table2_stuck_fp32=1.0))[1]
    assert "no single change" in stuck_seed(*stuck_runs(paper_bf16_init_pytorch=0.5, table2_stuck_fp32=1.0))[1]
    with pytest.raises(ValueError, match="expected one unchanged run"):
        stuck_seed(*stuck_runs(table2_stuck_fp32=1.0))
    with pytest.raises(ValueError, match=r"loss levels: no loss reduction given for presets \['table2_stuck_fp32'\]"):
        stuck_seed(*stuck_runs(paper_bf16_init_pytorch=0.5, table2_stuck_fp32=1.0)[:3], {"paper_bf16_init_pytorch": "mean"})


@pytest.mark.workflow
def test_the_experiments_target_builds_from_whatever_runs_exist(workdir):
    """`snakemake results/reference/table2_experiment.md` reads the shipped table2_* runs (reference/paper/runs/) and
    nothing else; with none it stops saying where they go."""
    target = "results/reference/table2_experiment.md"
    missing = workflow.snakemake("-n", target, cwd=workdir, check=False)
    assert "no run of a table2_* preset under reference/paper/runs/" in missing
    evals, curves = runs("table2_like_paper", [97.0, 97.5, 97.8, 96.9, 97.4], [52.0, 58.0, 55.0, 57.0, 54.0])
    for seed in range(5):
        for model in ("mdm", "arm"):   # the candidate's ARM runs are Table 2's, not the rule's: left out
            run = workdir / run_dir("table2_like_paper", "toy", model, 20, seed, root="reference/paper/runs")
            run.mkdir(parents=True)
            evals[evals["seed"] == seed].assign(model=model).to_parquet(run / "eval.parquet")
            curves[curves["seed"] == seed].assign(model=model).to_parquet(run / "accuracy_over_training.parquet")
    assert workflow.job_counts(workflow.snakemake("-n", target, cwd=workdir)) == {
        "reference_table2_experiment": 1}
    workflow.snakemake("-c1", target, cwd=workdir)
    verdicts = pd.read_csv(workdir / "results/reference/table2_experiment_verdicts.csv")
    assert verdicts.set_index("rule").loc["stage A (L = 20)", "verdict"] == "passes"
