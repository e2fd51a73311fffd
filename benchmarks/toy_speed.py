"""Toy-study speed: ms per training step, and the wall time of the whole toy grid.

Prints, for the device it runs on:
1. ms/step per (model, L) for one model alone and for the seeds stacked as one
   ensemble (per model-step), measured after a warm-up inside one process;
2. the wall time of the whole grid (every model × L × seed, training + evaluation)
   two ways, side by side:
   - baseline: every run in its own process, one after another (`toy-train` then
     `toy-eval` per run, as a naive loop over the CLI would do);
   - stacked: one process per (model, L) training its seeds as one ensemble, the
     groups run ``--jobs`` at a time, then the evaluations ``--jobs`` at a time.

Paper scale on a GPU (the figures for the closing note):
    python benchmarks/toy_speed.py --device cuda --jobs 8
A CPU smoke run:
    python benchmarks/toy_speed.py --device cpu --steps 20 --lengths 10 --samples-per-letter 2 --timing-steps 5
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import yaml

from revcurse.config import REPO_ROOT, resolve_config, toy_eval_spec, toy_train_spec
from revcurse.data.toy import MASK_ID, make_forward_dataset, write_dataset
from revcurse.training import toy_configs, train


def load_config(args) -> dict:
    config = resolve_config(yaml.safe_load((REPO_ROOT / "config.yaml").read_text()) | {"preset": args.preset})
    config = copy.deepcopy(config)
    toy = config["toy"]
    toy["train"]["device"] = args.device
    toy["train"]["precision"] = args.precision
    toy["train"]["log_every"] = 10**9           # no per-step logging in timed loops
    if args.steps:
        toy["train"]["steps"] = args.steps
        toy["train"]["checkpoint_every"] = max(1, args.steps // 4)
    if args.lengths:
        toy["lengths"] = args.lengths
    if args.samples_per_letter:
        toy["eval"]["samples_per_letter"] = args.samples_per_letter
    return config


def ms_per_step(config: dict, model: str, length: int, seeds: list[int], warmup: int, timed: int) -> float:
    """Mean wall ms of one optimiser step over ``timed`` steps after ``warmup`` steps."""
    spec = toy_train_spec(config, model, length, seeds[0])
    model_cfg, train_cfg = toy_configs(spec)
    train_cfg = type(train_cfg)(**{**train_cfg.to_dict(), "steps": warmup + timed})
    data = make_forward_dataset(length).tokens
    marks = {}

    def clock(state):
        if state.step in (warmup, warmup + timed):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks[state.step] = time.perf_counter()

    train(model_cfg, train_cfg, data, seeds, MASK_ID, callbacks=[clock])
    return 1000 * (marks[warmup + timed] - marks[warmup]) / timed


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "revcurse.cli", *args]


def run_all(commands: list[list[str]], jobs: int) -> None:
    def run(command):
        subprocess.run(command, check=True, capture_output=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, commands))


def grid_commands(config: dict, workdir: Path, stacked: bool) -> tuple[list[list[str]], list[list[str]]]:
    """(training commands, evaluation commands) for the whole toy grid."""
    toy = config["toy"]
    train_cmds, eval_cmds = [], []
    for model in toy["models"]:
        for length in toy["lengths"]:
            data = workdir / f"L{length}.parquet"
            # One folder per run: a training process keeps its resume file next to its first output.
            runs = [(seed, workdir / ("stacked" if stacked else "solo") / f"{model}_L{length}_seed{seed}" / "model.pt")
                    for seed in toy["seeds"]]
            groups = [runs] if stacked else [[run] for run in runs]
            for group in groups:
                args = ["toy-train", "--data", str(data)]
                for seed, out in group:
                    args += ["--spec", json.dumps(toy_train_spec(config, model, length, seed)), "--out", str(out)]
                train_cmds.append(cli(*args))
            for seed, out in runs:
                eval_cmds.append(cli("toy-eval", "--spec", json.dumps(toy_eval_spec(config, model, length, seed)),
                                     "--model", str(out), "--device", toy["train"]["device"],
                                     "--out", str(out.with_suffix(".parquet"))))
    return train_cmds, eval_cmds


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:8.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--steps", type=int, help="override training steps (default: the preset's)")
    parser.add_argument("--lengths", type=int, nargs="+")
    parser.add_argument("--samples-per-letter", type=int)
    parser.add_argument("--timing-steps", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=8, help="processes at a time in the stacked grid")
    parser.add_argument("--skip-grid", action="store_true")
    args = parser.parse_args()
    config = load_config(args)
    toy = config["toy"]
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}), "
          f"precision {args.precision}, torch {torch.__version__}, threads {torch.get_num_threads()}")

    print(f"\n1. ms per training step (batch {toy['train']['batch_size']}, after 5 warm-up steps, "
          f"{args.timing_steps} timed)")
    stack_label = f"stack of {len(toy['seeds'])}"
    print(f"  {'model':<6} {'L':>4} {'alone':>10} {stack_label:>12} {'per model':>10}")
    for model in toy["models"]:
        for length in toy["lengths"]:
            alone = ms_per_step(config, model, length, toy["seeds"][:1], 5, args.timing_steps)
            stack = ms_per_step(config, model, length, toy["seeds"], 5, args.timing_steps)
            print(f"  {model:<6} {length:>4} {alone:>9.2f}  {stack:>11.2f} {stack / len(toy['seeds']):>10.2f}",
                  flush=True)

    if args.skip_grid:
        return
    runs = len(toy["models"]) * len(toy["lengths"]) * len(toy["seeds"])
    print(f"\n2. whole grid: {runs} runs x {toy['train']['steps']} steps + evaluation "
          f"({toy['eval']['samples_per_letter']} samples per letter)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for length in toy["lengths"]:
            write_dataset(make_forward_dataset(length), workdir / f"L{length}.parquet", workdir / f"L{length}.json")
        base_train, base_eval = grid_commands(config, workdir, stacked=False)
        fast_train, fast_eval = grid_commands(config, workdir, stacked=True)
        baseline = timed(f"baseline: {len(base_train)} runs, one process each, serial",
                         lambda: run_all(base_train + base_eval, jobs=1))
        fast = timed(f"stacked: {len(fast_train)} stacks, {args.jobs} processes at a time",
                     lambda: (run_all(fast_train, args.jobs), run_all(fast_eval, args.jobs)))
        print(f"  speed-up {baseline / fast:.2f}x")


if __name__ == "__main__":
    main()
