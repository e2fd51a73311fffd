"""Tokenised examples and the padded batches the objectives and samplers take.

A training example is a prompt and its answer, tokenised separately so the answer starts exactly
where generation starts at evaluation (training text = prompt + " " + completion, as in
docs/datasets.md). The answer is the completion followed by EOS: the ARMs learn to stop (App. C:
pad = EOS), and the MDMs' answer is padded with EOS up to the generation length, the region their
sampler fills (LLaDA's SFT recipe: trailing EOS are part of the answer).

Training batches are right-padded; query batches are left-padded so every row's generation starts
at the same column. Both models use RoPE, so a row's left padding (masked out) shifts absolute
positions only and changes no attention score.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Example:
    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]


def encode_prompt(tokenizer, prompt: str) -> tuple[int, ...]:
    """The prompt as the model sees it, with the tokenizer's own special tokens (e.g. BOS)."""
    return tuple(tokenizer(prompt)["input_ids"])


def encode_example(tokenizer, prompt: str, completion: str, eos_token_id: int, answer_length: int | None) -> Example:
    """``answer_length`` (MDMs): fill the answer with EOS up to this many tokens, the generation
    length; ``None`` (ARMs): the completion and one EOS."""
    completion_ids = tuple(tokenizer(" " + completion, add_special_tokens=False)["input_ids"])
    if answer_length is None:
        return Example(encode_prompt(tokenizer, prompt), completion_ids + (eos_token_id,))
    if len(completion_ids) + 1 > answer_length:
        raise ValueError(
            f"completion {completion!r} is {len(completion_ids)} tokens + EOS, longer than the "
            f"{answer_length} tokens the MDM generates (llm.eval.max_new_tokens)"
        )
    return Example(encode_prompt(tokenizer, prompt), completion_ids + (eos_token_id,) * (answer_length - len(completion_ids)))


@dataclass
class TrainingBatch:
    input_ids: torch.Tensor      # (B, L) prompt, answer, right padding
    padding_mask: torch.Tensor   # (B, L) 1 on prompt and answer tokens
    answer_mask: torch.Tensor    # (B, L) True on answer tokens

    def to(self, device) -> "TrainingBatch":
        return TrainingBatch(*(t.to(device) for t in (self.input_ids, self.padding_mask, self.answer_mask)))


def training_batch(examples: list[Example], pad_token_id: int) -> TrainingBatch:
    width = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    padding_mask = torch.zeros((len(examples), width), dtype=torch.long)
    answer_mask = torch.zeros((len(examples), width), dtype=torch.bool)
    for row, example in enumerate(examples):
        prompt, answer = len(example.prompt_ids), len(example.answer_ids)
        input_ids[row, : prompt + answer] = torch.tensor(example.prompt_ids + example.answer_ids)
        padding_mask[row, : prompt + answer] = 1
        answer_mask[row, prompt : prompt + answer] = True
    return TrainingBatch(input_ids, padding_mask, answer_mask)


def query_batch(prompts: list[tuple[int, ...]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and their padding mask."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    padding_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt):] = torch.tensor(prompt)
        padding_mask[row, width - len(prompt):] = 1
    return input_ids, padding_mask
