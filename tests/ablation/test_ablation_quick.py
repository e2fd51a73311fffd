"""The quick preset's ablation outputs, from the session's `snakemake --config preset=quick all` (conftest.quick_all)."""
import pandas as pd
import pytest


def test_quick_ablation_reference_rows_are_the_table2_numbers(quick_all):
    ablation = pd.read_csv(quick_all / "results/quick/ablation.csv")
    table2 = pd.read_csv(quick_all / "results/quick/table2.csv").query("selection == 'final'")
    assert len(ablation) == 6 and set(ablation["preset"]) == {"quick"}
    references = ablation[ablation["paper_model"].notna()].set_index("paper_model")
    assert sorted(references.index) == ["arm", "mdm"]
    for model, row in references.iterrows():
        for direction in ("forward", "reverse"):
            expected = table2[(table2["L"] == row["L"]) & (table2["model"] == model) & (table2["direction"] == direction)]
            assert row[f"{direction}_mean_pct"] == pytest.approx(expected["mean_pct"].item(), abs=1e-4)
            assert row[f"{direction}_per_seed_pct"] == expected["per_seed_pct"].item()
    conclusion = (quick_all / "results/quick/ablation_conclusion.md").read_text()
    assert "preset **quick**" in conclusion and "Largest measured change" in conclusion
    assert "**quick preset — a smoke test of the pipeline" in conclusion.split("Measured on")[0]
    assert (quick_all / "results/quick/figures/ablation.png").stat().st_size > 0
