"""The two fine-tuning objectives (App. C), one loss value per example.

Both return per-example losses so that every example weighs the same whatever the batch
composition, and so that a batch split over several processes sums back to the same mean.

Masked diffusion (LLaDA's SFT objective): the prompt is never masked; each answer token is masked
with probability t, one t ~ U(0, 1) per example; the loss is the cross-entropy on the masked
tokens weighted by 1/t and divided by the answer length (EOS padding included). As in LLaDA, t
is drawn from [eps, 1] (``min_mask_rate``) so 1/t stays bounded.

Next token (ARMs): the mean cross-entropy over the answer tokens (completion + EOS), each
predicted from everything before it; with ``prompt_in_loss`` the prompt tokens after the first
are predicted too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def draw_masking_noise(examples: int, width: int, min_mask_rate: float,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's noise, drawn per example (not per batch) on the CPU: each example's mask rate
    t in [min_mask_rate, 1] and a uniform draw per position. So an example gets the same masks
    whatever batch or process it lands in, and on any device."""
    mask_rate = min_mask_rate + (1 - min_mask_rate) * torch.rand(examples, generator=generator)
    return mask_rate, torch.rand(examples, width, generator=generator)


def mask_answers(input_ids: torch.Tensor, answer_mask: torch.Tensor, mask_token_id: int,
                 mask_rate: torch.Tensor, draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy ids, which tokens are masked): answer token j of example b is masked iff
    ``draws[b, j] < mask_rate[b]``; prompt and padding tokens never are."""
    masked = (draws[:, : input_ids.shape[1]].to(input_ids.device) < mask_rate.to(input_ids.device)[:, None]) & answer_mask
    return input_ids.masked_fill(masked, mask_token_id), masked


def masked_diffusion_loss(logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor,
                          mask_rate: torch.Tensor, answer_mask: torch.Tensor) -> torch.Tensor:
    """Per example: Σ_masked CE / t, divided by the answer length. ``logits[:, i]`` predicts token i."""
    token_loss = torch.zeros(targets.shape, dtype=torch.float32, device=targets.device)
    token_loss[masked] = F.cross_entropy(logits[masked].float(), targets[masked], reduction="none")
    answer_length = answer_mask.sum(dim=1)
    return token_loss.sum(dim=1) / mask_rate.to(token_loss.device) / answer_length


def next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Per example: mean CE over the tokens in ``loss_mask``. ``logits[:, i]`` predicts token i + 1."""
    predicted = loss_mask[:, 1:]
    token_loss = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none")
    return (token_loss * predicted).sum(dim=1) / predicted.sum(dim=1)


def arm_loss_mask(padding_mask: torch.Tensor, answer_mask: torch.Tensor, prompt_in_loss: bool) -> torch.Tensor:
    """Which tokens the ARM is trained to predict: the answer, or every non-padding token."""
    return padding_mask.bool() if prompt_in_loss else answer_mask
