"""The stand-ins' tokenizer: byte-level BPE trained locally with ``tokenizers`` on the datasets' text.

Byte-level, like the real models' tokenizers, so every string (any name, any generation) has an
encoding and decodes back to itself. It is trained on every prompt and completion of every split:
a tokenizer learns spellings, not which entity goes with which, so seeing the evaluation queries'
words leaks no fact. Only ``tokenizer.json`` is written and the transformers wrapper is built at
load time, because the wrapper's saved config differs between the transformers releases the
project runs on (docs/llm.md).
"""
from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from revcurse.data.relational import load_dataset

EOS_TOKEN = "<|endoftext|>"   # also the padding token, as for the ARMs (App. C)
MASK_TOKEN = "<|mask|>"


def dataset_texts(manifests: list[Path]) -> list[str]:
    """Prompts and completions (with the space that joins them) of every split, in file order."""
    texts = []
    for manifest in manifests:
        dataset, _ = load_dataset(manifest)
        for direction in dataset.directions:
            for split in ("train", "eval_forward", "eval_reverse"):
                for row in direction.split(split):
                    texts += [row.prompt, " " + row.completion]
    return texts


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, MASK_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def load_standin_tokenizer(path: Path):
    """The transformers wrapper of a saved ``tokenizer.json``, with EOS = pad and the mask token."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), eos_token=EOS_TOKEN, pad_token=EOS_TOKEN, mask_token=MASK_TOKEN
    )
