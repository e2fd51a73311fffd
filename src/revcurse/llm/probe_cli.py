"""Command line of the large-scale probes: ``python -m revcurse.llm.probe_cli <command> ...``.

``measure`` probes every selected checkpoint of one run and writes its tables; ``figure`` draws
Figure 6, 7 or 9 from probe tables. The rules of workflow/rules/llm_probes.smk call these.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from revcurse.cli import write_parquet
from revcurse.config import config_hash

log = logging.getLogger("revcurse.llm.probes")


def selected_checkpoints(training: dict, which: str) -> list[tuple[int, str]]:
    """(epoch, relative path) of ``checkpoints.json``'s checkpoints: ``all`` or the ``final`` one."""
    checkpoints = sorted((int(epoch), path) for epoch, path in training["checkpoints"].items())
    if which not in ("all", "final"):
        raise ValueError(f"config.yaml: llm.probes.checkpoints = {which!r}; expected 'all' or 'final'")
    return checkpoints if which == "all" else checkpoints[-1:]


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_command(args) -> None:
    from safetensors.torch import load_file

    from revcurse.training import resolve_device

    from .__main__ import check_trained_revision, direction_records, llm_provenance, run_backbone
    from .lora import load_trainable_state
    from .probe_plan import MEASUREMENTS
    from .probes import attention_scores, query_pairs, training_dynamics, with_run_columns

    spec = json.loads(args.spec)
    settings = spec["probes"]
    outs = dict(item.split("=", 1) for item in args.out)
    if set(outs) != set(MEASUREMENTS[args.measurement]):
        raise SystemExit(f"measure {args.measurement}: --out names {sorted(outs)}, "
                         f"expected {MEASUREMENTS[args.measurement]}")
    training = json.loads(Path(args.checkpoints).read_text())
    device = resolve_device(spec["device"])
    backbone = run_backbone(spec, device)
    check_trained_revision(training, backbone, args.checkpoints)
    pairs, excluded = query_pairs(backbone, direction_records(args.manifest, spec["direction"]), settings["context"],
                                  spec["answer_length"], settings["samples"])
    for fact, why in excluded.items():
        log.info("sample %s excluded: %s", fact, why)
    log.info("%d samples, %d excluded (A or B would be different tokens in the two queries)", len(pairs),
             len(excluded))
    versions = llm_provenance(backbone.revision)
    model = backbone.spec
    run = {"preset": spec["preset"], "model": model.name, "label": model.label, "kind": model.kind,
           "task": spec["task"], "dataset": spec["dataset"], "trained_direction": spec["direction"], "seed": spec["seed"],
           "context": settings["context"], "excluded_samples": len(excluded), "config_hash": config_hash(spec),
           "train_config_hash": training["config_hash"], "code_version": versions["code_version"],
           "model_revision": backbone.revision}
    frames: dict[str, list[pd.DataFrame]] = {table: [] for table in outs}
    started = time.perf_counter()
    for epoch, relative in selected_checkpoints(training, settings["checkpoints"]):
        load_trainable_state(backbone.model, load_file(str(Path(args.checkpoints).parent / relative)))
        tick = time.perf_counter()
        if args.measurement == "attention":
            tables = (attention_scores(backbone, pairs, settings["placements"], settings["batch_size"]),)
        else:
            tables = training_dynamics(backbone, pairs)
        for table, frame in zip(MEASUREMENTS[args.measurement], tables):
            frames[table].append(with_run_columns(frame.assign(epoch=epoch), table, run))
        log.info("epoch %d: %s of %d samples in %.1f s, peak memory %.0f MB", epoch, args.measurement, len(pairs),
                 time.perf_counter() - tick, peak_memory_mb(device))
    log.info("probe pass: %.1f s for %d checkpoint(s) on %s", time.perf_counter() - started,
             len(frames[next(iter(frames))]), device)
    for table, path in outs.items():
        write_parquet(pd.concat(frames[table], ignore_index=True), Path(path),
                      {"spec": spec, "train_spec": training["spec"], "provenance": versions, "excluded_samples": excluded})


def figure_command(args) -> None:
    from revcurse.config import provenance

    from .probe_figures import read_probe_tables, render

    versions = provenance()
    frames = read_probe_tables(args.inputs)
    presets = sorted(set().union(*(frame["preset"].unique() for frame in frames.values())))
    stamp = {"figure": args.name, "preset": ", ".join(presets), "config_hash": args.config_hash,
             "code_version": versions["code_version"]}
    table = render(args.name, frames, json.loads(args.settings), Path(args.png), Path(args.pdf), Path(args.csv),
                   stamp, versions)
    log.info("%s: %d plotted values -> %s", args.name, len(table), args.png)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.llm.probe_cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("measure", help="probe every selected checkpoint of one run")
    p.add_argument("measurement", choices=["attention", "dynamics"])
    p.add_argument("--spec", required=True, help="probe spec as JSON (probe_plan.probe_spec)")
    p.add_argument("--manifest", required=True, help="the dataset's manifest.json")
    p.add_argument("--checkpoints", required=True, help="the run's checkpoints.json")
    p.add_argument("--out", action="append", required=True, help="TABLE=path.parquet, once per table")
    p.set_defaults(func=measure_command)

    p = sub.add_parser("figure", help="Figure 6, 7 or 9 from probe tables")
    p.add_argument("name", choices=["fig6", "fig7", "fig9"])
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--settings", required=True, help="llm.probes as JSON")
    p.add_argument("--png", required=True)
    p.add_argument("--pdf", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=figure_command)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
