"""Small shared pieces of the large-scale tests: the registry of config.yaml, a tiny tokenizer,
tiny stand-ins, and a module tree with the real models' module names."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import yaml

import revcurse.llm.finetune as finetune_module
from revcurse.llm.model.backbone import Backbone, load_backbone, with_seeded_lora
from revcurse.llm.model.registry import ModelSpec
from revcurse.llm.model.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Anna Bell's child is", " Carl Dorn", "Carl Dorn's parent is", " Anna Bell",
         "Erik Falk's child is", " Gina Holm", "Gina Holm's parent is", " Erik Falk"] * 5


def registry_entry(model: str) -> dict:
    """An entry of llm.models in config.yaml, as the workflow reads it."""
    return yaml.safe_load((ROOT / "config.yaml").read_text())["llm"]["models"][model]


def tiny_standin(model: str, **overrides) -> ModelSpec:
    """A registry stand-in shrunk to a few thousand parameters."""
    entry = registry_entry(model)
    entry["standin"] = {**entry["standin"], "hidden_size": 32, "layers": 2, "heads": 2, "intermediate_size": 64}
    return ModelSpec.from_config(model, {**entry, **overrides})


def record_revision(directory: Path, commit: str) -> Path:
    """Mark a checkpoint directory as `hf download --local-dir` does: the commit of each file."""
    metadata = directory / ".cache" / "huggingface" / "download" / "config.json.metadata"
    metadata.parent.mkdir(parents=True, exist_ok=True)
    metadata.write_text(f"{commit}\n\"etag\"\n1700000000.0\n")
    return directory


def write_tiny_tokenizer(path: Path) -> Path:
    train_tokenizer(TEXTS, vocab_size=320).save(str(path))
    return path


COMMIT = "0123456789abcdef0123456789abcdef01234567"


def local_checkpoint(directory: Path, chat_template: str | None = None) -> Path:
    """A real-model checkpoint directory as a user has it after `hf download --local-dir` (revision
    ``COMMIT``): a tiny Llama's config and weights, and a tokenizer without pad token (as LLaMA-3.1)."""
    from transformers import PreTrainedTokenizerFast

    from revcurse.llm.model.standins import build_standin
    from revcurse.llm.model.tokenizer import EOS_TOKEN

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(write_tiny_tokenizer(directory / "bpe.json")),
                                        eos_token=EOS_TOKEN)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    model = build_standin(tiny_standin("standin_llama"), len(tokenizer), tokenizer.eos_token_id, seed=0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return record_revision(directory, COMMIT)


def real_llama(directory: Path, **overrides) -> ModelSpec:
    """The registry's LLaMA entry pointed at ``directory`` (fp32, revision ``COMMIT``)."""
    return ModelSpec.from_config("llama", {**registry_entry("llama"), "weights": str(directory), "precision": "fp32",
                                           "revision": COMMIT, **overrides})


def module_tree(linear_names: list[str]) -> torch.nn.Module:
    """A module whose nn.Linear leaves have exactly these dotted names (the real models' naming,
    without their weights or code)."""
    root = torch.nn.Module()
    for name in linear_names:
        *parents, leaf = name.split(".")
        node = root
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, torch.nn.Module())
            node = getattr(node, part)
        node.add_module(leaf, torch.nn.Linear(4, 4, bias=False))
    return root


def interrupt_at_batch(monkeypatch, batch: int, train) -> None:
    """Run ``train()`` as a job killed at its ``batch``-th training batch (1-based), then restore
    the training loss so the next run resumes normally."""
    real_losses, calls = finetune_module.example_losses, itertools.count(1)

    def losses(*args):
        if next(calls) == batch:
            raise KeyboardInterrupt
        return real_losses(*args)
    monkeypatch.setattr(finetune_module, "example_losses", losses)
    with pytest.raises(KeyboardInterrupt):
        train()
    monkeypatch.setattr(finetune_module, "example_losses", real_losses)


def load_adapted_backbone(spec: ModelSpec, lora: dict, device: torch.device, seed: int,
                          tokenizer_path: Path | None = None) -> Backbone:
    """The backbone with fresh LoRA adapters (seeded), as fine-tuning starts and evaluation rebuilds it."""
    return with_seeded_lora(load_backbone(spec, device, seed, tokenizer_path), lora, seed)
