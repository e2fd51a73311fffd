"""reference/paper/reproduce_cell.py: the comparison it prints, and a cell that is not shipped (the re-run
itself costs CPU-minutes; docs/toy.md, "Stacking and reproducibility", says where it was run)."""
import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[2] / "reference/paper/reproduce_cell.py"
spec = importlib.util.spec_from_file_location("reproduce_cell", SCRIPT)
reproduce_cell = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce_cell)

SHIPPED = reproduce_cell.RUNS / "paper_bf16/toy/mdm/L10/seed0/eval.parquet"


def test_only_provenance_may_differ_for_identical():
    shipped = pd.read_parquet(SHIPPED)
    assert reproduce_cell.differences(shipped, shipped.assign(code_version="0123456789ab", config_hash="x")) == []


def test_a_changed_count_is_named_with_its_row_and_direction_totals():
    shipped = pd.read_parquet(SHIPPED)
    rerun = shipped.copy()
    row = rerun.index[(rerun["direction"] == "reverse") & (rerun["letter"] == "b")][0]
    rerun.loc[row, "successes"] += 1
    lines = reproduce_cell.differences(shipped, rerun)
    reverse = shipped[shipped["direction"] == "reverse"]
    assert f"reverse: {reverse.successes.sum()}/{reverse.samples.sum()} successes shipped, " \
           f"{reverse.successes.sum() + 1}/{reverse.samples.sum()} rerun" in lines
    assert f"direction=reverse letter=b: successes {shipped.successes[row]!r} shipped, " \
           f"{shipped.successes[row] + 1!r} rerun" in lines
    assert not any(line.startswith("direction=forward") for line in lines)


def test_a_cell_that_is_not_shipped_lists_those_that_are(capsys):
    assert reproduce_cell.main(["paper_bf16/toy/mdm/L11/seed0"]) == 2
    assert "paper_bf16/toy/mdm/L10/seed0" in capsys.readouterr().out
