"""Table 2 from per-run evaluation rows: pooled means, intervals and the Markdown header."""
import pandas as pd
import pytest

from revcurse.data.toy import N_LETTERS
from revcurse.toy.tables import decoding_choices, decoding_choices_markdown, table2, table2_markdown


def evaluation_rows(model: str, length: int, seed: int, forward: int, reverse: int) -> list[dict]:
    """One run's per-letter rows with ``forward``/``reverse`` successes out of 10 per letter."""
    settings = dict(model=model, length=length, seed=seed, samples=10, top_k=3, unmask_order="random",
                    weights="ema", preset="quick", code_version="abc")
    return [dict(settings, letter=letter, direction=direction, successes=successes)
            for letter in range(N_LETTERS)
            for direction, successes in (("forward", forward), ("reverse", reverse))]


def test_means_pool_the_seeds_and_the_header_names_every_seed_that_ran():
    rows = (evaluation_rows("mdm", 6, 0, 10, 4) + evaluation_rows("mdm", 6, 1, 10, 6)
            + evaluation_rows("mdm", 8, 0, 9, 2))                       # L = 8 is missing seed 1
    table = table2(pd.DataFrame(rows)).assign(config_hash="h1")
    reverse = table.set_index(["L", "direction"]).loc[(6, "reverse")]
    assert reverse["mean_pct"] == 50.0 and reverse["per_seed_pct"] == "40.00 / 60.00"
    assert reverse["ci95_low_pct"] < 50.0 < reverse["ci95_high_pct"]
    final = table2_markdown(table).split("### Final step")[1]
    assert "seeds 0, 0 / 1;" in final and "(10 per letter)" in final
    assert set(table["selection"]) == {"final"}
    # Two seeds at 40% and 60%: mean 50 ± t(0.975, 1)·sd/√2 = ± 63.5, clipped to [0, 100].
    assert reverse["seed_ci95_low_pct"] == 0.0 and reverse["seed_ci95_high_pct"] == 100.0
    assert table.set_index(["L", "direction"]).loc[(8, "reverse"), ["seed_ci95_low_pct"]].isna().all()


def test_a_cell_whose_runs_are_missing_reads_not_run():
    rows = evaluation_rows("mdm", 6, 0, 10, 4) + evaluation_rows("mdm", 8, 0, 9, 2) + evaluation_rows("arm", 6, 0, 10, 0)
    final = table2_markdown(table2(pd.DataFrame(rows)).assign(config_hash="h")).split("### Final step")[1]
    row_8 = next(line for line in final.splitlines() if line.startswith("|   8 |"))
    assert row_8.count("not run") == 2 and "nan" not in final          # the ARM did not run at L = 8


def curve_rows(model: str, seed: int, reverse_by_step: dict[int, int], weights: str = "ema",
               order: str = "random") -> list[dict]:
    """Accuracy-over-training rows: reverse successes out of 10 per letter at each step, forward 10."""
    settings = dict(model=model, length=6, seed=seed, samples=10, top_k=3, unmask_order=order, weights=weights,
                    preset="quick", code_version="abc")
    return [dict(settings, step=step, letter=letter, direction=direction, successes=successes)
            for step, reverse in reverse_by_step.items()
            for letter in range(N_LETTERS)
            for direction, successes in (("forward", 10), ("reverse", reverse))]


def test_best_rows_take_each_seeds_best_snapshot_of_the_table2_decoding():
    evals = pd.DataFrame(evaluation_rows("mdm", 6, 0, 10, 2) + evaluation_rows("mdm", 6, 1, 10, 4))
    curves = pd.DataFrame(
        curve_rows("mdm", 0, {0: 9, 500: 7, 1000: 7, 1500: 2})          # best trained 70% first reached at 500
        + curve_rows("mdm", 1, {0: 1, 500: 3, 1000: 5, 1500: 4})        # best 50% at 1000
        + curve_rows("mdm", 0, {1500: 10}, weights="raw")               # other weights: not Table 2's decoding
        + curve_rows("mdm", 1, {1500: 10}, order="parallel"))           # other order: idem
    table = table2(evals, curves).set_index(["direction", "selection"])
    best, final = table.loc[("reverse", "best")], table.loc[("reverse", "final")]
    assert best["mean_pct"] == 60.0 and best["best_steps"] == "500 / 1000" and best["per_seed_pct"] == "70.00 / 50.00"
    assert final["mean_pct"] == 30.0 and final["best_steps"] == ""
    assert list(table2(evals, curves)["selection"].unique()) == ["final", "best"]


def test_decoding_choices_read_the_last_snapshot_of_every_weights_and_order():
    curves = pd.DataFrame(
        curve_rows("mdm", 0, {0: 9, 1500: 2}) + curve_rows("mdm", 1, {0: 9, 1500: 4})
        + curve_rows("mdm", 0, {1500: 6}, order="parallel") + curve_rows("mdm", 1, {1500: 8}, order="parallel")
        + curve_rows("mdm", 0, {0: 9, 1500: 10}, weights="raw") + curve_rows("mdm", 1, {0: 9, 1500: 10}, weights="raw"))
    choices = decoding_choices(curves).set_index(["weights", "unmask_order", "direction"])["mean_pct"]
    assert choices[("ema", "random", "reverse")] == 30.0
    assert choices[("ema", "parallel", "reverse")] == 70.0
    assert choices[("raw", "random", "reverse")] == 100.0
    assert "| mdm" in decoding_choices_markdown(decoding_choices(curves))


def test_quick_tables_open_with_the_smoke_test_line_and_paper_tables_do_not():
    bold = ("**quick preset — a smoke test of the pipeline: small models trained for few steps: not paper-scale "
            "numbers.**")
    quick = pd.DataFrame(evaluation_rows("mdm", 6, 0, 10, 4))
    assert table2_markdown(table2(quick).assign(config_hash="h")).startswith(bold + "\n\n")
    paper = quick.assign(preset="paper")
    assert "smoke test" not in table2_markdown(table2(paper).assign(config_hash="h"))
    curves = pd.DataFrame(curve_rows("mdm", 0, {0: 9, 1500: 2}))
    assert decoding_choices_markdown(decoding_choices(curves)).startswith(bold + "\n\n")
    assert "smoke test" not in decoding_choices_markdown(decoding_choices(curves.assign(preset="paper_bf16")))


def test_preset_comparison_is_variant_minus_baseline_with_a_welch_interval():
    from scipy.stats import ttest_ind

    from revcurse.toy.tables import preset_comparison

    reverse = {"base": [40.0, 50.0, 60.0], "radd": [70.0, 75.0, 95.0]}
    evals = pd.DataFrame([
        {"preset": preset, "length": 10, "model": "mdm", "seed": seed, "direction": direction, "letter": letter,
         "samples": 50, "successes": (value if direction == "reverse" else 99.0) / 2}
        for preset, values in reverse.items() for seed, value in enumerate(values)
        for direction in ("forward", "reverse") for letter in ("a", "b")
    ])
    losses = pd.DataFrame([
        {"preset": preset, "length": 10, "model": "mdm", "seed": seed, "step": step, "loss": 1.0 + (preset == "radd")}
        for preset in reverse for seed in range(3) for step in (100, 1000)
    ])
    table = preset_comparison(evals, losses, baseline="base", variant="radd").set_index("metric")
    row = table.loc["reverse success (%)"]
    assert row["difference"] == pytest.approx(30.0) and row["variant_seeds"] == row["baseline_seeds"] == 3
    expected = ttest_ind(reverse["radd"], reverse["base"], equal_var=False)
    assert row["welch_p"] == pytest.approx(expected.pvalue)
    assert row["diff_ci95_low"] == pytest.approx(expected.confidence_interval(0.95).low)
    assert table.loc["loss, last 500 steps", "difference"] == pytest.approx(1.0)
    assert set(table["baseline_unlearned_seeds"]) == set(table["variant_unlearned_seeds"]) == {""}
    unlearned = evals.assign(successes=evals["successes"].where(
        (evals["preset"] != "radd") | (evals["seed"] != 2) | (evals["direction"] != "forward"), 10.0))
    without_seed2 = preset_comparison(unlearned, losses, "base", "radd").set_index("metric")
    assert set(without_seed2["variant_unlearned_seeds"]) == {"2"}
    # Seed 2 learned nothing: the reverse row averages seeds 0 and 1 only, forward keeps all three.
    assert without_seed2.loc["reverse success (%)", "variant_seeds"] == 2
    assert without_seed2.loc["reverse success (%)", "variant_mean"] == pytest.approx(72.5)
    assert without_seed2.loc["forward success (%)", "variant_seeds"] == 3
    # One seed a side: the numbers side by side, no interval.
    one_seed = preset_comparison(evals[evals["seed"] == 0], losses[losses["seed"] == 0], "base", "radd").set_index("metric")
    assert one_seed.loc["reverse success (%)", "difference"] == pytest.approx(30.0)
    assert one_seed[["diff_ci95_low", "diff_ci95_high", "welch_p", "baseline_sd"]].isna().all().all()
    # A baseline seed that learned nothing, alone in its cell: its reverse side is empty, the variant's is kept.
    one_unlearned = unlearned.assign(preset=unlearned["preset"].map({"base": "radd", "radd": "base"}))
    solo = preset_comparison(one_unlearned[one_unlearned["seed"] == 2], losses[losses["seed"] == 2], "base", "radd")
    reverse_row = solo.set_index("metric").loc["reverse success (%)"]
    assert (reverse_row["baseline_seeds"], reverse_row["variant_seeds"]) == (0, 1)
    assert reverse_row["variant_mean"] == pytest.approx(60.0) and reverse_row["baseline_unlearned_seeds"] == "2"
    neither = evals.assign(successes=evals["successes"].where(evals["direction"] != "forward", 10.0))
    assert "reverse success (%)" not in preset_comparison(neither, losses, "base", "radd")["metric"].values
    # A cell that only one preset ran is no row.
    assert preset_comparison(evals[evals["preset"] == "base"], losses[losses["preset"] == "base"], "base", "radd").empty


def test_preset_comparison_adds_the_best_over_training_of_each_preset():
    """Each preset's per-seed peak, read as Table 2's best (EMA, random order, step > 0), not the
    other preset's and not step 0."""
    from revcurse.toy.tables import preset_comparison

    peak = {"base": 60.0, "radd": 20.0}          # reverse success at step 200; 5% elsewhere, 90% at step 0
    settings = {"top_k": 3, "unmask_order": "random", "weights": "ema", "code_version": "x"}
    evals = pd.DataFrame([
        {"preset": preset, "length": 10, "model": "mdm", "seed": seed, "direction": direction, "letter": "a",
         "samples": 100, "successes": 95 + seed, **settings}
        for preset in peak for seed in range(2) for direction in ("forward", "reverse")])
    curves = pd.DataFrame([
        {"preset": preset, "length": 10, "model": "mdm", "seed": seed, "direction": "reverse", "letter": "a",
         "step": step, "samples": 100, **settings, "weights": weights,
         "successes": 90.0 if step == 0 else peak[preset] + seed if (step, weights) == (200, "ema") else 5.0}
        for preset in peak for seed in range(2) for step in (0, 100, 200, 300) for weights in ("ema", "raw")])
    losses = pd.DataFrame([{"preset": p, "length": 10, "model": "mdm", "seed": s, "step": 100, "loss": 1.0 + s}
                           for p in peak for s in range(2)])
    table = preset_comparison(evals, losses, "base", "radd", curves).set_index("metric")
    row = table.loc["reverse success, best over training (%)"]
    assert (row["baseline_mean"], row["variant_mean"]) == (pytest.approx(60.5), pytest.approx(20.5))
    assert row["difference"] == pytest.approx(-40.0)
    assert "reverse success, best over training (%)" not in preset_comparison(evals, losses, "base", "radd")["metric"].values
