"""Command line the workflow rules call: ``python -m revcurse.cli <command> ...``.

Each command takes its run spec as one JSON argument (built by workflow/rules/common.smk),
so Snakemake reruns a job exactly when the settings it depends on change.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .config import config_hash, derive_seed, provenance

log = logging.getLogger("revcurse")


def write_parquet(frame: pd.DataFrame, path: Path, metadata: dict) -> None:
    """Parquet with the run's provenance in the file's key-value metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"revcurse": json.dumps(metadata).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def toy_data(args) -> None:
    from .data.toy import make_forward_dataset, write_dataset

    manifest = write_dataset(make_forward_dataset(args.length), Path(args.out), Path(args.manifest))
    log.info("toy L=%d: %d sequences (expected %d), no reverse pair; sha256 %s", args.length,
             manifest["sequences"], manifest["expected_sequences"], manifest["sha256"][:16])


def toy_train(args) -> None:
    """Train one or several seeds of one (model, L) stacked; one checkpoint per seed."""
    from .data.toy import MASK_ID, read_dataset
    from .training import save_run, toy_configs, train

    specs = [json.loads(s) for s in args.spec]
    outs = [Path(p) for p in args.out]
    if len(specs) != len(outs):
        raise SystemExit(f"toy-train: {len(specs)} --spec but {len(outs)} --out")
    shapes = {json.dumps({k: v for k, v in s.items() if k != "seed"}, sort_keys=True) for s in specs}
    if len(shapes) != 1:
        raise SystemExit("toy-train: stacked runs must share everything but the seed")
    model_cfg, train_cfg = toy_configs(specs[0])
    data = read_dataset(Path(args.data)).tokens
    seeds = [s["seed"] for s in specs]
    fingerprint = config_hash(specs)
    resume = outs[0].with_name("resume.pt")
    resume.parent.mkdir(parents=True, exist_ok=True)
    log.info("training %s L=%d seeds %s: %s", specs[0]["model"], model_cfg.seq_len, seeds, model_cfg)
    state = train(model_cfg, train_cfg, data, seeds, MASK_ID, resume_path=resume, fingerprint=fingerprint)
    versions = provenance()
    for member, (spec, out) in enumerate(zip(specs, outs)):
        save_run(out, state, member, spec, config_hash(spec), versions)
    resume.unlink(missing_ok=True)
    log.info("wrote %s", ", ".join(map(str, outs)))


def toy_eval(args) -> None:
    from .sampling import DIRECTIONS, success_counts
    from .training import load_run, resolve_device

    spec = json.loads(args.spec)
    settings = spec["eval"]
    device = resolve_device(args.device)
    model, run = load_run(Path(args.model), settings["weights"], device)
    frames = []
    for direction in DIRECTIONS:
        rng = torch.Generator(device=device).manual_seed(derive_seed(spec["seed"], "toy-eval", direction))
        counts = success_counts(model, spec["length"], direction, settings["samples_per_letter"], settings["top_k"],
                                settings["unmask_order"], rng, settings.get("batch_size", 2048))
        log.info("%s L=%d seed %d %s: %.2f%%", spec["model"], spec["length"], spec["seed"], direction,
                 100 * counts["successes"].sum() / counts["samples"].sum())
        frames.append(counts)
    frame = pd.concat(frames, ignore_index=True)
    is_masked_diffusion = run["model_config"]["objective"] == "masked_diffusion"
    frame = frame.assign(
        preset=spec["preset"], model=spec["model"], length=spec["length"], seed=spec["seed"],
        top_k=settings["top_k"], unmask_order=settings["unmask_order"] if is_masked_diffusion else "n/a",
        weights=run["weights_used"], train_config_hash=run["config_hash"], config_hash=config_hash(spec),
        code_version=run["provenance"]["code_version"],
    )
    write_parquet(frame, Path(args.out), {"spec": spec, "train_spec": run["spec"], "provenance": provenance()})


def table2(args) -> None:
    from .aggregation import read_parquets, table2 as build_table2, table2_markdown

    evals = read_parquets(args.inputs)
    table = build_table2(evals)
    table["config_hash"] = args.config_hash
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False, float_format="%.4f")
    Path(args.md).write_text(table2_markdown(table))
    log.info("table 2 from %d runs:\n%s", evals.groupby(["model", "length", "seed"]).ngroups, Path(args.md).read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("toy-data", help="all forward placements for one length")
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--manifest", required=True)
    p.set_defaults(func=toy_data)

    p = sub.add_parser("toy-train", help="train toy run(s); several --spec/--out pairs are trained stacked")
    p.add_argument("--spec", action="append", required=True, help="run spec as JSON")
    p.add_argument("--data", required=True)
    p.add_argument("--out", action="append", required=True)
    p.set_defaults(func=toy_train)

    p = sub.add_parser("toy-eval", help="forward/reverse success rate of one run")
    p.add_argument("--spec", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=toy_eval)

    p = sub.add_parser("table2", help="aggregate toy evaluations into Table 2")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=table2)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
