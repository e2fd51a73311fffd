"""Cost and precision of the toy probes (toy.probes.every, toy.probes.precision; docs/probes.md).

For each trained run's snapshots.pt given, on its last snapshot: the attention and training-dynamics
probes in fp32 and in bf16 (autocast, as training and evaluation), alternating ``--repeats`` times;
prints seconds per snapshot (min / median, and the fp32 / bf16 ratio of the medians), how far bf16
moves what the figures read (the attention score's correlation with fp32, the softmax weight's and
the gradient cosine's largest and mean change, the ground-truth probability's largest change), and
one run's probe cost at each snapshot schedule (fp32 every snapshot: the baseline).

    python benchmarks/toy_probe_cost.py results/paper_bf16/toy/mdm/L{20,40}/seed0/snapshots.pt --threads 1
A CPU smoke run (a few seconds; an untrained quick-sized model):
    python benchmarks/toy_probe_cost.py --tiny
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from revcurse.core.devices import autocast
from revcurse.data.toy import MASK_ID, VOCAB_SIZE
from revcurse.toy.model import ModelConfig, ToyTransformer
from revcurse.toy.probes import attention_probe, training_dynamics
from revcurse.toy.train import every_and_last, load_snapshots

PRECISIONS = ("fp32", "bf16")


def timed(fn, precision: str):
    start = time.perf_counter()
    with autocast(precision, torch.device("cpu")):
        out = fn()
    return time.perf_counter() - start, out


def report(model: ToyTransformer, length: int, steps: list[int], repeats: int, schedules: list[int]) -> None:
    probes = {"attention": lambda: attention_probe(model, length), "training_dynamics": lambda: training_dynamics(model, length)}
    seconds = {(probe, prec): [] for probe in probes for prec in PRECISIONS}
    outputs = {}
    for _ in range(repeats):
        for probe, fn in probes.items():
            for prec in PRECISIONS:
                elapsed, outputs[probe, prec] = timed(fn, prec)
                seconds[probe, prec].append(elapsed)
    print(f"L = {length}, step {steps[-1]}, {torch.get_num_threads()} thread(s), {repeats} repeat(s)")
    median = {key: statistics.median(v) for key, v in seconds.items()}
    for probe in probes:
        cells = "  ".join(f"{prec} {min(seconds[probe, prec]):.2f} / {median[probe, prec]:.2f} s" for prec in PRECISIONS)
        print(f"{probe:18s} per snapshot (min / median): {cells}  fp32/bf16 {median[probe, 'fp32'] / median[probe, 'bf16']:.2f}x")
    a, b = outputs["attention", "fp32"], outputs["attention", "bf16"]
    weight = (a["weight"] - b["weight"]).abs()
    print(f"bf16 vs fp32, attention: score correlation {np.corrcoef(a['score'], b['score'])[0, 1]:.6f}, "
          f"|weight change| max {weight.max():.4f} mean {weight.mean():.5f}")
    (ga, qa), (gb, qb) = outputs["training_dynamics", "fp32"], outputs["training_dynamics", "bf16"]
    cosine = (ga["cosine"] - gb["cosine"]).abs()
    print(f"bf16 vs fp32, training dynamics: |cosine change| max {cosine.max():.4f} mean {cosine.mean():.5f}, "
          f"|probability change| max {(qa['probability'] - qb['probability']).abs().max():.4f}")
    per_snapshot = {prec: sum(median[probe, prec] for probe in probes) for prec in PRECISIONS}
    for every in schedules:
        probed = len(every_and_last([(step, None) for step in steps], every))   # the schedule toy_probe uses
        cells = "  ".join(f"{prec} {probed * per_snapshot[prec] / 60:.1f} min" for prec in PRECISIONS)
        print(f"one run, every {every} steps ({probed} of {len(steps)} snapshots): {cells}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("snapshots", nargs="*", help="runs' snapshots.pt (MDMs: the attention probe reads [M])")
    p.add_argument("--weights", default="ema")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--every", type=int, nargs="+", default=[100, 500], help="snapshot schedules to cost")
    p.add_argument("--tiny", action="store_true", help="an untrained L = 6 model instead of a run")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        cfg = ModelConfig(vocab_size=VOCAB_SIZE, seq_len=6, d_model=32, n_heads=2, never_predict=MASK_ID)
        runs = [(6, list(range(0, 101, 50)), ToyTransformer(cfg, init_rng=[torch.Generator().manual_seed(0)]).eval())]
    elif args.snapshots:
        runs = []
        for path in args.snapshots:
            models, run = load_snapshots(path, args.weights, "cpu")
            runs.append((run["spec"]["length"], [s for s, _ in models], models[-1][1]))
    else:
        p.error("give snapshots.pt files or --tiny")
    for length, steps, model in runs:
        report(model, length, steps, args.repeats, args.every)


if __name__ == "__main__":
    main()
