"""Tokenised examples and the padded batches the objectives and samplers take.

A training example is a prompt and its answer, tokenised separately so the answer starts exactly
where generation starts at evaluation (training text = prompt + " " + completion, as in
docs/datasets.md). The answer is the completion followed by EOS: the ARMs learn to stop (App. C:
pad = EOS), and the MDMs' answer is padded with EOS up to the generation length, the region their
sampler fills (LLaDA's SFT recipe: trailing EOS are part of the answer).

With ``chat_template`` (a per-model option, docs/llm.md) every prompt is the user turn of the
tokenizer's chat template followed by the opening of the assistant turn, and the answer starts
the assistant turn without a leading space; without it (the default) the prompt is the raw text
with the tokenizer's own special tokens (e.g. BOS) and the answer is ``" " + completion``.
``PromptFormat`` holds both conventions, so training, evaluation and the probes tokenise alike.

Training batches are right-padded; query batches are left-padded so every row's generation starts
at the same column. Left padding is masked out of attention (checked when an MDM is loaded:
``backbone.check_padding_is_ignored``); positions follow each model's convention (``Backbone.logits``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

_SENTINEL = "\u2063revcurse\u2063"   # content no template or tokenizer alters


@dataclass(frozen=True)
class PromptFormat:
    """How one model's prompts and answers are tokenised: ``prefix`` and ``suffix`` (token ids)
    around the prompt's own tokens, and the text put before a completion."""

    tokenizer: object
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    answer_prefix: str

    @classmethod
    def of(cls, tokenizer, chat_template: bool = False) -> "PromptFormat":
        if chat_template:
            if not getattr(tokenizer, "chat_template", None):
                raise ValueError("the tokenizer has no chat template (tokenizer_config.json: chat_template)")
            text = tokenizer.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False,
                                                 add_generation_prompt=True)
            before, after = text.split(_SENTINEL)
            return cls(tokenizer, _ids(tokenizer, before), _ids(tokenizer, after), "")
        # The tokenizer's own special tokens around any text (e.g. BOS), found around a sentinel.
        content, full = _ids(tokenizer, _SENTINEL), tuple(tokenizer(_SENTINEL)["input_ids"])
        at = next(i for i in range(len(full) - len(content) + 1) if full[i: i + len(content)] == content)
        return cls(tokenizer, full[:at], full[at + len(content):], " ")

    def wrap(self, content: list[int] | tuple[int, ...]) -> tuple[int, ...]:
        return self.prefix + tuple(content) + self.suffix

    def text_ids(self, text: str) -> tuple[int, ...]:
        """``text`` alone, without special tokens."""
        return _ids(self.tokenizer, text)

    def prompt_ids(self, prompt: str) -> tuple[int, ...]:
        return self.wrap(self.text_ids(prompt))

    def answer_ids(self, completion: str) -> tuple[int, ...]:
        """A completion as the model generates it after the prompt (also: an entity as an answer)."""
        return self.text_ids(self.answer_prefix + completion)


def _ids(tokenizer, text: str) -> tuple[int, ...]:
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else ()


@dataclass(frozen=True)
class Example:
    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]


def encode_example(prompt_format: PromptFormat, prompt: str, completion: str, eos_token_id: int,
                   answer_length: int | None) -> Example:
    """``answer_length`` (MDMs): fill the answer with EOS up to this many tokens, the generation
    length; ``None`` (ARMs): the completion and one EOS."""
    prompt_ids, completion_ids = prompt_format.prompt_ids(prompt), prompt_format.answer_ids(completion)
    if answer_length is None:
        return Example(prompt_ids, completion_ids + (eos_token_id,))
    if len(completion_ids) + 1 > answer_length:
        raise ValueError(
            f"completion {completion!r} is {len(completion_ids)} tokens + EOS, longer than the "
            f"{answer_length} tokens the MDM generates (llm.eval.max_new_tokens)"
        )
    return Example(prompt_ids, completion_ids + (eos_token_id,) * (answer_length - len(completion_ids)))


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
