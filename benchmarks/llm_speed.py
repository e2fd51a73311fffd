"""Large-scale study speed on random-weight models of the real shapes (issue 5, item 7).

Builds LLaMA-3.1-8B- and LLaDA-8B-shaped models with random weights (transformers' Llama class,
bidirectional for LLaDA, exactly as the stand-ins are built), wraps them with LoRA r = 32 on
q/k/v/o, and times the project's own code paths on synthetic data of the study's shapes:

1. fine-tuning: ms per optimiser step, training tokens/s, peak GPU memory and an MFU estimate,
   side by side for
   - baseline: one run, batch 8 (the protocol, one run per process);
   - shared base: the batch of ``--stack`` runs (8 each) through one frozen base, per run. This is
     the throughput a stacked-adapter trainer (every run keeps its adapter, batch 8 and data
     order) could reach; here one adapter stands in for the stack, so it is an upper bound;
2. evaluation: queries/s of greedy decoding (LLaMA shape, ``--max-new-tokens``) and of LLaDA's
   low-confidence diffusion decoding (LLaDA shape, ``--diffusion-steps`` steps, one block), and
   the time of ``--queries`` queries;
3. the projected GPU-hours of the whole Table 1 grid (4 models x 5 tasks x 3 seeds, 150 epochs,
   a checkpoint evaluated every 10 epochs) from those figures.

FLOPs are counted as 2 x (linear-layer parameters, LM head included, embeddings excluded) per token
for a forward pass, plus 4 x seq x hidden per layer for attention scores and values (half of it
for causal attention). A LoRA step with a frozen base costs forward + gradient w.r.t. the
activations = 2 x forward (no weight gradients for the base; the adapters' are negligible); MFU
divides that by ``--peak-tflops`` (H100 SXM dense bf16: 989).

On the GPU machine (bf16, sdpa):
    python benchmarks/llm_speed.py --device cuda --shapes llama8b llada8b
A CPU smoke run at toy shapes:
    python benchmarks/llm_speed.py --device cpu --shapes tiny-llama tiny-llada --train-steps 3 --queries 16
"""
from __future__ import annotations

import argparse
import time

import torch

from revcurse.llm.backbone import DTYPES, Backbone
from revcurse.llm.batches import Example, query_batch, training_batch
from revcurse.llm.evaluate import DecodingSettings, generate
from revcurse.llm.finetune import FinetuneSettings, example_losses
from revcurse.llm.lora import attach_lora
from revcurse.llm.registry import ModelSpec
from revcurse.llm.standins import build_standin

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
# Table 1 grid: training examples and forward + reverse queries per task (docs/datasets.md).
TASKS = {"P2C": (250, 500), "C2P": (250, 500), "P2D": (300, 200), "D2P": (300, 200), "T-REx": (450, 900)}
MODELS_PER_KIND, SEEDS, EPOCHS, CHECKPOINT_EVERY = 2, 3, 150, 10


def build(shape: dict, device: torch.device, dtype: str) -> Backbone:
    spec = ModelSpec.from_config("bench", {
        "label": "bench", "kind": shape["kind"], "sampler": "llada" if shape["kind"] == "mdm" else "greedy",
        "standin": {k: shape[k] for k in ("architecture", "hidden_size", "layers", "heads", "kv_heads",
                                          "intermediate_size")} | {"max_positions": 4096},
        "attention_mask": "additive_4d", "lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "lr": {"default": 5e-5}, "dtype": dtype,
    })
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dtype])       # random 8B weights are made in place, on the device
    try:
        with torch.device(device):
            model = build_standin(spec, shape["vocab"], eos_token_id=0, seed=0)
    finally:
        torch.set_default_dtype(default_dtype)
    model = attach_lora(model, spec.lora_targets, rank=32, alpha=64, dropout=0.0, train_base=False, config_key="bench")
    return Backbone(spec, model, None, pad_token_id=0, eos_token_id=0, stop_token_ids=frozenset([0]),
                    mask_token_id=shape["mask_token_id"])


def synthetic_examples(count: int, prompt_tokens: int, answer_tokens: int, vocab: int) -> list[Example]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2, min(vocab, 100_000), (count, prompt_tokens + answer_tokens), generator=generator)
    return [Example(tuple(row[:prompt_tokens].tolist()), tuple(row[prompt_tokens:].tolist())) for row in ids]


def forward_flops_per_token(backbone: Backbone, seq_len: int) -> float:
    config = backbone.model.base_model.model.config
    linear = sum(m.weight.numel() for name, m in backbone.model.named_modules()
                 if isinstance(m, torch.nn.Linear) and "lora_" not in name)
    attention = 4 * seq_len * config.hidden_size * config.num_hidden_layers
    return 2 * linear + (attention if backbone.spec.kind == "mdm" else attention / 2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_training(backbone: Backbone, batch_size: int, steps: int, warmup: int, args, device) -> dict:
    """Mean ms per AdamW step on batches of ``batch_size`` through the project's objective."""
    examples = synthetic_examples(batch_size, args.prompt_tokens, args.answer_tokens, args.vocab)
    batch = training_batch(examples, backbone.pad_token_id).to(device)
    settings = FinetuneSettings(1, batch_size, 5e-5, 0.1, 1, 1e-3, False, 0)
    noise = (torch.rand(batch_size), torch.rand(batch_size, batch.input_ids.shape[1]))
    trainable = [p for p in backbone.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-5, weight_decay=0.1)
    backbone.model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            started = time.perf_counter()
        example_losses(backbone, batch, settings, noise).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    seconds = (time.perf_counter() - started) / steps
    tokens = int(batch.padding_mask.sum())
    flops = 2 * forward_flops_per_token(backbone, batch.input_ids.shape[1]) * tokens
    del optimizer
    return {
        "ms_per_step": 1000 * seconds,
        "tokens_per_s": tokens / seconds,
        "mfu": flops / seconds / (args.peak_tflops * 1e12),
        "peak": f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else "n/a (CPU)",
    }


def time_decoding(backbone: Backbone, args, device) -> dict:
    """Seconds for ``--queries`` queries, batched by ``--eval-batch``, with the model's sampler."""
    settings = DecodingSettings(max_new_tokens=args.max_new_tokens, batch_size=args.eval_batch,
                                llada_steps=args.diffusion_steps, llada_block_length=args.max_new_tokens,
                                dream_steps=args.diffusion_steps, dream_alg="entropy", dream_eps=1e-3)
    prompts = [e.prompt_ids for e in synthetic_examples(args.queries, args.prompt_tokens, 0, args.vocab)]
    backbone.model.eval()
    batches = [query_batch(prompts[i : i + args.eval_batch], backbone.pad_token_id)
               for i in range(0, len(prompts), args.eval_batch)]
    generate(backbone, batches[0][0].to(device), batches[0][1].to(device), settings)   # warm-up
    sync(device)
    started = time.perf_counter()
    for ids, mask in batches:
        generate(backbone, ids.to(device), mask.to(device), settings)
    sync(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "queries_per_s": args.queries / seconds}


def projected_gpu_hours(step_ms: dict[str, float], queries_per_s: dict[str, float]) -> float:
    """Table 1 grid: every model kind's step time and decoding rate, for 150 epochs and 15 evaluations."""
    hours = 0.0
    for kind in step_ms:
        for train_examples, queries in TASKS.values():
            steps = EPOCHS * -(-train_examples // 8)
            evaluations = EPOCHS // CHECKPOINT_EVERY
            seconds = steps * step_ms[kind] / 1000 + evaluations * queries / queries_per_s[kind]
            hours += MODELS_PER_KIND * SEEDS * seconds / 3600
    return hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="bf16 on CUDA, fp32 on the CPU by default")
    parser.add_argument("--shapes", nargs="+", default=["llama8b", "llada8b"], choices=SHAPES)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--stack", type=int, default=4, help="runs sharing one frozen base")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--eval-batch", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--diffusion-steps", type=int, default=32)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")

    step_ms, shared_step_ms, queries_per_s = {}, {}, {}
    print(f"device {device}, {dtype}, sequences of {args.prompt_tokens} prompt + {args.answer_tokens} answer tokens")
    for name in args.shapes:
        shape = SHAPES[name]
        args.vocab = shape["vocab"]
        backbone = build(shape, device, dtype)
        baseline = time_training(backbone, 8, args.train_steps, args.warmup_steps, args, device)
        shared = time_training(backbone, 8 * args.stack, args.train_steps, args.warmup_steps, args, device)
        decoding = time_decoding(backbone, args, device)
        sampler = "greedy" if shape["kind"] == "arm" else f"{args.diffusion_steps}-step diffusion"
        print(f"\n{name} ({shape['kind']})")
        print(f"  fine-tuning, baseline (1 run, batch 8):       {baseline['ms_per_step']:8.1f} ms/step "
              f"{baseline['tokens_per_s']:9.0f} tokens/s  MFU {100 * baseline['mfu']:5.1f}%  "
              f"peak {baseline['peak']}")
        print(f"  fine-tuning, {args.stack} runs over one base (batch {8 * args.stack}): "
              f"{shared['ms_per_step']:8.1f} ms/step = {shared['ms_per_step'] / args.stack:.1f} ms per run-step "
              f"({baseline['ms_per_step'] * args.stack / shared['ms_per_step']:.2f}x)  MFU {100 * shared['mfu']:5.1f}%  "
              f"peak {shared['peak']}")
        print(f"  evaluation, {sampler}, batch {args.eval_batch}: {args.queries} queries in "
              f"{decoding['seconds']:.1f} s = {decoding['queries_per_s']:.1f} queries/s")
        step_ms[shape["kind"]] = baseline["ms_per_step"]
        shared_step_ms[shape["kind"]] = shared["ms_per_step"] / args.stack
        queries_per_s[shape["kind"]] = decoding["queries_per_s"]
        del backbone
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if set(step_ms) == {"arm", "mdm"}:
        print(f"\nprojected Table 1 grid (60 runs, 150 epochs, 15 evaluations each):\n"
              f"  one run per process at batch 8:         {projected_gpu_hours(step_ms, queries_per_s):8.1f} GPU-hours\n"
              f"  {args.stack} runs over one base (upper bound): "
              f"{projected_gpu_hours(shared_step_ms, queries_per_s):8.1f} GPU-hours")


if __name__ == "__main__":
    main()
