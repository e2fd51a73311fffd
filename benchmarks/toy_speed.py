"""Toy-study speed: today's fp32 path and the fast path side by side, and the wall time
of the whole paper-scale Table 2, on the machine it runs on.

Prints, for each toy model (MDM, ARM) at each ``--lengths`` (default L = 10 and 40):
1. training: ms per optimiser step with ``precision: fp32`` and with the fast path (``bf16``:
   autocast), their ratio, and what ``precision: auto`` resolves to here (it is one of the two,
   so it is not timed again). ``--warmup`` steps, then ``--timed`` steps, ``--repeats`` times,
   fp32 and bf16 alternating so that a change of load hits both alike; min / median over the
   repeats (quote the median: 2 busy cores are noisy);
2. evaluation: ms per direction for 26 x ``samples_per_letter`` generations (toy.eval: 26 x 200 =
   5,200 at paper scale), the decoding ``python -m revcurse.toy evaluate`` runs, fp32 vs bf16, min / median; and the
   evaluation of one run (both directions, fast path) as a fraction of its training
   (toy.train.steps at the fast path's ms/step);
3. the whole paper-scale Table 2 (every model x L x seed, training and evaluation), either
   - ``--measure-table2``: ``snakemake table2`` (the rule writing results/table2.csv, or
     results/<preset>/table2.csv under a smoke-test preset) run from scratch in a fresh copy of the
     repository (no results/, logs/ or .snakemake/), with ``--preset``, ``--configfile`` and
     ``--set`` overlays, timed from start to exit (the GPU mode: on 2 CPU cores this takes about
     an hour); then the jobs' ``benchmark:`` records of that run, as below; or
   - ``--from-benchmarks DIR``: the Snakemake ``benchmark:`` records (``s`` column) of the
     train_toy / evaluate_toy jobs a run already wrote, e.g. results/paper_bf16/benchmarks:
     which cells were found (of the grid of the config given), per-job median and the sum;
4. with ``--trained MODEL.pt ...``: the evaluation of trained runs (their length, toy.eval's settings
   and precision), per direction, with the decoding's stop at the target off (the baseline) and on,
   alternating, ``--repeats`` times: ms min / median, the ratio, and whether the counts are the same
   (they must be). Random weights rarely produce the target, so only trained runs show what the stop
   saves.

Model shapes, batch sizes, steps and evaluation settings are the resolved config's: config.yaml,
then each ``--configfile`` (e.g. reference/paper/config.yaml), then ``--preset``, then ``--set``.

Paper scale on one GPU (also step 2 of benchmarks/gpu_acceptance.sh):
    python benchmarks/toy_speed.py --device cuda
the Table 2 wall time on one GPU (step 1 of benchmarks/gpu_acceptance.sh):
    python benchmarks/toy_speed.py --device cuda --table2-only --measure-table2 --preset paper_bf16 \\
        --configfile reference/paper/config.yaml --gpu-jobs 8
on the 2-core CPU, the records of the reference run (reference/paper/README.md):
    python benchmarks/toy_speed.py --device cpu --threads 1 --preset paper_bf16 \\
        --configfile reference/paper/config.yaml --from-benchmarks results/paper_bf16/benchmarks
A CPU smoke run (well under a minute; quick-preset shapes, tiny Table 2 with --measure-table2):
    python benchmarks/toy_speed.py --device cpu --tiny
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from revcurse.core.cli import BadInput
from revcurse.core.config import dotted_values
from revcurse.core.devices import autocast, cpu_has_bf16_matmul, resolve_device, resolve_precision
from revcurse.data.toy import MASK_ID, make_forward_dataset
from revcurse.pipeline.config import load_config
from revcurse.toy.evaluate import DIRECTIONS, success_counts
from revcurse.toy.model import ToyTransformer
from revcurse.toy.specs import toy_train_spec
from revcurse.toy.train import load_run, toy_configs, train

REPO = Path(__file__).resolve().parents[1]
FAST = "bf16"
DEFAULTS = dict(preset="paper", lengths=[10, 40], warmup=5, timed=20, repeats=3, samples_per_letter=None,
                threads=None)
# --tiny: the quick preset's shapes (d_model 64, batch 64) and a handful of steps, well under a minute
# on 2 CPU cores; with --measure-table2, a Table 2 of one length and one seed at those shapes, 20 steps
# (a snakemake run of 7 jobs: 15 s more on 2 idle cores).
TINY = dict(preset="quick", lengths=[10, 40], warmup=1, timed=3, repeats=2, samples_per_letter=2, threads=1)
TINY_TABLE2 = ["toy.lengths=[6]", "ablation.length=6", "toy.model_defaults.d_model=64", "toy.train.batch_size=64",
               "toy.seeds=[0]", "toy.train.steps=20", "toy.train.warmup_steps=5",
               "toy.train.checkpoint_every=10", "toy.train.snapshot_every=10", "toy.eval.samples_per_letter=2"]
# Never copied into the fresh checkout of --measure-table2 (outputs, caches, environments).
NOT_COPIED = {".git", "results", "logs", ".snakemake", ".venv", "__pycache__", ".pytest_cache", "benchmarks/out"}


# ---------------------------------------------------------------- config
def benchmark_config(args, sets: dict) -> dict:
    """The workflow's config (revcurse.pipeline.config.load_config): config.yaml, the preset (``--preset``), then the
    ``--configfile`` files in order, then the ``sets`` values."""
    return load_config([*args.configfile, sets], {"preset": args.preset})


def timing_config(args) -> dict:
    config = benchmark_config(args, dotted_values(args.set))
    toy = config["toy"]
    toy["train"] |= {"device": args.device, "log_every": 10**9, "snapshot_every": None}   # no logging, no snapshots
    if args.samples_per_letter:
        toy["eval"]["samples_per_letter"] = args.samples_per_letter
    return config


# ---------------------------------------------------------------- timing
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def summary(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "all": values}


def ms_per_step(config: dict, model: str, length: int, precision: str, warmup: int, timed: int) -> float:
    """Wall ms of one optimiser step (one run, the workflow's train()), mean of ``timed`` steps
    after ``warmup`` steps."""
    model_cfg, train_cfg = toy_configs(toy_train_spec(config, model, length, 0))
    train_cfg = type(train_cfg)(**{**train_cfg.to_dict(), "steps": warmup + timed, "precision": precision})
    marks = {}

    def clock(state):
        if state.step in (warmup, warmup + timed):
            sync()
            marks[state.step] = time.perf_counter()

    train(model_cfg, train_cfg, make_forward_dataset(length).tokens, [0], MASK_ID, callbacks=[clock])
    return 1000 * (marks[warmup + timed] - marks[warmup]) / timed


def ms_per_direction(config: dict, model: str, length: int, precision: str) -> float:
    """Wall ms of ``python -m revcurse.toy evaluate``'s decoding for one direction (26 x samples_per_letter generations,
    toy.eval's top-k, unmask order and batch), mean of the two directions. Random weights, which
    rarely produce the target: the decoding's stop at the target saves little here (step 4 times it
    on trained runs)."""
    settings = config["toy"]["eval"]
    device = resolve_device(config["toy"]["train"]["device"])
    model_cfg, _ = toy_configs(toy_train_spec(config, model, length, 0))
    net = ToyTransformer(model_cfg).to(device).eval()
    rng = torch.Generator(device=device).manual_seed(0)

    def decode(direction: str, samples: int) -> None:
        with autocast(precision, device):
            success_counts(net, length, direction, samples, settings["top_k"], settings["unmask_order"], rng,
                           settings["batch_size"])

    decode("forward", 1)                                                  # warm-up
    sync()
    started = time.perf_counter()
    for direction in DIRECTIONS:
        decode(direction, settings["samples_per_letter"])
    sync()
    return 1000 * (time.perf_counter() - started) / len(DIRECTIONS)


def time_stop_at_target(config: dict, paths: list[Path], device: torch.device, repeats: int) -> list[dict]:
    """Step 4: each trained run's evaluation without and with the stop at the target (module docstring)."""
    settings = config["toy"]["eval"]
    precision = resolve_precision(settings["precision"], device)
    print(f"\n4. evaluation of trained runs ({settings['samples_per_letter']} samples per letter, {precision}): "
          f"decoding without / with the stop at the target, ms per direction (min / median of {repeats})")
    rows = []
    for path in paths:
        model, run = load_run(path, settings["weights"], device)
        length = run["spec"]["length"]
        for direction in DIRECTIONS:
            times: dict[bool, list[float]] = {False: [], True: []}
            counts: dict[bool, list[int]] = {}
            for _ in range(repeats):
                for stop in times:
                    rng = torch.Generator(device=device).manual_seed(0)
                    sync()
                    started = time.perf_counter()
                    with autocast(precision, device):
                        frame = success_counts(model, length, direction, settings["samples_per_letter"],
                                               settings["top_k"], settings["unmask_order"], rng,
                                               settings["batch_size"], stop_at_target=stop)
                    sync()
                    times[stop].append(1000 * (time.perf_counter() - started))
                    counts[stop] = frame["successes"].tolist()
            off, on = summary(times[False]), summary(times[True])
            row = {"run": str(path), "L": length, "direction": direction, "without_stop_ms": off, "with_stop_ms": on,
                   "ratio": off["median"] / on["median"], "success_pct": 100 * sum(counts[True]) / (26 * settings["samples_per_letter"]),
                   "same_counts": counts[False] == counts[True]}
            rows.append(row)
            print(f"  {run['spec']['model']} L={length} seed {run['spec']['seed']} {direction:7s} success "
                  f"{row['success_pct']:5.1f}%: {off['min']:8.0f} / {off['median']:8.0f}  ->  {on['min']:8.0f} / "
                  f"{on['median']:8.0f}   x{row['ratio']:.2f}   counts {'same' if row['same_counts'] else 'DIFFER'}",
                  flush=True)
    return rows


def alternating(measure, repeats: int) -> dict[str, dict]:
    """``measure(precision)`` ``repeats`` times per precision, fp32 and bf16 alternating."""
    runs: dict[str, list[float]] = {"fp32": [], FAST: []}
    for _ in range(repeats):
        for precision in runs:
            runs[precision].append(measure(precision))
    return {precision: summary(values) for precision, values in runs.items()}


def fmt(result: dict, width: int = 17) -> str:
    return f"{result['min']:.2f} / {result['median']:.2f}".rjust(width)


def time_training(config: dict, args, auto: str) -> list[dict]:
    toy = config["toy"]
    print(f"\n1. training, ms per step (one run, batch {toy['train']['batch_size']}; {args.warmup} warm-up steps, "
          f"then {args.timed} timed, {args.repeats} times, fp32 and bf16 alternating; min / median)")
    print(f"  {'model':<6} {'L':>3} {'fp32':>17} {'bf16 (fast)':>17} {'fp32/bf16':>10} {'auto = ' + auto:>13}")
    rows = []
    for model in args.models:
        for length in args.lengths:
            result = alternating(lambda p: ms_per_step(config, model, length, p, args.warmup, args.timed), args.repeats)
            ratio = result["fp32"]["median"] / result[FAST]["median"]
            print(f"  {model:<6} {length:>3} {fmt(result['fp32'])} {fmt(result[FAST])} {ratio:>9.2f}x "
                  f"{result[auto]['median']:>13.2f}", flush=True)
            rows.append({"model": model, "length": length, **result, "ratio": ratio})
    return rows


def time_evaluation(config: dict, args, auto: str, training: list[dict]) -> list[dict]:
    toy = config["toy"]
    settings, steps = toy["eval"], toy["train"]["steps"]
    generations = 26 * settings["samples_per_letter"]
    print(f"\n2. evaluation, ms per direction ({generations} generations = 26 x {settings['samples_per_letter']}, "
          f"unmask order {settings['unmask_order']}, top-k {settings['top_k']}, "
          f"batch {settings['batch_size']}; "
          f"{args.repeats} times alternating; min / median); eval/train: one run's evaluation (2 directions) "
          f"over its {steps} training steps, both at the fast path")
    print(f"  {'model':<6} {'L':>3} {'fp32':>17} {'bf16 (fast)':>17} {'fp32/bf16':>10} {'auto = ' + auto:>13} "
          f"{'eval/train':>10}")
    step_ms = {(row["model"], row["length"]): row[FAST]["median"] for row in training}
    rows = []
    for model in args.models:
        for length in args.lengths:
            result = alternating(lambda p: ms_per_direction(config, model, length, p), args.repeats)
            ratio = result["fp32"]["median"] / result[FAST]["median"]
            train_ms = step_ms.get((model, length), float("nan")) * steps
            share = len(DIRECTIONS) * result[FAST]["median"] / train_ms
            print(f"  {model:<6} {length:>3} {fmt(result['fp32'])} {fmt(result[FAST])} {ratio:>9.2f}x "
                  f"{result[auto]['median']:>13.2f} {share:>10.3f}", flush=True)
            rows.append({"model": model, "length": length, **result, "ratio": ratio, "eval_over_train": share})
    return rows


# ---------------------------------------------------------------- Table 2 from benchmark records
RECORD = re.compile(r"(?P<model>.+)_L(?P<length>\d+)_seed(?P<seed>\d+)\.tsv")
# Folders of results/<preset>/benchmarks/toy/ and their rules; any other folder of per-run records
# (a rule Table 2 comes to depend on) is read too, under its folder's name.
RULES = {"train": "train_toy", "eval": "evaluate_toy", "eval_over_training": "evaluate_toy_over_training"}


def record_seconds(path: Path) -> float:
    """The ``s`` column of a Snakemake benchmark TSV (the mean, if the rule repeated)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{path}: not a Snakemake benchmark record (no 's' column)")
    return statistics.fmean(float(row["s"]) for row in rows)


def read_records(folder: Path) -> list[dict]:
    """The per-run records (train_toy, evaluate_toy, ...) under ``folder``: a results/<preset>/benchmarks
    folder, or its toy/. The probes' records (one folder deeper) are not Table 2's."""
    toy = folder / "toy" if (folder / "toy").is_dir() else folder
    if not toy.is_dir():
        return []
    kinds = [k for k in RULES if (toy / k).is_dir()] + sorted(p.name for p in toy.iterdir()
                                                              if p.is_dir() and p.name not in RULES)
    records = []
    for kind in kinds:
        for path in sorted((toy / kind).glob("*.tsv")):
            match = RECORD.fullmatch(path.name)
            if match:
                records.append({"rule": RULES.get(kind, kind), "model": match["model"], "length": int(match["length"]),
                                "seed": int(match["seed"]), "seconds": record_seconds(path),
                                "written": path.stat().st_mtime})
    return records


def seed_list(seeds: list[int]) -> str:
    """[0, 1, 2, 4] -> '0-2,4'."""
    parts, seeds = [], sorted(seeds)
    start = prev = seeds[0]
    for seed in seeds[1:] + [None]:
        if seed is not None and seed == prev + 1:
            prev = seed
            continue
        parts.append(f"{start}-{prev}" if prev > start + 1 else ",".join(map(str, range(start, prev + 1))))
        if seed is not None:
            start = prev = seed
    return ",".join(parts)


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min ({seconds:.0f} s)"
    return f"{seconds / 3600:.2f} h ({seconds:.0f} s)"


def report_records(folder: Path, grid: dict, shown: Path | str | None = None) -> dict:
    """Print which cells the records cover (of ``grid``: models, lengths, seeds), per-cell and
    per-job medians and the sums; returns them."""
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no such folder (expected results/<preset>/benchmarks)")
    records = read_records(folder)
    expected = {(m, L, s) for m in grid["models"] for L in grid["lengths"] for s in grid["seeds"]}
    print(f"  Snakemake benchmark records (s column) in {shown or folder}:")
    if not records:
        print("  none found (expected <folder>/toy/{train,eval,...}/<model>_L<L>_seed<seed>.tsv)")
        return {"records": 0}
    print(f"  {'rule':<26} {'model':<6} {'L':>3} {'jobs':>6} {'seeds':<10} {'median s':>9} {'sum s':>9}")
    result = {"records": len(records), "rules": {}}
    for rule in dict.fromkeys(r["rule"] for r in records):
        mine = [r for r in records if r["rule"] == rule]
        cells = sorted({(r["model"], r["length"]) for r in mine})
        for model, length in cells:
            cell = [r for r in mine if (r["model"], r["length"]) == (model, length)]
            of = len([1 for m, L, _ in expected if (m, L) == (model, length)]) or "?"
            seconds = [r["seconds"] for r in cell]
            print(f"  {rule:<26} {model:<6} {length:>3} {f'{len(cell)}/{of}':>6} "
                  f"{seed_list([r['seed'] for r in cell]):<10} {statistics.median(seconds):>9.1f} {sum(seconds):>9.1f}")
        found = {(r["model"], r["length"], r["seed"]) for r in mine}
        seconds = [r["seconds"] for r in mine]
        missing = sorted(expected - found)
        result["rules"][rule] = {"jobs": len(mine), "of_grid": len(found & expected), "expected": len(expected),
                                 "median_s": statistics.median(seconds), "sum_s": sum(seconds),
                                 "missing": [list(c) for c in missing]}
        print(f"  {rule}: {len(found & expected)} of the grid's {len(expected)} jobs found; per-job median "
              f"{statistics.median(seconds):.1f} s, sum {duration(sum(seconds))}")
        if missing:
            by_cell: dict = {}
            for model, length, seed in missing:
                by_cell.setdefault((model, length), []).append(seed)
            print("    missing: " + "; ".join(f"{m} L{L} seeds {seed_list(seeds)}"
                                           for (m, L), seeds in sorted(by_cell.items())))
        extra = sorted(found - expected)
        if extra:
            print(f"    outside the grid of this config (counted above): {len(extra)} jobs")
    total = sum(r["seconds"] for r in records)
    span = max(r["written"] for r in records) - min(r["written"] - r["seconds"] for r in records)
    result |= {"sum_s": total, "span_s": span}
    print(f"  all {len(records)} jobs: sum of their seconds {duration(total)} (one job at a time); span from the "
          f"first job's start to the last one's end (record file times) {duration(span)}, pauses between "
          f"snakemake calls included")
    return result


# ---------------------------------------------------------------- Table 2 from scratch
def copy_repository(target: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored), or, without git, everything
    but outputs and caches."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True)
    if listing.returncode == 0 and listing.stdout:
        for name in sorted(set(listing.stdout.decode().split("\0")) - {""}):
            source = REPO / name
            if source.is_file() and not any(name == p or name.startswith(p + "/") for p in NOT_COPIED):
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
        return
    shutil.copytree(REPO, target, dirs_exist_ok=True, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n in NOT_COPIED or n.endswith(".egg-info")])


def in_copy(path: Path) -> str:
    """A config file's path for snakemake running in the copy: the copy's own if it is the repository's."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def table2_sets(args, *extra: str) -> dict:
    """The ``--set`` values of the Table 2 grid: with --tiny, TINY_TABLE2 first."""
    return dotted_values((TINY_TABLE2 if args.tiny else []) + list(extra) + args.set)


def measure_table2(args) -> dict:
    overlay = table2_sets(args, f"toy.train.device={args.device}")      # a --configfile: it beats the preset
    config = benchmark_config(args, overlay)
    toy = config["toy"]
    runs = len(toy["models"]) * len(toy["lengths"]) * len(toy["seeds"])
    print("\n3. the whole Table 2 from scratch: snakemake table2 (the rule writing results/table2.csv) in a fresh "
          "copy of the repository")
    print(f"  config.yaml{''.join(' + ' + str(p) for p in args.configfile)}, preset {args.preset}, overlay "
          f"{json.dumps(overlay, separators=(',', ':'))}")
    print(f"  {runs} runs ({len(toy['models'])} models x L {toy['lengths']} x seeds {toy['seeds']}), "
          f"{toy['train']['steps']} steps, batch {toy['train']['batch_size']}, precision train "
          f"{toy['train']['precision']} / eval {toy['eval']['precision']}, 26 x {toy['eval']['samples_per_letter']} "
          f"generations per direction", flush=True)
    out = Path(args.out) / "table2" if args.out else None
    work = Path(tempfile.mkdtemp(prefix="toy_table2_"))
    process = None
    try:
        copy_repository(work)
        (work / "toy_speed_overlay.yaml").write_text(yaml.safe_dump(overlay))
        command = [sys.executable, "-m", "snakemake", "--configfile", "config.yaml",
                   *[in_copy(p) for p in args.configfile], "toy_speed_overlay.yaml",
                   "--config", f"preset={args.preset}"]
        if args.cores:
            command += ["--cores", str(args.cores)]
        if args.gpu_jobs:
            command += ["--resources", f"gpu={args.gpu_jobs}"]
        command += ["--", "table2"]        # the rule: where it writes depends on the preset (results/[<preset>/])
        print(f"  in {work}: {' '.join(command[1:])}", flush=True)
        log = work / "snakemake.log"
        started = time.perf_counter()
        with log.open("w") as handle:       # this process group: a Ctrl-C or `timeout` reaches its jobs too
            process = subprocess.Popen(command, cwd=work, stdout=handle, stderr=subprocess.STDOUT)
            rc = process.wait()
        wall = time.perf_counter() - started
        if rc:
            print("  " + "\n  ".join(log.read_text().splitlines()[-25:]))
            raise SystemExit(f"snakemake failed (exit {rc}) after {wall:.1f} s; its log: "
                             f"{out / 'snakemake.log' if out else log}")
        print(f"  wall time {duration(wall)}, snakemake start to exit: data, {runs} trainings, "
              f"{runs} evaluations and Table 2", flush=True)
        bench = Path("results") / args.preset / "benchmarks"
        kept = out / bench if out else work / bench if args.keep else f"the copy's {bench} (deleted; --out keeps it)"
        records = report_records(work / bench, toy, kept)
        return {"wall_s": wall, "runs": runs, "preset": args.preset, "overlay": overlay, **records}
    finally:                                # also on failure, Ctrl-C or `timeout`: stop snakemake, keep what it wrote
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if out:
            keep_table2_outputs(work, out, args.preset)
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def keep_table2_outputs(work: Path, out: Path, preset: str) -> None:
    """Table 2, the per-run evaluations, the jobs' logs and benchmark records, snakemake's log
    (no weights)."""
    out.mkdir(parents=True, exist_ok=True)
    tables = [work / "snakemake.log", *(work / "results").rglob("table2.csv"), *(work / "results").rglob("table2.md")]
    for path in tables:
        if path.is_file():
            shutil.copy2(path, out / path.name)
    for folder, pattern in ((f"results/{preset}/benchmarks", "*.tsv"), (f"results/{preset}/toy", "eval.parquet"),
                            (f"logs/{preset}", "*.log")):
        for path in (work / folder).rglob(pattern):
            target = out / path.relative_to(work)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


# ---------------------------------------------------------------- main
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    units = "bf16 matmul units (AMX / AVX512-BF16)" if cpu_has_bf16_matmul() else "no bf16 matmul units"
    return f"{names[0] if names else 'cpu'}, {os.cpu_count()} cores, {units}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", help=f"config preset (default {DEFAULTS['preset']}; --tiny: {TINY['preset']})")
    parser.add_argument("--configfile", type=Path, nargs="+", default=[],
                        help="config overlays after config.yaml, as snakemake --configfile "
                             "(e.g. reference/paper/config.yaml)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config values (YAML), e.g. toy.train.steps=500; for the timings and the Table 2 run")
    parser.add_argument("--models", nargs="+", help="toy models (default: the config's toy.models)")
    parser.add_argument("--lengths", type=int, nargs="+", help="default 10 40")
    parser.add_argument("--warmup", type=int, help="untimed steps before each timing (default 5)")
    parser.add_argument("--timed", type=int, help="timed steps per repeat (default 20)")
    parser.add_argument("--repeats", type=int, help="timings per precision, fp32 and bf16 alternating (default 3)")
    parser.add_argument("--samples-per-letter", type=int, help="evaluation (default: the config's toy.eval)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's; the workflow's jobs use 1)")
    parser.add_argument("--tiny", action="store_true",
                        help="CPU smoke run: " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in TINY.items()) +
                             "; with --measure-table2 a Table 2 of " + " ".join(TINY_TABLE2))
    parser.add_argument("--table2-only", action="store_true", help="skip 1 and 2 (training and evaluation timings)")
    table2 = parser.add_mutually_exclusive_group()
    table2.add_argument("--measure-table2", action="store_true",
                        help="run snakemake table2 (results/table2.csv) from scratch in a fresh copy of the "
                             "repository, timed")
    table2.add_argument("--from-benchmarks", type=Path, metavar="DIR",
                        help="sum the train_toy/evaluate_toy benchmark records in DIR (results/<preset>/benchmarks)")
    parser.add_argument("--cores", type=int, help="--measure-table2: snakemake --cores (default: the profile's, all)")
    parser.add_argument("--gpu-jobs", type=int, help="--measure-table2: snakemake --resources gpu=N "
                                                     "(toy jobs on a GPU ask for gpu=1: N share the card)")
    parser.add_argument("--keep", action="store_true", help="--measure-table2: keep the temporary copy")
    parser.add_argument("--trained", type=Path, nargs="+", metavar="MODEL_PT",
                        help="step 4: trained runs (model.pt) whose evaluation is timed without and with the stop")
    parser.add_argument("--out", help="folder for toy_speed.json and, with --measure-table2, table2/ (Table 2, "
                                      "per-run evaluations, job logs, benchmark records, snakemake.log)")
    args = parser.parse_args(argv)
    for key, value in (TINY if args.tiny else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # `timeout`: clean up (snakemake, temp copy)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = timing_config(args)
    args.models = args.models or list(config["toy"]["models"])
    auto = resolve_precision("auto", device)
    print(f"toy speed: device {device} ({device_name(device)}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; preset {args.preset}: d_model "
          f"{config['toy']['model_defaults']['d_model']}, batch {config['toy']['train']['batch_size']}, "
          f"{config['toy']['train']['steps']} steps; precision auto = {auto} here", flush=True)
    results: dict = {"device": str(device), "device_name": device_name(device), "torch": torch.__version__,
                     "threads": torch.get_num_threads(), "preset": args.preset, "auto": auto}
    if not args.table2_only:
        results["train"] = time_training(config, args, auto)
        results["eval"] = time_evaluation(config, args, auto, results["train"])
    if args.measure_table2:
        results["table2"] = measure_table2(args)
    elif args.from_benchmarks:
        print(f"\n3. the whole Table 2 from a run's benchmark records (grid of preset {args.preset})")
        grid = benchmark_config(args, table2_sets(args))["toy"]
        results["table2"] = report_records(args.from_benchmarks, grid)
    if args.trained:
        results["stop_at_target"] = time_stop_at_target(config, args.trained, device, args.repeats)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "toy_speed.json").write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    try:
        main()
    except BadInput as error:           # a bad config value: its one line, as the workflow prints it
        sys.exit(f"error: {error}")
