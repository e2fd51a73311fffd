"""A shipped table of the reference run pools runs of one code version, or reference/paper/README.md says why it
pools several: a bullet that names the table's CSV and every code version of its runs. The versions are
read from the runs themselves (reference/paper/runs/), not from the table's own code_version column."""
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from revcurse.core.io import listed_values
from revcurse.core.paths import run_dir

REFERENCE = Path(__file__).resolve().parents[2] / "reference/paper"


@lru_cache(maxsize=None)
def file_versions(path: Path) -> tuple[str, ...]:
    return tuple(pd.read_parquet(path, columns=["code_version"])["code_version"].unique())


def run_versions(reference: Path, name: str) -> list[str]:
    """Code versions of the runs a table is built from: the cells (preset, model, L) of its rows (``preset``, or a
    comparison's ``baseline`` and ``variant``, on the seeds both ran), their loss curves included."""
    table = pd.read_csv(reference / name)
    presets = [c for c in ("preset", "baseline", "variant") if c in table]
    if not presets or not {"model", "L"} <= set(table):
        return []    # not built from runs (fidelity.csv is built from the other tables)
    files = []
    for _, row in table.drop_duplicates(presets + ["model", "L"]).iterrows():
        cells = [reference / "runs" / row[c] / "toy" / row["model"] / f"L{row['L']}" for c in presets]
        seeds = set.intersection(*({p.name for p in cell.glob("seed*")} for cell in cells))
        files += [f for cell in cells for seed in sorted(seeds) for f in sorted((cell / seed).glob("*.parquet"))]
    return listed_values(pd.Series([v for f in files for v in file_versions(f)], dtype=str))


def unexplained(reference: Path) -> dict[str, list[str]]:
    """Tables whose runs span several code versions and that no bullet of the README names with all of them."""
    notes = [line for line in (reference / "README.md").read_text().splitlines() if line.lstrip().startswith("- ")]
    found = {}
    for path in sorted(reference.glob("*.csv")):
        versions = run_versions(reference, path.name)
        if len(versions) > 1 and not any(f"`{path.name}`" in note and all(v[:7] in note for v in versions)
                                         for note in notes):
            found[path.name] = versions
    return found


def fake_reference(root: Path, versions: list[str], note: str = "") -> Path:
    for seed, version in enumerate(versions):
        run = Path(run_dir("p", "toy", "mdm", 10, seed, root=str(root / "runs")))
        run.mkdir(parents=True)
        pd.DataFrame({"successes": [1], "code_version": [version]}).to_parquet(run / "eval.parquet")
    pd.DataFrame({"L": [10], "model": ["mdm"], "preset": ["p"]}).to_csv(root / "table2.csv", index=False)
    (root / "README.md").write_text(f"# reference\n\n{note}\n")
    return root


def test_a_table_pooling_two_code_versions_fails_without_a_note(tmp_path):
    assert unexplained(fake_reference(tmp_path, ["1d2092b83f33", "98dd79f62696"])) == {
        "table2.csv": ["1d2092b83f33", "98dd79f62696"]}


def test_a_note_naming_the_table_and_every_version_explains_it(tmp_path):
    note = "- `table2.csv` pools runs of 1d2092b and 98dd79f: kept from before the gradient-norm order changed"
    assert unexplained(fake_reference(tmp_path / "a", ["1d2092b83f33", "98dd79f62696"], note)) == {}
    partial = "- `table2.csv` pools runs of 1d2092b: kept"
    assert unexplained(fake_reference(tmp_path / "b", ["1d2092b83f33", "98dd79f62696"], partial))
    assert unexplained(fake_reference(tmp_path / "c", ["1d2092b83f33", "1d2092b83f33"])) == {}


def test_the_versions_of_the_shipped_tables_are_read_from_their_runs():
    every_run = pd.concat(pd.read_parquet(p, columns=["code_version"]) for p in (REFERENCE / "runs/paper_bf16").rglob("*.parquet"))
    assert run_versions(REFERENCE, "table2.csv") == listed_values(every_run["code_version"])
    assert run_versions(REFERENCE, "precision_check.csv") and run_versions(REFERENCE, "fidelity.csv") == []


def test_every_shipped_table_pools_one_code_version_or_says_why():
    found = unexplained(REFERENCE)
    assert not found, "shipped tables whose runs span code versions, with no note in reference/paper/README.md: " + \
        "; ".join(f"{name}: {', '.join(versions)}" for name, versions in found.items())
