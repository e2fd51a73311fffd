"""Small shared pieces of the large-scale tests: the registry of config.yaml, a tiny tokenizer,
tiny stand-ins, and a module tree with the real models' module names."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import yaml

import revcurse.llm.finetune as finetune_module
from revcurse.llm.registry import ModelSpec
from revcurse.llm.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
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


def write_tiny_tokenizer(path: Path) -> Path:
    train_tokenizer(TEXTS, vocab_size=320).save(str(path))
    return path


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
