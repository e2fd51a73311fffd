"""The shipped reference run (reference/paper/): its provenance record and the Table 2 block of the repository's
README, built by workflow/rules/reference.smk from the shipped files, then copied into the tree by ``ship``."""
from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import pandas as pd

from revcurse.core.provenance import provenance


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count()}


def job_wall_times(benchmarks: Path) -> pd.DataFrame:
    """One row per job: preset, stage (train, eval, eval_over_training, ...), run name and wall seconds."""
    rows = []
    for tsv in sorted(benchmarks.rglob("*.tsv")):
        parts = tsv.relative_to(benchmarks).parts
        rows.append({"preset": parts[0], "stage": parts[-2], "run": tsv.stem,
                     "seconds": float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])})
    return pd.DataFrame(rows, columns=["preset", "stage", "run", "seconds"])


def write_provenance(out: Path, benchmarks: Path, config_hashes: dict[str, str]) -> dict:
    """Code version, config hashes, package versions, the machine that built this record, and the summed
    wall time per preset and stage of the jobs whose Snakemake ``benchmark:`` records are under ``benchmarks``."""
    times = job_wall_times(benchmarks)
    record = {
        **provenance(),
        "machine": machine(),
        "config_hash": config_hashes,
        "job_seconds_total": times.groupby(["preset", "stage"])["seconds"].sum().round(1)
        .unstack("stage").to_dict(orient="index"),
        "jobs": len(times),
    }
    out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


# Blocks of a README written by the reference build, between these markers (name: reference-table2, table2-experiment).
def readme_markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start (written by workflow/rules/reference.smk) -->", f"<!-- {name}:end -->"


def readme_table2(fidelity: pd.DataFrame) -> str:
    """Table 2 of the reference run beside the paper's, from the fidelity report's rows."""
    rows = fidelity[fidelity["id"].str.startswith("table2/")].copy()
    parts = rows["id"].str.split("/", expand=True)
    rows["L"], rows["model"], rows["direction"] = parts[1].str[1:].astype(int), parts[2], parts[3]

    def ours(r) -> str:
        if pd.isna(r.ours):
            return "—"
        return f"{r.ours:.2f} [{r.low:.1f}, {r.high:.1f}]"

    rows["cell"] = rows.apply(lambda r: f"{r.printed} · {ours(r)} · {r.verdict}", axis=1)
    wide = rows.pivot_table(index="L", columns=["model", "direction", "selection"], values="cell", aggfunc="first")
    keep = [c for c in wide.columns if c[2] == "final"]
    wide = wide[keep]
    wide.columns = [f"{m.upper()} {d}" for m, d, _ in keep]
    return ("Each cell: paper · ours, final step, mean over seeds [95% interval] · verdict "
            "(`reference/paper/fidelity.md`, `docs/fidelity.md`).\n\n" + wide.reset_index().to_markdown(index=False))


def write_readme_block(readme: Path, name: str, block: str) -> None:
    start_marker, end_marker = readme_markers(name)
    text = readme.read_text()
    start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
    readme.write_text(text[:start] + "\n" + block + "\n" + text[end:])


def ship(build: Path, to: Path, readme: Path) -> list[Path]:
    """Copy every file built under ``build`` into ``to`` (same relative paths), write the README's Table 2
    block from the built fidelity report and ``to``/README.md's Table 2 experiment block from its summary. The last step of the reference build: a file written into the tree
    earlier would make the later jobs' code version '-dirty'. Returns the files copied."""
    copied = []
    for source in sorted(p for p in build.rglob("*") if p.is_file()):
        target = to / source.relative_to(build)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    write_readme_block(readme, "reference-table2", readme_table2(pd.read_csv(build / "fidelity.csv")))
    write_readme_block(to / "README.md", "table2-experiment", (build / "table2_experiment_summary.md").read_text())
    return copied
