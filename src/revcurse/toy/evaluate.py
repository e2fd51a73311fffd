"""Generation from toy models with top-k sampling (paper App. D.3), and the toy success rate.

* ARM: the prompt token, then L−1 tokens left to right, each drawn from the top-k of
  the next-token distribution.
* MDM (and every model trained to fill in [M], e.g. fixed-rate masking in the ablation
  grid): [prompt, M, …, M]; L−1 steps, each unmasks one position and fills it with a
  draw from the top-k of that position's distribution. Which position is the
  ``unmask_order`` choice (the paper leaves it open, see docs/toy.md):
  ``random`` (a uniformly random order: the reverse of the forward masking process,
  our default), ``confidence`` (the position whose drawn token is most probable, as
  LLaDA's low-confidence remasking), ``left_to_right``, or ``parallel`` (every position
  drawn at once from one forward pass of [prompt, M, …, M]: no position sees another's draw).

A forward query succeeds when the prompt's uppercase appears anywhere in the
generated positions; a reverse query when its lowercase does. Once it has appeared the
query's outcome is settled, so success counting stops computing that row (``stop_tokens``):
the evaluation's cost falls with its success rate, and every other row draws exactly what
it would have drawn (the draws of all rows are still made, see ``generate``).
"""
from __future__ import annotations

import logging

import pandas as pd
import torch

from revcurse.core.config import derive_seed
from revcurse.core.progress import Progress
from revcurse.data.toy import LOWER, MASK_ID, N_LETTERS, lower_id, upper_id
from revcurse.toy.model import ToyTransformer
from revcurse.toy.train import every_and_last

log = logging.getLogger("revcurse.toy")

UNMASK_ORDERS = ("random", "confidence", "left_to_right", "parallel")
DIRECTIONS = ("forward", "reverse")


def top_k_sample(logits: torch.Tensor, k: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row of ``logits`` [N, V] from its k most probable; returns (token, its probability)."""
    top_logits, top_ids = logits.float().topk(k, dim=-1)
    probs = top_logits.softmax(-1)
    choice = torch.multinomial(probs, 1, generator=rng)
    return top_ids.gather(-1, choice).squeeze(-1), probs.gather(-1, choice).squeeze(-1)


@torch.no_grad()
def generate(model: ToyTransformer, prompts: torch.Tensor, length: int, top_k: int,
             rng: torch.Generator, unmask_order: str = "random",
             stop_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Complete each first token in ``prompts`` [N] to a length-``length`` sequence [N, length].

    ``model`` is a single model (ensemble size 1) in eval mode. With ``stop_tokens`` [N], an
    MDM row stops once its stop token is among its generated tokens; its other positions stay
    [M]. Stopped rows skip the model but still take their draws (from zero logits), so the
    generator advances as without stopping and every running row gets the same draws.
    """
    if model.ensemble != 1:
        raise ValueError("generate() takes a single model (ensemble size 1)")
    n, device = len(prompts), prompts.device
    if model.cfg.objective == "next_token":
        seq = prompts[:, None]
        for _ in range(length - 1):
            token, _ = top_k_sample(model(seq[None])[0, :, -1], top_k, rng)
            seq = torch.cat([seq, token[:, None]], dim=1)
        return seq

    if unmask_order not in UNMASK_ORDERS:
        raise ValueError(f"unmask_order={unmask_order!r}; expected one of {UNMASK_ORDERS}")
    seq = torch.full((n, length), MASK_ID, dtype=torch.long, device=device)
    seq[:, 0] = prompts
    rows = torch.arange(n, device=device)
    if unmask_order == "parallel":
        logits = model(seq[None])[0, :, 1:]                            # [N, L−1, V]
        token, _ = top_k_sample(logits.flatten(0, 1), top_k, rng)
        seq[:, 1:] = token.view(n, length - 1)
        return seq
    if unmask_order == "random":
        order = 1 + torch.rand(n, length - 1, generator=rng, device=device).argsort(dim=1)
    running = torch.ones(n, dtype=torch.bool, device=device)
    for step in range(length - 1):
        if running.all():                                              # no row has stopped: no gather
            logits = model(seq[None])[0].float()                       # [N, L, V]
        else:
            logits = torch.zeros(n, length, model.cfg.vocab_size, device=device)
            live = running.nonzero().squeeze(1)
            if len(live):
                logits[live] = model(seq[live][None])[0].float()
        if unmask_order == "confidence":
            token, prob = top_k_sample(logits.flatten(0, 1), top_k, rng)
            prob = prob.view(n, length).masked_fill(seq != MASK_ID, -1.0)
            position = prob.argmax(dim=1)
            token = token.view(n, length)[rows, position]
        else:
            position = order[:, step] if unmask_order == "random" else torch.full_like(rows, step + 1)
            token, _ = top_k_sample(logits[rows, position], top_k, rng)
        seq[rows[running], position[running]] = token[running]
        if stop_tokens is not None:
            running &= ~(seq[:, 1:] == stop_tokens[:, None]).any(dim=1)
    return seq


def query_tokens(direction: str, letters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt token, token whose appearance counts as success) for each letter index."""
    if direction == "forward":
        return lower_id(0) + letters, upper_id(0) + letters
    if direction == "reverse":
        return upper_id(0) + letters, lower_id(0) + letters
    raise ValueError(f"direction={direction!r}; expected one of {DIRECTIONS}")


@torch.no_grad()
def success_counts(model: ToyTransformer, length: int, direction: str, samples_per_letter: int,
                   top_k: int, unmask_order: str, rng: torch.Generator, batch_size: int,
                   stop_at_target: bool = True) -> pd.DataFrame:
    """Per letter: how many of ``samples_per_letter`` generations contain the target token.

    ``stop_at_target``: stop decoding a query once its target has appeared (same counts, less work;
    off only to measure what it saves, benchmarks/toy_speed.py).
    """
    device = next(model.parameters()).device
    letters = torch.arange(N_LETTERS, device=device).repeat_interleave(samples_per_letter)
    prompts, targets = query_tokens(direction, letters)
    hits = []
    for start in range(0, len(letters), batch_size):
        sl = slice(start, start + batch_size)
        seq = generate(model, prompts[sl], length, top_k, rng, unmask_order,
                       stop_tokens=targets[sl] if stop_at_target else None)
        hits.append((seq[:, 1:] == targets[sl, None]).any(dim=1))
    hit = torch.cat(hits).view(N_LETTERS, samples_per_letter)
    return pd.DataFrame({
        "direction": direction,
        "letter": list(LOWER),
        "samples": samples_per_letter,
        "successes": hit.sum(1).cpu().numpy(),
    })


@torch.no_grad()
def accuracy_over_training(snapshots: dict[str, list[tuple[int, ToyTransformer]]], length: int, seed: int,
                           every: int, samples_per_letter: int, top_k: int, unmask_order: str,
                           curve_unmask_orders: list[str], final_unmask_orders: list[str],
                           batch_size: int) -> pd.DataFrame:
    """Success counts of every ``every``-th snapshot and the last, per weights kind ('ema'/'raw' → models).

    The curve uses ``unmask_order`` (decoded first), then each of ``curve_unmask_orders``; the last
    snapshot is also decoded with every order of ``final_unmask_orders`` (models that read [M] only).
    Every evaluation of one direction
    starts from the same generator seed, so two points of a curve differ by their weights,
    not by their sampling noise (common random numbers).
    """
    plan = []                      # (weights, step, model, unmask orders) of every evaluated snapshot
    for weights, models in snapshots.items():
        last = models[-1][0]
        for step, model in every_and_last(models, every):
            if not model.cfg.reads_mask:
                orders = ["n/a"]
            else:
                wanted = [unmask_order, *curve_unmask_orders, *(final_unmask_orders if step == last else [])]
                orders = list(dict.fromkeys(wanted))       # each order once, the curve's first
            plan.append((weights, step, model, orders))
    progress = Progress(sum(len(orders) for *_, orders in plan))
    frames = []
    for weights, step, model, orders in plan:
        device = next(model.parameters()).device
        for order in orders:
            for direction in DIRECTIONS:
                rng = torch.Generator(device=device).manual_seed(
                    derive_seed(seed, "toy-eval-over-training", direction))
                counts = success_counts(model, length, direction, samples_per_letter, top_k,
                                        "random" if order == "n/a" else order, rng, batch_size)
                frames.append(counts.assign(step=step, weights=weights, unmask_order=order))
            done = len(frames) // len(DIRECTIONS)
            log.info("%s weights, step %d, %s order; evaluations %s", weights, step, order, progress.line(done))
    return pd.concat(frames, ignore_index=True)
