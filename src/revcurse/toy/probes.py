"""Probes of toy models (paper §5, App. D.4, E): the measurements Figures 3–5, 11–13 are built from.

Every probe returns a long-format table, one row per measurement, whose columns and
types are fixed by ``SCHEMAS`` and checked by ``validate`` before it is written
(docs/probes.md documents each column):

* ``attention``: from ``[M]`` to the uppercase token B, for every letter and every
  forward placement "[M] … B" and reverse placement "B … [M]" (all other positions pad,
  App. E.1), the raw score qᵀR(Δ)k (pre-softmax, after RoPE, unscaled) and the
  softmax-normalised weight the model uses, per layer and head;
* ``gradient_alignment``: per letter, the inner product and cosine of the gradients,
  over all trainable parameters, of the forward and the reverse query loss (§4.3, §5.2);
* ``query_probability``: per letter and direction, the probability of the ground-truth
  token averaged over all placements (App. D.4);
* ``reverse_positions``: for the reverse prompt [B, [M], …, [M]] (ARM: [B] and pads),
  the probability of the correct lowercase and of the best wrong token at each position
  (App. D.4, Figure 11).

Queries (App. D.4). Masked diffusion: forward = "[M] … B" and reverse = "B … [M]", target
the lowercase A at the masked position, everything else pad. Next-token (the ARM cannot
read a mask): the prefix is cropped before the target, so forward = predict B at j from
a prefix holding A at i < j (the conditional its training supervises) and reverse =
predict A at i from a prefix holding B at j < i, as in App. D.4. Models are probed
without dropout.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from revcurse.core.schemas import check_table
from revcurse.data.toy import LOWER, MASK_ID, N_LETTERS, PAD_ID, VOCAB, lower_id, upper_id
from revcurse.toy.evaluate import DIRECTIONS
from revcurse.toy.model import ModelConfig, ToyTransformer

# Sequences per forward pass are capped so that tokens × members stays near this many.
TOKENS_PER_PASS = 2**16

# ---------------------------------------------------------------- schemas
RUN_COLUMNS = {"preset": str, "study": str, "model": str, "length": int, "seed": int, "weights": str, "step": int}
PROVENANCE_COLUMNS = {"precision": str, "config_hash": str, "train_config_hash": str, "code_version": str}
SCHEMAS: dict[str, dict[str, type]] = {
    "attention": {
        **RUN_COLUMNS, "layer": int, "head": int, "letter": str, "direction": str,
        "mask_pos": int, "upper_pos": int, "delta": int, "score": float, "weight": float,
        "pos_encoding": str, "head_dim": int, "rope_base": float, **PROVENANCE_COLUMNS,
    },
    "gradient_alignment": {
        **RUN_COLUMNS, "letter": str, "inner_product": float, "cosine": float,
        "grad_norm_forward": float, "grad_norm_reverse": float, "parameters": int, **PROVENANCE_COLUMNS,
    },
    "query_probability": {
        **RUN_COLUMNS, "letter": str, "direction": str, "target": str, "placements": int,
        "probability": float, **PROVENANCE_COLUMNS,
    },
    "reverse_positions": {
        **RUN_COLUMNS, "letter": str, "position": int, "prob_correct": float, "prob_best_wrong": float,
        "best_wrong_token": str, **PROVENANCE_COLUMNS,
    },
}


def validate(frame: pd.DataFrame, probe: str) -> pd.DataFrame:
    """``frame`` checked against the toy probe schema ``SCHEMAS[probe]``."""
    return check_table(frame, probe, SCHEMAS)


def with_run_columns(frame: pd.DataFrame, probe: str, run: dict, provenance: dict) -> pd.DataFrame:
    """Add the run identifiers and provenance, order the columns as the schema does and validate."""
    frame = frame.assign(**{k: v for k, v in run.items() if k not in frame}, **provenance)
    return validate(frame[list(SCHEMAS[probe])], probe)


# ---------------------------------------------------------------- queries
@dataclass(frozen=True)
class Queries:
    """One direction's queries: every letter (rows) × every placement (columns)."""

    tokens: torch.Tensor        # [letters, P, T] model input
    read_pos: torch.Tensor      # [P] position whose logits predict the target
    target_pos: torch.Tensor    # [P] position of the target token (the [M] for masked diffusion)
    context_pos: torch.Tensor   # [P] position of the informative context token
    targets: torch.Tensor       # [letters] target token id
    target_case: str            # "lowercase" | "uppercase"


def queries(cfg: ModelConfig, length: int, direction: str) -> Queries:
    """All placements of the ``direction`` query of every letter for a length-``length`` model (module docstring)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}; expected one of {DIRECTIONS}")
    letters = torch.arange(N_LETTERS)
    first, second = torch.triu_indices(length, length, offset=1)      # every first < second
    placements = torch.arange(len(first))
    if cfg.reads_mask:
        target_pos, context_pos = (first, second) if direction == "forward" else (second, first)
        context, targets, case = upper_id(0) + letters, lower_id(0) + letters, "lowercase"
        tokens = torch.full((N_LETTERS, len(first), length), PAD_ID, dtype=torch.long)
        tokens[:, placements, target_pos] = MASK_ID
        read_pos = target_pos
    else:
        # The context comes first and the input is the prefix before the target; the
        # model's training inputs are L − 1 long, and causal attention makes reading
        # position target − 1 of a longer input the same as cropping there.
        target_pos, context_pos = second, first
        if direction == "forward":
            context, targets, case = lower_id(0) + letters, upper_id(0) + letters, "uppercase"
        else:
            context, targets, case = upper_id(0) + letters, lower_id(0) + letters, "lowercase"
        tokens = torch.full((N_LETTERS, len(first), length - 1), PAD_ID, dtype=torch.long)
        read_pos = target_pos - 1
    tokens[:, placements, context_pos] = context[:, None]
    return Queries(tokens, read_pos, target_pos, context_pos, targets, case)


def _chunks(total: int, size: int) -> Iterator[slice]:
    size = max(1, size)
    return (slice(start, start + size) for start in range(0, total, size))


def _device(model: ToyTransformer) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------- attention
@contextmanager
def recorded_queries_keys(model: ToyTransformer) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Record (q, k) after RoPE, each [E, B, heads, T, head_dim], of every attention layer in every
    forward pass inside the block, from forward hooks on the layers' actual inputs."""
    records: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(module, args, output):
        q, k, _ = module.queries_keys_values(*args)
        records.append((q.detach(), k.detach()))

    handles = [block.attn.register_forward_hook(record) for block in model.blocks]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def attention_probe(model: ToyTransformer, length: int) -> pd.DataFrame:
    """Score qᵀR(Δ)k and softmax weight from [M] to B for every letter, placement, layer and head."""
    cfg = model.cfg
    if not cfg.reads_mask:
        raise ValueError(f"attention probe: the model never reads [M] (objective is {cfg.objective})")
    device = _device(model)
    frames = []
    for direction in DIRECTIONS:
        batch = queries(cfg, length, direction)
        tokens = batch.tokens.flatten(0, 1).to(device)                       # letter-major
        mask_pos = batch.target_pos.repeat(N_LETTERS).to(device)
        upper_pos = batch.context_pos.repeat(N_LETTERS).to(device)
        scores, weights = [], []
        for rows in _chunks(len(tokens), TOKENS_PER_PASS // length):
            with recorded_queries_keys(model) as records:
                model(tokens[None, rows])
            n = len(tokens[rows])
            index = torch.arange(n, device=device)
            per_layer_scores, per_layer_weights = [], []
            for q, k in records:
                q_mask = q[0][index, :, mask_pos[rows]]                        # [n, heads, head_dim]
                logits = torch.einsum("nhd,nhtd->nht", q_mask, k[0])           # [M] against every key
                if cfg.attention == "causal":
                    later = torch.arange(length, device=device) > mask_pos[rows, None]
                    logits = logits.masked_fill(later[:, None, :], float("-inf"))
                weight = (logits / math.sqrt(cfg.head_dim)).softmax(-1)        # as scaled_dot_product_attention
                per_layer_scores.append(logits[index, :, upper_pos[rows]])
                per_layer_weights.append(weight[index, :, upper_pos[rows]])
            scores.append(torch.stack(per_layer_scores, 1))                    # [n, layers, heads]
            weights.append(torch.stack(per_layer_weights, 1))
        score, weight = torch.cat(scores).cpu(), torch.cat(weights).cpu()
        n, layers, heads = score.shape
        mask_np, upper_np = mask_pos.cpu().numpy(), upper_pos.cpu().numpy()
        frames.append(pd.DataFrame({
            "layer": np.tile(np.repeat(np.arange(layers), heads), n),
            "head": np.tile(np.arange(heads), n * layers),
            "letter": np.repeat(np.array(list(LOWER)).repeat(len(batch.target_pos)), layers * heads),
            "direction": direction,
            "mask_pos": np.repeat(mask_np, layers * heads),
            "upper_pos": np.repeat(upper_np, layers * heads),
            "delta": np.repeat(np.abs(upper_np - mask_np), layers * heads),
            "score": score.double().flatten().numpy(),
            "weight": weight.double().flatten().numpy(),
        }))
    return pd.concat(frames, ignore_index=True).assign(
        pos_encoding=cfg.pos_encoding, head_dim=cfg.head_dim, rope_base=float(cfg.rope_base))


# ---------------------------------------------------------------- gradients and probabilities
def replicated(model: ToyTransformer, members: int) -> ToyTransformer:
    """``members`` copies of a single model as one stack: one backward pass then gives each
    member's gradient of its own loss separately (members share no parameters)."""
    stack = ToyTransformer(model.cfg, ensemble=members).to(_device(model))
    stack.load_state_dict({name: t.expand(members, *t.shape[1:]).clone() for name, t in model.state_dict().items()})
    return stack


def gradient_alignment(forward: torch.Tensor, reverse: torch.Tensor) -> pd.DataFrame:
    """Row by row: ⟨g_fwd, g_rev⟩, their cosine and norms, in float64, from [rows, parameters] gradients."""
    forward, reverse = forward.detach().double().cpu(), reverse.detach().double().cpu()
    inner = (forward * reverse).sum(1)
    norm_forward, norm_reverse = forward.norm(dim=1), reverse.norm(dim=1)
    return pd.DataFrame({
        "inner_product": inner.numpy(),
        "cosine": (inner / (norm_forward * norm_reverse)).numpy(),
        "grad_norm_forward": norm_forward.numpy(),
        "grad_norm_reverse": norm_reverse.numpy(),
        "parameters": forward.shape[1],
    })


def training_dynamics(model: ToyTransformer, length: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per letter, the forward/reverse gradient alignment and the mean ground-truth probability.

    The loss of a direction is the mean over its placements of −log p(target | query);
    its gradient covers every trainable parameter. Members 0…25 of a replicated stack
    take letter ℓ's forward queries, members 26…51 its reverse queries.
    """
    device = _device(model)
    batches = [queries(model.cfg, length, direction) for direction in DIRECTIONS]
    tokens = torch.cat([b.tokens for b in batches]).to(device)                       # [52, P, T]
    read = torch.cat([b.read_pos.expand(N_LETTERS, -1) for b in batches]).to(device)  # [52, P]
    targets = torch.cat([b.targets for b in batches]).to(device)                      # [52]
    members, placements, seq_len = tokens.shape
    stack = replicated(model, members)
    probability = torch.zeros(members, dtype=torch.float64)
    for columns in _chunks(placements, TOKENS_PER_PASS // (members * seq_len)):
        logits = stack(tokens[:, columns])                                            # [52, n, T, V]
        n = logits.shape[1]
        at_read = logits.gather(2, read[:, columns, None, None].expand(-1, -1, 1, logits.shape[-1]))
        log_probs = at_read.squeeze(2).log_softmax(-1).gather(-1, targets[:, None, None].expand(-1, n, 1))
        (-log_probs.sum() / placements).backward()
        probability += log_probs.detach().squeeze(-1).double().exp().sum(1).cpu()
    grads = torch.cat([p.grad.flatten(1) for p in stack.parameters()], dim=1)     # [52, parameters]
    alignment = gradient_alignment(grads[:N_LETTERS], grads[N_LETTERS:]).assign(letter=list(LOWER))
    probabilities = pd.DataFrame({
        "letter": list(LOWER) * len(DIRECTIONS),
        "direction": np.repeat(DIRECTIONS, N_LETTERS),
        "target": np.repeat([b.target_case for b in batches], N_LETTERS),
        "placements": placements,
        "probability": (probability / placements).numpy(),
    })
    return alignment, probabilities


# ---------------------------------------------------------------- reverse prompt, position by position
@torch.no_grad()
def reverse_positions(model: ToyTransformer, length: int) -> pd.DataFrame:
    """For the reverse prompt of every letter, the probability of its lowercase at each position
    1 … L−1 and the highest probability of any other token except the pad (App. D.4, Figure 11).

    Masked diffusion reads [B, [M], …, [M]] at every masked position; next-token reads
    p(x_i | x_<i) with x_<i = [B, pad, …] (the pads the data puts around a pair).
    """
    device = _device(model)
    letters = torch.arange(N_LETTERS, device=device)
    correct = lower_id(0) + letters
    positions = torch.arange(1, length, device=device)
    if model.cfg.reads_mask:
        tokens = torch.full((N_LETTERS, length), MASK_ID, dtype=torch.long, device=device)
        read = positions
    else:
        tokens = torch.full((N_LETTERS, length - 1), PAD_ID, dtype=torch.long, device=device)
        read = positions - 1
    tokens[:, 0] = upper_id(0) + letters
    probs = model(tokens[None])[0, :, read].softmax(-1)                        # [letters, L−1, V]
    prob_correct = probs.gather(-1, correct[:, None, None].expand(-1, len(read), 1)).squeeze(-1)
    wrong = probs.scatter(-1, correct[:, None, None].expand(-1, len(read), 1), 0.0)
    wrong[..., PAD_ID] = 0.0
    prob_best_wrong, best_wrong = wrong.max(-1)
    return pd.DataFrame({
        "letter": np.repeat(list(LOWER), len(read)),
        "position": positions.repeat(N_LETTERS).cpu().numpy(),
        "prob_correct": prob_correct.double().flatten().cpu().numpy(),
        "prob_best_wrong": prob_best_wrong.double().flatten().cpu().numpy(),
        "best_wrong_token": np.array(VOCAB)[best_wrong.flatten().cpu().numpy()],
    })


# ---------------------------------------------------------------- what the workflow runs
# measurement: (probe tables it writes, whether it reads every snapshot or the final checkpoint)
MEASUREMENTS = {
    "attention": (("attention",), "snapshots"),
    "training_dynamics": (("gradient_alignment", "query_probability"), "snapshots"),
    "reverse_positions": (("reverse_positions",), "final"),
}


def measure(measurement: str, model: ToyTransformer, length: int) -> dict[str, pd.DataFrame]:
    """The probe tables of one ``MEASUREMENTS`` entry for one model, by probe name."""
    if measurement == "attention":
        frames = (attention_probe(model, length),)
    elif measurement == "training_dynamics":
        frames = training_dynamics(model, length)
    elif measurement == "reverse_positions":
        frames = (reverse_positions(model, length),)
    else:
        raise ValueError(f"measurement {measurement!r}; expected one of {sorted(MEASUREMENTS)}")
    return dict(zip(MEASUREMENTS[measurement][0], frames))
