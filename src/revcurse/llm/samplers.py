"""Deterministic decoding (App. C: temperature 0, at most 32 new tokens), batched.

- ARMs: greedy decoding with transformers' ``generate`` (KV cache), stopping at EOS.
- LLaDA: its low-confidence remasking sampler. The generation region (``gen_length`` masks after
  the prompt) is split into blocks filled left to right; within a block, each of the block's
  steps predicts every masked position, and commits the most confident predictions, as many as
  the linear schedule says (the block's masks split evenly over its steps, the remainder to the
  first steps). Committed tokens are never remasked.
- Dream: its sampler (``alg`` "entropy", the Instruct default, or "maskgit_plus"): one block, time
  running from 1 to ``eps`` in ``steps`` steps; a step commits ⌊n·(1 − s/t)⌋ of the n masked
  positions (all at the last step), the ones with the lowest entropy (or highest probability).
  The shift of Dream's logits is applied by the backbone, so both the loss and this sampler see
  it (``backbone.py``).

The diffusion samplers take ``logits_fn(input_ids, padding_mask, positions)`` (``Backbone.logits``):
the logits of the (B, m) ``positions`` only, ``logits[:, j]`` predicting token ``positions[:, j]``,
and left-padded prompts. A step needs the predictions at the still-masked positions it may commit
and nothing else, so that is all it asks for: the LM head runs there alone and the confidences are
computed over those candidates, not the whole answer. Every row has the same number of masks at
every step, so the candidates are a (B, m) matrix and one ``topk`` serves the whole batch; a step
the schedule gives no token changes nothing and is skipped.
"""
from __future__ import annotations

from typing import Callable

import torch

LogitsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
DREAM_ALGS = ("entropy", "maskgit_plus")


@torch.no_grad()
def greedy_generate(model, prompt_ids: torch.Tensor, padding_mask: torch.Tensor, *, max_new_tokens: int,
                    pad_token_id: int, stop_token_ids: frozenset[int]) -> torch.Tensor:
    """(B, ≤ max_new_tokens) new tokens; rows that stopped early are filled with padding."""
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad_token_id,
                              eos_token_id=sorted(stop_token_ids))
    out = model.generate(input_ids=prompt_ids, attention_mask=padding_mask, generation_config=config)
    return out[:, prompt_ids.shape[1]:]


def transfer_schedule(masked: int, steps: int) -> list[int]:
    """Tokens committed at each of ``steps`` steps: ``masked`` split evenly, remainder first."""
    base, remainder = divmod(masked, steps)
    return [base + (step < remainder) for step in range(steps)]


@torch.no_grad()
def llada_generate(logits_fn: LogitsFn, prompt_ids: torch.Tensor, padding_mask: torch.Tensor, *,
                   mask_token_id: int, gen_length: int, steps: int, block_length: int) -> torch.Tensor:
    """(B, gen_length) generated tokens, low-confidence remasking, temperature 0."""
    if gen_length % block_length:
        raise ValueError(f"gen_length {gen_length} is not a multiple of block_length {block_length}")
    blocks = gen_length // block_length
    if steps % blocks:
        raise ValueError(f"steps {steps} is not a multiple of the number of blocks {blocks}")
    x, padding_mask, start = _with_masked_answer(prompt_ids, padding_mask, mask_token_id, gen_length)
    for block in range(blocks):
        block_end = start + block_length * (block + 1)  # later blocks wait their turn
        for count in transfer_schedule(block_length, steps // blocks):
            if count == 0:
                continue
            positions = _masked_positions(x, start, block_end, mask_token_id)
            logits = _candidate_logits(logits_fn, x, padding_mask, positions, mask_token_id)
            top_logit, candidate = logits.max(dim=-1)
            confidence = torch.exp(top_logit - torch.logsumexp(logits, dim=-1))  # probability of the argmax
            _commit(x, positions, candidate, confidence, count)
    return x[:, start:]


@torch.no_grad()
def dream_generate(logits_fn: LogitsFn, prompt_ids: torch.Tensor, padding_mask: torch.Tensor, *,
                   mask_token_id: int, gen_length: int, steps: int, alg: str, eps: float) -> torch.Tensor:
    """(B, gen_length) generated tokens, Dream's schedule, temperature 0."""
    if alg not in DREAM_ALGS:
        raise ValueError(f"Dream alg {alg!r}; expected one of {DREAM_ALGS}")
    x, padding_mask, start = _with_masked_answer(prompt_ids, padding_mask, mask_token_id, gen_length)
    timesteps = torch.linspace(1, eps, steps + 1)
    remaining = gen_length
    for step in range(steps):
        t, s = timesteps[step], timesteps[step + 1]
        count = int(remaining * (1 - s / t)) if step < steps - 1 else remaining
        if count == 0:
            continue
        positions = _masked_positions(x, start, x.shape[1], mask_token_id)
        log_probs = torch.log_softmax(_candidate_logits(logits_fn, x, padding_mask, positions, mask_token_id), dim=-1)
        top_log_prob, candidate = log_probs.max(dim=-1)
        if alg == "entropy":
            # Negative entropy, with 0 · log 0 = 0 for the excluded mask token (as Dream's own
            # sampler, whose log(p + 1e-10) has the same effect); p · log p would be NaN there.
            confidence = -torch.special.entr(log_probs.exp()).sum(dim=-1)
        else:
            confidence = top_log_prob.exp()
        _commit(x, positions, candidate, confidence, count)
        remaining -= count
    return x[:, start:]


def _with_masked_answer(prompt_ids, padding_mask, mask_token_id, gen_length):
    batch, start = prompt_ids.shape
    masks = torch.full((batch, gen_length), mask_token_id, dtype=prompt_ids.dtype, device=prompt_ids.device)
    x = torch.cat([prompt_ids, masks], dim=1)
    return x, torch.cat([padding_mask, torch.ones_like(masks)], dim=1), start


def _masked_positions(x: torch.Tensor, start: int, end: int, mask_token_id: int) -> torch.Tensor:
    """(B, m) columns of the masks in ``x[:, start:end]``, ascending (m is the same in every row)."""
    masked = (x[:, start:end] == mask_token_id).nonzero()[:, 1]
    return masked.view(x.shape[0], -1) + start


def _candidate_logits(logits_fn, x, padding_mask, positions, mask_token_id) -> torch.Tensor:
    """Logits at ``positions``, in float32; the mask token is never a candidate, so a committed
    position always holds a real token (a trained model never predicts it anyway)."""
    logits = logits_fn(x, padding_mask, positions).float()
    logits[..., mask_token_id] = -torch.inf
    return logits


def _commit(x: torch.Tensor, positions: torch.Tensor, candidate: torch.Tensor, confidence: torch.Tensor,
            count: int) -> None:
    """Write the ``count`` most confident candidates of each row into ``x`` at their positions;
    of equally confident candidates the leftmost (``topk`` would pick any)."""
    chosen = confidence.sort(dim=1, descending=True, stable=True).indices[:, :count]
    x.scatter_(1, positions.gather(1, chosen), candidate.gather(1, chosen))
