"""Re-run one shipped cell of the reference run in a scratch directory and compare its evaluation with the
shipped one, bit for bit (provenance columns aside). From the repository root, with the README's environment:

    python reference/paper/reproduce_cell.py paper_bf16/toy/mdm/L10/seed0                # at this working tree
    python reference/paper/reproduce_cell.py paper_bf16/toy/mdm/L10/seed0 --rev 1d2092b  # at a commit

The cell is a folder of reference/paper/runs/. The code (HEAD plus this working tree's uncommitted changes, or
``--rev``) is checked out as a git worktree under the scratch directory, and Snakemake makes the cell's
``eval.parquet`` there with config.yaml + reference/paper/config.yaml under the cell's preset, one core (as the
reference runs were made, with that code's own config files). Prints "identical", or the columns and rows that
differ; exit status 0 or 1. L = 10 costs several CPU-minutes (docs/toy.md, "Stacking and reproducibility").
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "reference/paper/runs"
sys.path.insert(0, str(ROOT / "scripts"))
from compare_outputs import PROVENANCE  # noqa: E402  the columns a new commit changes


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def checkout(code: Path, rev: str | None) -> None:
    """``rev`` as a detached worktree at ``code``; without it HEAD with this working tree's changes laid over."""
    git("worktree", "add", "--detach", str(code), rev or "HEAD")
    if rev:
        return
    changed = git("diff", "--name-only", "HEAD").splitlines() + git("ls-files", "-o", "--exclude-standard").splitlines()
    for name in changed:
        source, target = ROOT / name, code / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif not source.exists():
            target.unlink(missing_ok=True)


def differences(shipped: pd.DataFrame, rerun: pd.DataFrame) -> list[str]:
    """What differs between two evaluations with their provenance columns left out; [] when bit for bit equal."""
    a, b = (f.drop(columns=PROVENANCE, errors="ignore") for f in (shipped, rerun))
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return [f"columns {list(a.columns)} ({len(a)} rows) shipped, {list(b.columns)} ({len(b)} rows) rerun"]
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        return []
    except AssertionError:
        pass
    lines = []
    if "successes" in a:
        key = [c for c in ("direction", "letter") if c in a]
        for direction, rows in (a.groupby("direction", sort=False) if "direction" in a else [("all", a)]):
            other = b.loc[rows.index]
            lines.append(f"{direction}: {rows.successes.sum()}/{rows.samples.sum()} successes shipped, "
                         f"{other.successes.sum()}/{other.samples.sum()} rerun")
    else:
        key = []
    for column in a.columns:
        unequal = ~((a[column] == b[column]) | (a[column].isna() & b[column].isna()))
        for i in a.index[unequal]:
            where = " ".join(f"{k}={a.at[i, k]}" for k in key) or f"row {i}"
            lines.append(f"{where}: {column} {a.at[i, column]!r} shipped, {b.at[i, column]!r} rerun")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cell", help="a folder of reference/paper/runs/, e.g. paper_bf16/toy/mdm/L10/seed0")
    parser.add_argument("--rev", help="the commit to run (default: this working tree)")
    parser.add_argument("--file", default="eval.parquet", help="the file of the cell compared (default eval.parquet)")
    parser.add_argument("--scratch", type=Path, help="scratch directory (default: a new one under $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the worktree (the rerun's results and logs)")
    args = parser.parse_args(argv)

    cell = args.cell.strip("/").removeprefix("reference/paper/runs/")
    shipped = RUNS / cell / args.file
    if not shipped.exists():
        cells = sorted(str(p.parent.relative_to(RUNS)) for p in RUNS.glob(f"*/*/*/*/*/{args.file}"))
        print(f"{shipped.relative_to(ROOT)} is not shipped; cells with {args.file}: {', '.join(cells)}")
        return 2
    preset = cell.split("/")[0]
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="reproduce_cell_"))
    code = scratch / "code"
    checkout(code, args.rev)
    try:
        made_by = git("describe", "--always", "--dirty", "--abbrev=12", cwd=code).strip()
        if not args.rev:
            made_by += " + this working tree's changes"
        print(f"re-running {cell} at {made_by} in {code}", flush=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code / "src"), os.environ.get("PYTHONPATH")]))}
        command = ["snakemake", "--cores", "1", "--configfile", "config.yaml", "reference/paper/config.yaml",
                   "--config", f"preset={preset}", "--", f"results/{cell}/{args.file}"]
        done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
        if done.returncode:
            print(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
            return 2
        shipped_frame, rerun_frame = pd.read_parquet(shipped), pd.read_parquet(code / "results" / cell / args.file)
        for column in PROVENANCE:
            if column in shipped_frame and column in rerun_frame:
                print(f"{column}: {', '.join(shipped_frame[column].astype(str).unique())} shipped, "
                      f"{', '.join(rerun_frame[column].astype(str).unique())} rerun (not compared)")
        lines = differences(shipped_frame, rerun_frame)
        print("\n".join(lines) if lines else "identical")
        return 1 if lines else 0
    finally:
        if not args.keep:
            git("worktree", "remove", "--force", str(code))
            if not args.scratch:
                shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
