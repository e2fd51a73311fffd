"""Forward and reverse exact match of every checkpoint of a run (paper §3, App. C).

A generated answer is the new tokens up to the first stop token (EOS, padding, Dream/LLaMA's
end-of-turn tokens), decoded without special tokens. It is correct when, after lowercasing and
stripping (``normalize_answer``, which also collapses inner whitespace), it equals one of the
query's accepted answers (both parents of a child, every paraphrase of a description).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from revcurse.data.relational import normalize_answer
from revcurse.llm.batches import query_batch
from revcurse.llm.model.backbone import Backbone
from revcurse.llm.samplers import dream_generate, greedy_generate, llada_generate


@dataclass(frozen=True)
class DecodingSettings:
    max_new_tokens: int       # ARM: greedy limit; MDM: generation length
    batch_size: int
    llada_steps: int
    llada_block_length: int
    dream_steps: int
    dream_alg: str
    dream_eps: float

    @classmethod
    def from_config(cls, eval_config: dict) -> "DecodingSettings":
        return cls(
            max_new_tokens=eval_config["max_new_tokens"],
            batch_size=eval_config["batch_size"],
            llada_steps=eval_config["llada"]["steps"],
            llada_block_length=eval_config["llada"]["block_length"],
            dream_steps=eval_config["dream"]["steps"],
            dream_alg=eval_config["dream"]["alg"],
            dream_eps=eval_config["dream"]["eps"],
        )


def is_exact_match(prediction: str, accepted_answers) -> bool:
    return normalize_answer(prediction) in {normalize_answer(a) for a in accepted_answers}


def answer_text(tokenizer, new_tokens: list[int], stop_token_ids: frozenset[int]) -> str:
    """The generated answer: tokens before the first stop token, decoded and stripped."""
    end = next((i for i, token in enumerate(new_tokens) if token in stop_token_ids), len(new_tokens))
    return tokenizer.decode(new_tokens[:end], skip_special_tokens=True).strip()


def generate(backbone: Backbone, prompt_ids: torch.Tensor, padding_mask: torch.Tensor,
             settings: DecodingSettings) -> torch.Tensor:
    """New tokens for one left-padded batch, with the sampler of the backbone's model."""
    sampler = backbone.spec.sampler
    if sampler == "greedy":
        return greedy_generate(backbone.model, prompt_ids, padding_mask, max_new_tokens=settings.max_new_tokens,
                               pad_token_id=backbone.pad_token_id, stop_token_ids=backbone.stop_token_ids)
    common = dict(mask_token_id=backbone.mask_token_id, gen_length=settings.max_new_tokens)
    if sampler == "llada":
        return llada_generate(backbone.logits, prompt_ids, padding_mask, steps=settings.llada_steps,
                              block_length=settings.llada_block_length, **common)
    return dream_generate(backbone.logits, prompt_ids, padding_mask, steps=settings.dream_steps,
                          alg=settings.dream_alg, eps=settings.dream_eps, **common)


def predict(backbone: Backbone, prompts: list[str], settings: DecodingSettings) -> list[str]:
    """One generated answer per prompt, in order. Prompts are batched by length to limit padding."""
    encoded = [backbone.prompt_format.prompt_ids(p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    device = next(backbone.model.parameters()).device
    answers: dict[int, str] = {}
    backbone.model.eval()
    for start in range(0, len(order), settings.batch_size):
        rows = order[start : start + settings.batch_size]
        prompt_ids, padding_mask = query_batch([encoded[i] for i in rows], backbone.pad_token_id)
        new_tokens = generate(backbone, prompt_ids.to(device), padding_mask.to(device), settings)
        for row, tokens in zip(rows, new_tokens.tolist()):
            answers[row] = answer_text(backbone.tokenizer, tokens, backbone.stop_token_ids)
    return [answers[i] for i in range(len(prompts))]
