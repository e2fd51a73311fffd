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

The diffusion samplers take ``logits_fn(input_ids, padding_mask)`` (``Backbone.logits``) with
``logits[:, i]`` predicting token i, and left-padded prompts; every row has the same number of
masks at every step, so one ``topk`` serves the whole batch.
"""
from __future__ import annotations

from typing import Callable

import torch

LogitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
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
        block_end = block_length * (block + 1)          # in answer coordinates
        for count in transfer_schedule(block_length, steps // blocks):
            answer = x[:, start:]
            logits = _answer_logits(logits_fn, x, padding_mask, start, mask_token_id)
            top_logit, candidate = logits.max(dim=-1)
            confidence = torch.exp(top_logit - torch.logsumexp(logits, dim=-1))  # probability of the argmax
            confidence = confidence.masked_fill(answer != mask_token_id, -torch.inf)
            confidence[:, block_end:] = -torch.inf      # later blocks wait their turn
            _commit(answer, candidate, confidence, count)
    return x[:, start:]


@torch.no_grad()
def dream_generate(logits_fn: LogitsFn, prompt_ids: torch.Tensor, padding_mask: torch.Tensor, *,
                   mask_token_id: int, gen_length: int, steps: int, alg: str, eps: float) -> torch.Tensor:
    """(B, gen_length) generated tokens, Dream's schedule, temperature 0."""
    if alg not in DREAM_ALGS:
        raise ValueError(f"Dream alg {alg!r}; expected one of {DREAM_ALGS}")
    x, padding_mask, start = _with_masked_answer(prompt_ids, padding_mask, mask_token_id, gen_length)
    timesteps = torch.linspace(1, eps, steps + 1)
    for step in range(steps):
        answer = x[:, start:]
        still_masked = answer == mask_token_id
        log_probs = torch.log_softmax(_answer_logits(logits_fn, x, padding_mask, start, mask_token_id), dim=-1)
        top_log_prob, candidate = log_probs.max(dim=-1)
        if alg == "entropy":
            confidence = (log_probs.exp() * log_probs).sum(dim=-1)     # negative entropy
        else:
            confidence = top_log_prob.exp()
        remaining = int(still_masked[0].sum())
        t, s = timesteps[step], timesteps[step + 1]
        count = int(remaining * (1 - s / t)) if step < steps - 1 else remaining
        _commit(answer, candidate, confidence.masked_fill(~still_masked, -torch.inf), count)
    return x[:, start:]


def _with_masked_answer(prompt_ids, padding_mask, mask_token_id, gen_length):
    batch, start = prompt_ids.shape
    masks = torch.full((batch, gen_length), mask_token_id, dtype=prompt_ids.dtype, device=prompt_ids.device)
    x = torch.cat([prompt_ids, masks], dim=1)
    return x, torch.cat([padding_mask, torch.ones_like(masks)], dim=1), start


def _answer_logits(logits_fn, x, padding_mask, start, mask_token_id) -> torch.Tensor:
    """Logits of the answer positions, in float32; the mask token is never a candidate, so a
    committed position always holds a real token (a trained model never predicts it anyway)."""
    logits = logits_fn(x, padding_mask)[:, start:].float()
    logits[..., mask_token_id] = -torch.inf
    return logits


def _commit(answer: torch.Tensor, candidate: torch.Tensor, confidence: torch.Tensor, count: int) -> None:
    """Write the ``count`` most confident candidates of each row into ``answer`` (a view of x)."""
    if count:
        chosen = confidence.topk(count, dim=1).indices
        answer.scatter_(1, chosen, candidate.gather(1, chosen))
