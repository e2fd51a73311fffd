"""Cost of the large-scale probes (docs/llm_probes.md) on random-weight models of the real shapes.

Builds the model shapes of benchmarks/llm_speed.py (LLaDA-8B, LLaMA-3.1-8B: transformers' Llama
class, bidirectional for LLaDA, LoRA r = 32 on q/k/v/o with the base frozen, as the real runs
train) and runs the project's own probe code (revcurse.llm.probes) on synthetic queries of the
study's shape: per sample, a forward context "[M]×a rel B×b" and a reverse context
"B×b rel [M]×a" (names of ``--entity-tokens`` tokens, relation of ``--relation-tokens``).

Measured per shape: the attention probe (MDMs; ``--samples`` x 2 directions x ``--placements``
sequences in batches of ``--batch-size``) and the training-dynamics probe (2 forward + 2 backward
passes per sample, one query at a time), wall time and peak memory (GPU: torch's peak allocated;
CPU: the process's peak RSS), and the projection to one run (``--checkpoints`` checkpoints) and to
the paper's probe grid (4 models x {P2C, C2P} x 3 seeds, 250 samples, 15 checkpoints). Random
weights: timings and memory only, never scores.

On the GPU machine (bf16, sdpa):
    python benchmarks/llm_probe_cost.py --device cuda --shapes llada8b llama8b
A CPU smoke run at toy shapes:
    python benchmarks/llm_probe_cost.py --device cpu --shapes tiny-llada tiny-llama --samples 8
"""
from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace

import torch
from llm_speed import SHAPES, build, sync

from revcurse.core.devices import resolve_precision
from revcurse.llm.model.lora import attach_lora
from revcurse.llm.probes.measure import Query, QueryPair, attention_scores, training_dynamics

PAPER_RUNS = {"mdm": 2 * 2 * 3, "arm": 2 * 2 * 3}     # models of the kind x {P2C, C2P} x seeds
PAPER_SAMPLES, PAPER_CHECKPOINTS = 250, 15


def synthetic_pairs(count: int, entity_tokens: int, relation_tokens: int, vocab: int,
                    mask: int | None) -> list[QueryPair]:
    """Query pairs of the study's shape from random token ids (the ARM's are the prefixes)."""
    generator = torch.Generator().manual_seed(0)
    pairs = []
    for index in range(count):
        a, b, relation = (torch.randint(2, min(vocab, 100_000), (n,), generator=generator).tolist()
                          for n in (entity_tokens, entity_tokens, relation_tokens))
        if mask is None:
            forward = Query(tuple(a + relation), len(a + relation) - 1, b[0], len(a + relation))
            reverse = Query(tuple(b + relation), len(b + relation) - 1, a[0], len(b + relation))
        else:
            prompt = [mask] * len(a) + relation
            forward = Query(tuple(prompt + b), 0, a[0], len(prompt), 0, len(prompt))
            prompt = b + relation
            reverse = Query(tuple(prompt + [mask] * len(a)), len(prompt), a[0], len(prompt), len(prompt), 0)
        pairs.append(QueryPair(f"s{index}", forward, reverse))
    return pairs


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(device: torch.device, function, *args):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    started = time.perf_counter()
    result = function(*args)
    sync(device)
    return result, time.perf_counter() - started, peak_memory_gib(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                        help="default: what precision auto resolves to here (revcurse.core.devices.resolve_precision)")
    parser.add_argument("--shapes", nargs="+", default=["llada8b", "llama8b"], choices=SHAPES)
    parser.add_argument("--samples", type=int, default=32, help="timed samples (projected to 250 per run)")
    parser.add_argument("--placements", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--entity-tokens", type=int, default=4)
    parser.add_argument("--relation-tokens", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (tiny shapes are fastest on one)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    precision = args.precision or resolve_precision("auto", device)
    print(f"device {device}, {precision}, {args.samples} samples, {args.placements} placements, batch {args.batch_size}")
    grid_hours = 0.0
    for name in args.shapes:
        shape = SHAPES[name]
        backbone = build(shape, device, precision)
        backbone = replace(backbone, model=attach_lora(backbone.model, backbone.spec.lora_targets, rank=32, alpha=64,
                                                       dropout=0.0, train_base=False, config_key="bench"))
        adapters = sum(p.numel() for p in backbone.model.parameters() if p.requires_grad)
        pairs = synthetic_pairs(args.samples, args.entity_tokens, args.relation_tokens, shape["vocab"],
                                shape["mask_token_id"])
        training_dynamics(backbone, pairs[:2])                                  # warm-up (kernels, allocator)
        _, dynamics_s, dynamics_gib = timed(device, training_dynamics, backbone, pairs)
        per_sample = dynamics_s / len(pairs)
        line = (f"{name}: {adapters:,} trainable (LoRA) parameters; dynamics {per_sample * 1e3:.0f} ms/sample "
                f"(2 fwd + 2 bwd), peak {dynamics_gib:.2f} GiB")
        per_checkpoint = per_sample * PAPER_SAMPLES
        if shape["kind"] == "mdm":
            attention_scores(backbone, pairs[:2], 1, args.batch_size)           # warm-up
            frame, attention_s, attention_gib = timed(device, attention_scores, backbone, pairs, args.placements,
                                                      args.batch_size)
            sequences = 2 * len(pairs) * args.placements
            line += (f"; attention {attention_s:.2f} s for {sequences} sequences ({len(frame)} scores), "
                     f"peak {attention_gib:.2f} GiB")
            per_checkpoint += attention_s / len(pairs) * PAPER_SAMPLES
        run_minutes = per_checkpoint * PAPER_CHECKPOINTS / 60
        grid_hours += run_minutes * PAPER_RUNS[shape["kind"]] / 60
        print(line)
        print(f"  one run ({PAPER_SAMPLES} samples x {PAPER_CHECKPOINTS} checkpoints): {run_minutes:.1f} min; "
              f"{PAPER_RUNS[shape['kind']]} such runs in the paper's probe grid")
        del backbone
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"projected probe grid of the shapes measured: {grid_hours:.2f} device-hours")


if __name__ == "__main__":
    main()
