"""Helpers of the shipped reference run (reference/paper/ship.sh): its config hash and provenance.

``python -m revcurse.toy reference-config-hash PRESET`` prints the hash Table 2's rule would stamp
for config.yaml overlaid with reference/paper/config.yaml under PRESET;
``python -m revcurse.toy reference-provenance --out F --benchmarks DIR`` writes code version,
config hashes, package versions, the machine and the measured wall time of every job
(Snakemake ``benchmark:`` records) to F; ``python -m revcurse.toy reference-readme --fidelity F``
writes the reference Table 2 beside the paper's between the README's markers.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pandas as pd
import yaml

from revcurse.core.config import REPO_ROOT, config_hash, deep_merge, resolve_config
from revcurse.core.provenance import provenance

OVERLAY = REPO_ROOT / "reference/paper/config.yaml"


def reference_config(preset: str) -> dict:
    base = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    return resolve_config(deep_merge(base, yaml.safe_load(OVERLAY.read_text())) | {"preset": preset})


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


def write_provenance(out: Path, benchmarks: Path) -> dict:
    times = job_wall_times(benchmarks)
    record = {
        **provenance(),
        "machine": machine(),
        "config_hash": {p: config_hash(reference_config(p)["toy"]) for p in ("paper_bf16", "paper_fp32")},
        "job_seconds_total": times.groupby(["preset", "stage"])["seconds"].sum().round(1)
        .unstack("stage").to_dict(orient="index"),
        "jobs": len(times),
    }
    out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


README_START = "<!-- reference-table2:start (written by reference/paper/ship.sh) -->"
README_END = "<!-- reference-table2:end -->"


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


def write_readme_block(readme: Path, block: str) -> None:
    text = readme.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    readme.write_text(text[:start] + "\n" + block + "\n" + text[end:])
