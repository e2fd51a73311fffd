"""The model registry: ``config.yaml`` → ``llm.models``, and where each model's weights are.

A real model names its weights by a local directory or a Hugging Face hub id that must already
be in the local cache: nothing is ever downloaded. A stand-in has no weights; it is built from
its ``standin`` architecture (``standins.py``) and trained from scratch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SAMPLER_OF_KIND = {"arm": ("greedy",), "mdm": ("llada", "dream")}


class MissingWeightsError(ValueError):
    """A real model's weights are neither a local directory nor in the Hugging Face cache."""


@dataclass(frozen=True)
class ModelSpec:
    name: str                        # key under llm.models
    label: str                       # column title in the tables
    kind: str                        # mdm | arm
    weights: str | None              # local directory or hub id; None for a stand-in
    standin: dict | None             # architecture of a stand-in (standins.py); None for a real model
    remote_code: bool                # the checkpoint ships its own modeling code (LLaDA, Dream)
    mask_token_id: int | None        # MDMs; None: the stand-in tokenizer's mask token
    attention_mask: str              # how the model takes a bidirectional padding mask (backbone.py)
    logits_shift: bool               # Dream: logits[i] predict token i+1, as in its AR parent
    sampler: str                     # greedy | llada | dream
    lora_targets: tuple[str, ...]    # module names LoRA wraps (the attention projections)
    train_base: bool                 # also train the base weights (stand-ins, from scratch)
    learning_rates: dict[str, float] # per dataset, with a "default"
    dtype: str                       # fp32 | bf16 | fp16

    @classmethod
    def from_config(cls, name: str, entry: dict) -> "ModelSpec":
        key = f"llm.models.{name}"
        if (entry.get("weights") is None) == (entry.get("standin") is None):
            raise ValueError(f"config.yaml: {key}: give exactly one of 'weights' (a real model) or 'standin'")
        if entry["sampler"] not in SAMPLER_OF_KIND[entry["kind"]]:
            raise ValueError(
                f"config.yaml: {key}.sampler = {entry['sampler']!r}; expected one of "
                f"{SAMPLER_OF_KIND[entry['kind']]} for kind {entry['kind']!r}"
            )
        return cls(
            name=name,
            label=entry["label"],
            kind=entry["kind"],
            weights=entry.get("weights"),
            standin=entry.get("standin"),
            remote_code=entry.get("remote_code", False),
            mask_token_id=entry.get("mask_token_id"),
            attention_mask=entry.get("attention_mask", "additive_4d"),
            logits_shift=entry.get("logits_shift", False),
            sampler=entry["sampler"],
            lora_targets=tuple(entry["lora_targets"]),
            train_base=entry.get("train_base", False),
            learning_rates=dict(entry["lr"]),
            dtype=entry.get("dtype", "fp32"),
        )

    @property
    def is_standin(self) -> bool:
        return self.standin is not None

    def learning_rate(self, dataset: str) -> float:
        return self.learning_rates.get(dataset, self.learning_rates["default"])


def model_specs(llm_config: dict) -> dict[str, ModelSpec]:
    return {name: ModelSpec.from_config(name, entry) for name, entry in llm_config["models"].items()}


def resolve_weights(spec: ModelSpec) -> Path:
    """The local directory holding a real model's weights, or MissingWeightsError saying how to
    provide them. A hub id is looked up in the Hugging Face cache only (offline)."""
    if spec.is_standin:
        raise ValueError(f"{spec.name} is a stand-in: it has no weights")
    local = Path(spec.weights).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise MissingWeightsError(_missing(spec, f"the directory {local} has no config.json"))
        return local
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(spec.weights, local_files_only=True))
    except Exception as error:  # not cached, or not a valid hub id: both mean "not here"
        cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        reason = f"is neither a local directory nor in the Hugging Face cache ({cache}; {type(error).__name__})"
        raise MissingWeightsError(_missing(spec, reason)) from None


def _missing(spec: ModelSpec, reason: str) -> str:
    key = f"llm.models.{spec.name}.weights"
    return (
        f"config.yaml: {key} = {spec.weights!r} {reason}. Nothing is downloaded. Point {key} at a local "
        f"directory with the checkpoint (config.json, *.safetensors, tokenizer files), e.g. in a config "
        f"overlay passed with `--configfile weights.yaml`:\n"
        f"    llm: {{models: {{{spec.name}: {{weights: /path/to/{Path(str(spec.weights)).name}}}}}}}\n"
        f"or fill the cache on a machine with internet (`hf download {spec.weights}`) and set "
        f"HF_HOME to it; or run the stand-ins instead (`--config preset=quick`). See docs/llm.md."
    )
