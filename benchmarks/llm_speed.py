"""Large-scale study speed, baseline and optimised side by side, on random-weight models of the
real shapes (docs/llm.md, "Speed").

Builds LLaMA-3.1-8B- and LLaDA-8B-shaped models with random, frozen weights (transformers' Llama
class, bidirectional for LLaDA, as the stand-ins are built), with LoRA r = 32 on q/k/v/o, and runs
the project's own code on synthetic data of the study's shapes:

1. fine-tuning, ``finetune.py``'s training loop (a warm-up epoch, then ``--repeats`` timed epochs
   of ``--train-steps`` steps, the fastest reported):
   - baseline: ``--runs`` runs (the seeds of one model, dataset and direction) one after another,
     each alone at batch 8 with its own peft adapter: one run per process, as before stacking;
   - stacked: the same runs together over the one frozen base (``finetune_stack``: each run keeps
     its adapter, batch 8 and data order; one forward/backward of batch 8 x runs per step);
   ms per run-step, training tokens/s, peak GPU memory and MFU;
2. decoding: ``--queries`` queries of ``--diffusion-steps``-step LLaDA low-confidence remasking
   (LLaDA shape, one block of ``--max-new-tokens``):
   - baseline: the pipeline's earlier sampler (``baseline_llada_generate``: the logits of
     every position, confidences over the whole answer), batch 64;
   - optimised: the pipeline's sampler (LM head and confidences at the still-masked positions only),
     batch ``--eval-batch``;
   seconds, queries/s (the fastest of ``--repeats`` passes, the two alternating), and whether
   both gave the same tokens. Greedy decoding (LLaMA shape, unchanged) is timed alone;
3. the projected GPU-hours of the whole Table 1 grid of config.yaml (its runs, epochs and checkpoint
   schedule; dataset sizes counted from the datasets as it builds them) for both, and their ratio.

FLOPs are counted as 2 x (linear-layer parameters, LM head included, embeddings excluded) per token
for a forward pass, plus 4 x seq x hidden per layer for attention scores and values (half of it
for causal attention). A LoRA step with a frozen base costs forward + gradient w.r.t. the
activations = 2 x forward (no weight gradients for the base; the adapters' are negligible); MFU
divides that by ``--peak-tflops`` (H100 SXM dense bf16: 989).

On the GPU machine (bf16, sdpa):
    python benchmarks/llm_speed.py --device cuda --shapes llama8b llada8b
A CPU run at toy shapes (its figures say nothing about a GPU):
    python benchmarks/llm_speed.py --device cpu --shapes tiny-llama tiny-llada --train-steps 8 --queries 128 --repeats 2
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator

from revcurse.core.devices import resolve_precision
from revcurse.data.relational.build import build_dataset
from revcurse.data.relational.naming import load_resources
from revcurse.llm.batches import Example, query_batch
from revcurse.llm.evaluate import DecodingSettings, generate
from revcurse.llm.finetune import FinetuneSettings, checkpoint_epochs, finetune, finetune_stack
from revcurse.llm.model.backbone import DTYPES, Backbone, with_seeded_lora, with_stacked_lora
from revcurse.llm.model.registry import ModelSpec
from revcurse.llm.model.standins import build_standin
from revcurse.llm.plan import grid_runs
from revcurse.pipeline.config import load_config

SHAPES = {
    # meta-llama/Llama-3.1-8B: GQA with 8 KV heads.
    "llama8b": dict(kind="arm", architecture="llama", hidden_size=4096, layers=32, heads=32, kv_heads=8,
                    intermediate_size=14336, vocab=128256, mask_token_id=None),
    # GSAI-ML/LLaDA-8B: full multi-head attention, MLP 12288, its own vocabulary and mask id.
    "llada8b": dict(kind="mdm", architecture="llama", hidden_size=4096, layers=32, heads=32, kv_heads=32,
                    intermediate_size=12288, vocab=126464, mask_token_id=126336),
    "tiny-llama": dict(kind="arm", architecture="llama", hidden_size=64, layers=2, heads=4, kv_heads=2,
                       intermediate_size=128, vocab=512, mask_token_id=None),
    "tiny-llada": dict(kind="mdm", architecture="llama", hidden_size=64, layers=2, heads=4, kv_heads=4,
                       intermediate_size=128, vocab=512, mask_token_id=500),
}
LORA = {"r": 32, "alpha": 64, "dropout": 0.0}
BASELINE_EVAL_BATCH = 64
PAPER = load_config(command_line={"preset": "paper"})
BATCH, SEEDS = PAPER["llm"]["train"]["batch_size"], len(PAPER["llm"]["grid"]["seeds"])


def paper_grid_workload() -> list[dict]:
    """Every run of the paper's Table 1 grid (config.yaml) with its model kind, training examples
    and forward + reverse queries, counted from the datasets as config.yaml builds them."""
    resources = load_resources()
    datasets = {name: {d.name: d for d in build_dataset(name, PAPER["datasets"][name], resources).directions}
                for name in {run["dataset"] for run in grid_runs(PAPER)}}
    return [{"kind": PAPER["llm"]["models"][run["model"]]["kind"],
             "train_examples": len(direction.train),
             "queries": len(direction.eval_forward) + len(direction.eval_reverse)}
            for run in grid_runs(PAPER)
            for direction in [datasets[run["dataset"]][run["direction"]]]]


@torch.no_grad()
def baseline_llada_generate(logits_fn, prompt_ids: torch.Tensor, padding_mask: torch.Tensor, *, mask_token_id: int,
                            gen_length: int, steps: int, block_length: int) -> torch.Tensor:
    """The pipeline's earlier LLaDA sampler, kept as the baseline (and as the reference the
    tests hold the pipeline's sampler to): every step computes the logits of every position
    (``logits_fn(ids, padding_mask)``) and the confidences over the whole answer."""
    from revcurse.llm.samplers import transfer_schedule

    batch, start = prompt_ids.shape
    masks = torch.full((batch, gen_length), mask_token_id, dtype=prompt_ids.dtype, device=prompt_ids.device)
    x = torch.cat([prompt_ids, masks], dim=1)
    padding_mask = torch.cat([padding_mask, torch.ones_like(masks)], dim=1)
    blocks = gen_length // block_length
    for block in range(blocks):
        block_end = block_length * (block + 1)
        for count in transfer_schedule(block_length, steps // blocks):
            answer = x[:, start:]
            logits = logits_fn(x, padding_mask)[:, start:].float()
            logits[..., mask_token_id] = -torch.inf
            top_logit, candidate = logits.max(dim=-1)
            confidence = torch.exp(top_logit - torch.logsumexp(logits, dim=-1))
            confidence = confidence.masked_fill(answer != mask_token_id, -torch.inf)
            confidence[:, block_end:] = -torch.inf
            if count:
                chosen = confidence.topk(count, dim=1).indices
                answer.scatter_(1, chosen, candidate.gather(1, chosen))
    return x[:, start:]


def build(shape: dict, device: torch.device, precision: str) -> Backbone:
    """A random-weight model of ``shape`` on ``device``, frozen, without adapters."""
    spec = ModelSpec.from_config("bench", {
        "label": "bench", "kind": shape["kind"], "sampler": "llada" if shape["kind"] == "mdm" else "greedy",
        "standin": {k: shape[k] for k in ("architecture", "hidden_size", "layers", "heads", "kv_heads",
                                          "intermediate_size")} | {"max_positions": 4096},
        "attention_mask": "additive_4d", "lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "lr": {"default": 5e-5}, "precision": precision,
    })
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[precision])   # random 8B weights are made in place, on the device
    try:
        with torch.device(device):
            model = build_standin(spec, shape["vocab"], eos_token_id=0, seed=0)
    finally:
        torch.set_default_dtype(default_dtype)
    # Logits as spread as an 8B shape's (init std 0.02 x sqrt(4096)): a tiny random head predicts
    # nearly uniform distributions whose confidences tie exactly in fp32, and the baseline's topk
    # breaks ties arbitrarily, so the tokens could differ for no other reason.
    model.get_output_embeddings().weight.data.mul_((4096 / shape["hidden_size"]) ** 0.5)
    model.requires_grad_(False)
    return Backbone(spec, model, None, pad_token_id=0, eos_token_id=0, stop_token_ids=frozenset([0]),
                    mask_token_id=shape["mask_token_id"])


def synthetic_examples(count: int, prompt_tokens: int, answer_tokens: int, vocab: int) -> list[Example]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2, min(vocab, 100_000), (count, prompt_tokens + answer_tokens), generator=generator)
    ids[ids == 500] = 2                          # never the tiny shapes' mask token
    return [Example(tuple(row[:prompt_tokens].tolist()), tuple(row[prompt_tokens:].tolist())) for row in ids]


def forward_flops_per_token(backbone: Backbone, seq_len: int) -> float:
    config = backbone.model.config
    linear = sum(m.weight.numel() for m in backbone.model.modules() if isinstance(m, torch.nn.Linear))
    attention = 4 * seq_len * config.hidden_size * config.num_hidden_layers
    return 2 * linear + (attention if backbone.spec.kind == "mdm" else attention / 2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else "n/a (CPU)"


def time_finetuning(base: Backbone, args, device: torch.device) -> dict[str, dict]:
    """The baseline (each run alone, one after another) and the stack, through finetune.py's loop.
    Leaves ``base.model`` carrying the stacked adapters."""
    examples = synthetic_examples(BATCH * args.train_steps, args.prompt_tokens, args.answer_tokens, args.vocab)
    seeds = list(range(1, args.runs + 1))
    epochs = 1 + args.repeats                                          # a warm-up epoch, then the timed ones
    settings = [FinetuneSettings(epochs=epochs, batch_size=BATCH, learning_rate=5e-5, weight_decay=0.1,
                                 checkpoint_every=epochs, min_mask_rate=1e-3, arm_prompt_in_loss=False, seed=seed)
                for seed in seeds]
    tokens = sum(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    flops = 2 * forward_flops_per_token(base, args.prompt_tokens + args.answer_tokens) * tokens
    accelerator = Accelerator(cpu=device.type == "cpu")
    results = {}
    with tempfile.TemporaryDirectory() as out:
        reset_peak(device)
        alone_seconds = []
        for run in settings:
            backbone = with_seeded_lora(base, LORA, run.seed)
            summary = finetune(backbone, examples, run, Path(out) / f"alone{run.seed}", "bench", accelerator)
            alone_seconds.append(min(summary["epoch_seconds"][1:]))
            base = replace(base, model=backbone.model.unload())
        results["baseline"] = {"seconds": sum(alone_seconds), "peak": peak(device)}
        reset_peak(device)
        stacked = with_stacked_lora(base, LORA, seeds)
        summaries = finetune_stack(stacked, examples, settings, [Path(out) / f"stack{s}" for s in seeds], "bench",
                                   accelerator)
        results["stacked"] = {"seconds": min(summaries[0]["epoch_seconds"][1:]), "peak": peak(device)}
    for result in results.values():      # per run-step: the time of one run's optimiser step
        seconds_per_run_step = result["seconds"] / (args.runs * args.train_steps)
        result |= {"ms_per_run_step": 1000 * seconds_per_run_step,
                   "tokens_per_s": args.runs * tokens / result["seconds"],
                   "mfu": args.runs * flops / result["seconds"] / (args.peak_tflops * 1e12)}
    return results


def time_decoding(backbone: Backbone, args, device: torch.device) -> dict[str, dict]:
    """``--queries`` queries: the baseline diffusion sampler at batch 64 and the pipeline's at
    ``--eval-batch`` (MDMs), or greedy decoding (ARMs, one figure)."""
    prompts = [e.prompt_ids for e in synthetic_examples(args.queries, args.prompt_tokens, 0, args.vocab)]
    settings = DecodingSettings(max_new_tokens=args.max_new_tokens, batch_size=args.eval_batch,
                                llada_steps=args.diffusion_steps, llada_block_length=args.max_new_tokens,
                                dream_steps=args.diffusion_steps, dream_alg="entropy", dream_eps=1e-3)
    optimised = lambda ids, mask: generate(backbone, ids, mask, settings)  # noqa: E731
    if backbone.spec.kind == "arm":
        return {"greedy": min((_decode(optimised, prompts, args.eval_batch, backbone, device)
                               for _ in range(args.repeats)), key=lambda run: run["seconds"])}
    baseline = lambda ids, mask: baseline_llada_generate(  # noqa: E731
        backbone.logits, ids, mask, mask_token_id=backbone.mask_token_id, gen_length=args.max_new_tokens,
        steps=args.diffusion_steps, block_length=args.max_new_tokens)
    passes = {"baseline": [], "optimised": []}
    for _ in range(args.repeats):      # alternated, so that a change of load hits both alike
        passes["baseline"].append(_decode(baseline, prompts, BASELINE_EVAL_BATCH, backbone, device))
        passes["optimised"].append(_decode(optimised, prompts, args.eval_batch, backbone, device))
    results = {variant: min(runs, key=lambda run: run["seconds"]) for variant, runs in passes.items()}
    results["optimised"]["identical"] = torch.equal(results["baseline"]["tokens"], results["optimised"]["tokens"])
    return results


def _decode(sampler, prompts, batch_size: int, backbone: Backbone, device: torch.device) -> dict:
    backbone.model.eval()
    batches = [query_batch(prompts[i : i + batch_size], backbone.pad_token_id)
               for i in range(0, len(prompts), batch_size)]
    sampler(batches[0][0].to(device), batches[0][1].to(device))            # warm-up
    sync(device)
    started = time.perf_counter()
    tokens = [sampler(ids.to(device), mask.to(device)) for ids, mask in batches]
    sync(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "queries_per_s": len(prompts) / seconds, "batch": batch_size,
            "tokens": torch.cat([t.cpu() for t in tokens])}


def grid_hours(workload: list[dict], step_ms: dict[str, float], queries_per_s: dict[str, float]) -> tuple[float, float]:
    """GPU-hours of the Table 1 grid (training, evaluation) from each model kind's time per run-step
    and decoding rate, with config.yaml's epochs, batch and checkpoint schedule."""
    train = PAPER["llm"]["train"]
    evaluations = len(checkpoint_epochs(train["epochs"], train["checkpoint_every"]))
    training = sum(train["epochs"] * -(-run["train_examples"] // BATCH) * step_ms[run["kind"]] for run in workload)
    evaluation = sum(evaluations * run["queries"] / queries_per_s[run["kind"]] for run in workload)
    return training / 1000 / 3600, evaluation / 3600


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                        help="default: what precision auto resolves to here (revcurse.core.devices.resolve_precision)")
    parser.add_argument("--shapes", nargs="+", default=["llama8b", "llada8b"], choices=SHAPES)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=20, help="timed steps per run (after a warm-up epoch)")
    parser.add_argument("--runs", type=int, default=SEEDS, help="runs sharing one frozen base (the seeds)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--eval-batch", type=int, default=64, help="batch of the optimised decoder")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--diffusion-steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed epochs per run and decoding passes; the fastest is reported")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    precision = args.precision or resolve_precision("auto", device)

    step_ms = {"baseline": {}, "optimised": {}}
    queries_per_s = {"baseline": {}, "optimised": {}}
    print(f"device {device}, {precision}, sequences of {args.prompt_tokens} prompt + {args.answer_tokens} answer tokens, "
          f"{args.runs} runs per base")
    for name in args.shapes:
        shape = SHAPES[name]
        args.vocab = shape["vocab"]
        base = build(shape, device, precision)
        decoder = with_seeded_lora(base, LORA, seed=0)
        decoding = time_decoding(decoder, args, device)
        base = replace(base, model=decoder.model.unload())
        training = time_finetuning(base, args, device)
        print(f"\n{name} ({shape['kind']})")
        stacked_label = f"stacked: {args.runs} runs over one base, batch {BATCH * args.runs}"
        for label, result in (("baseline: runs alone, one after another", training["baseline"]),
                              (stacked_label, training["stacked"])):
            print(f"  fine-tuning, {label:<44} {result['ms_per_run_step']:8.1f} ms per run-step "
                  f"{result['tokens_per_s']:9.0f} tokens/s  MFU {100 * result['mfu']:5.1f}%  peak {result['peak']}")
        print(f"  fine-tuning speed-up: {training['baseline']['seconds'] / training['stacked']['seconds']:.2f}x")
        for label, result in decoding.items():
            what = "greedy" if label == "greedy" else f"{args.diffusion_steps}-step diffusion, {label}"
            same = {True: ", same tokens as the baseline", False: ", TOKENS DIFFER FROM THE BASELINE"}.get(
                result.get("identical"), "")
            print(f"  decoding, {what}, batch {result['batch']}: {args.queries} queries in {result['seconds']:.2f} s "
                  f"= {result['queries_per_s']:.1f} queries/s{same}")
        for variant, training_key in (("baseline", "baseline"), ("optimised", "stacked")):
            step_ms[variant][shape["kind"]] = training[training_key]["ms_per_run_step"]
            queries_per_s[variant][shape["kind"]] = decoding.get(variant, decoding.get("greedy"))["queries_per_s"]
        del base, decoder
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if set(step_ms["baseline"]) == {"arm", "mdm"}:
        workload = paper_grid_workload()
        train = PAPER["llm"]["train"]
        hours = {variant: grid_hours(workload, step_ms[variant], queries_per_s[variant]) for variant in step_ms}
        print(f"\nprojected Table 1 grid ({len(workload)} runs of config.yaml, {train['epochs']} epochs, a checkpoint "
              f"evaluated every {train['checkpoint_every']}), GPU-hours:")
        for variant, label in (("baseline", "one run per process, batch 8"),
                               ("optimised", f"{args.runs} runs stacked, fast decoding")):
            train, evaluation = hours[variant]
            print(f"  {label:<34} training {train:9.2f}  evaluation {evaluation:9.2f}  total {train + evaluation:9.2f}")
        (train_b, eval_b), (train_o, eval_o) = hours["baseline"], hours["optimised"]
        print(f"  ratio (baseline / optimised)       training {train_b / train_o:8.2f}x  evaluation "
              f"{eval_b / eval_o:8.2f}x  total {(train_b + eval_b) / (train_o + eval_o):8.2f}x")


if __name__ == "__main__":
    main()
