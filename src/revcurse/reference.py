"""Helpers of the shipped reference run (reference/paper/ship.sh): its config hash and provenance.

``python -m revcurse.reference config-hash PRESET`` prints the hash Table 2's rule would stamp
for config.yaml overlaid with reference/paper/config.yaml under PRESET;
``python -m revcurse.reference provenance --out F --benchmarks DIR`` writes code version,
config hashes, package versions, the machine and the measured wall time of every job
(Snakemake ``benchmark:`` records) to F.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import pandas as pd
import yaml

from .config import REPO_ROOT, config_hash, deep_merge, provenance, resolve_config

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.reference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config-hash")
    p.add_argument("preset")
    p = sub.add_parser("provenance")
    p.add_argument("--out", required=True)
    p.add_argument("--benchmarks", required=True)
    args = parser.parse_args(argv)
    if args.command == "config-hash":
        print(config_hash(reference_config(args.preset)["toy"]))
    else:
        print(json.dumps(write_provenance(Path(args.out), Path(args.benchmarks)), indent=2))


if __name__ == "__main__":
    main()
