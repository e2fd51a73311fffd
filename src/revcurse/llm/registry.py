"""The model registry: ``config.yaml`` → ``llm.models``, and where each model's weights are.

A real model names its weights by a local directory or a Hugging Face hub id that must already
be in the local cache: nothing is ever downloaded. Its ``revision`` pins the commit of the hub
repository the weights (and, for LLaDA and Dream, the modeling code) must come from: the cache
snapshot of that commit, or a local directory that records it (``hf download --local-dir``
writes the commit next to every file). A stand-in has no weights; it is built from its
``standin`` architecture (``standins.py``) and trained from scratch.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SAMPLER_OF_KIND = {"arm": ("greedy",), "mdm": ("llada", "dream")}
COMMIT = re.compile(r"^[0-9a-f]{40}$")
STANDIN_REVISION = "stand-in"          # what a stand-in's outputs record as the model revision
POSITION_IDS = ("index", "visible")


class MissingWeightsError(ValueError):
    """A real model's weights are neither a local directory nor in the Hugging Face cache, or are
    not the pinned revision."""


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
    revision: str | None = None      # real models: the pinned commit of the hub repository
    chat_template: bool = False      # wrap every prompt in the tokenizer's chat template (docs/llm.md)
    position_ids: str = "index"      # index: the sequence index; visible: count visible tokens (Dream)

    @classmethod
    def from_config(cls, name: str, entry: dict) -> "ModelSpec":
        key = f"llm.models.{name}"
        if (entry.get("weights") is None) == (entry.get("standin") is None):
            raise ValueError(f"config.yaml: {key}: give exactly one of 'weights' (a real model) or 'standin'")
        if entry.get("standin") is not None and (entry.get("revision") or entry.get("chat_template")):
            raise ValueError(f"config.yaml: {key}: a stand-in has no hub revision and its tokenizer no chat template; "
                             f"remove 'revision' and 'chat_template' from it")
        if entry.get("revision") is not None and not COMMIT.match(str(entry["revision"])):
            raise ValueError(f"config.yaml: {key}.revision = {entry['revision']!r}; expected the 40-hex commit hash "
                             f"of the hub repository (a branch or tag name can move)")
        if entry.get("position_ids", "index") not in POSITION_IDS:
            raise ValueError(f"config.yaml: {key}.position_ids = {entry['position_ids']!r}; expected one of {POSITION_IDS}")
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
            revision=entry.get("revision"),
            chat_template=entry.get("chat_template", False),
            position_ids=entry.get("position_ids", "index"),
        )

    @property
    def is_standin(self) -> bool:
        return self.standin is not None

    def learning_rate(self, dataset: str) -> float:
        return self.learning_rates.get(dataset, self.learning_rates["default"])


def model_specs(llm_config: dict) -> dict[str, ModelSpec]:
    return {name: ModelSpec.from_config(name, entry) for name, entry in llm_config["models"].items()}


def resolve_weights(spec: ModelSpec) -> Path:
    """The local directory holding a real model's weights at its pinned revision, or
    MissingWeightsError saying how to provide them. A hub id is looked up in the Hugging Face
    cache only (offline)."""
    return _resolve(spec)[0]


def weights_revision(spec: ModelSpec) -> str:
    """The commit the model's outputs record: the pinned revision of a real model (checked against
    its weights by ``resolve_weights``), ``STANDIN_REVISION`` for a stand-in."""
    return STANDIN_REVISION if spec.is_standin else _resolve(spec)[1]


def recorded_revision(directory: Path) -> str | None:
    """The hub commit a checkpoint directory holds, where it says: a cache snapshot is named after
    it; ``hf download --local-dir`` writes it as the first line of
    ``.cache/huggingface/download/<file>.metadata``. None when the directory does not say."""
    directory = Path(directory)
    if COMMIT.match(directory.name) and directory.parent.name == "snapshots":
        return directory.name
    metadata = directory / ".cache" / "huggingface" / "download" / "config.json.metadata"
    if metadata.is_file():
        first = metadata.read_text().split("\n", 1)[0].strip()
        return first if COMMIT.match(first) else None
    return None


def _resolve(spec: ModelSpec) -> tuple[Path, str]:
    if spec.is_standin:
        raise ValueError(f"{spec.name} is a stand-in: it has no weights")
    local = Path(spec.weights).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise MissingWeightsError(_missing(spec, f"the directory {local} has no config.json"))
        found = recorded_revision(local.resolve())
    else:
        from huggingface_hub import snapshot_download

        try:   # with a pinned commit: that snapshot; without: the cached one, to name it in the error
            local = Path(snapshot_download(spec.weights, revision=spec.revision, local_files_only=True))
        except Exception as error:  # not cached, or not a valid hub id: both mean "not here"
            cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
            what = f"at revision {spec.revision} " if spec.revision else ""
            reason = f"{what}is neither a local directory nor in the Hugging Face cache ({cache}; {type(error).__name__})"
            raise MissingWeightsError(_missing(spec, reason)) from None
        found = recorded_revision(local)
    if spec.revision is None:
        raise MissingWeightsError(_unpinned(spec, local, found))
    if found != spec.revision:
        raise MissingWeightsError(_wrong_revision(spec, local, found))
    return local, spec.revision


def _unpinned(spec: ModelSpec, local: Path, found: str | None) -> str:
    key = f"llm.models.{spec.name}.revision"
    holds = (f"The weights at {local} are revision {found}: pin it with `revision: {found}` under "
             f"llm.models.{spec.name} (config.yaml or your weights overlay)" if found else
             f"The weights at {local} do not record their revision: {_record_it(spec)}")
    return (f"config.yaml: {key} is not set: every output records the model revision it was made with, so a "
            f"real model's hub commit must be pinned. {holds}. See docs/llm.md.")


def _wrong_revision(spec: ModelSpec, local: Path, found: str | None) -> str:
    key = f"llm.models.{spec.name}.revision"
    if found is None:
        return (f"config.yaml: {key} = {spec.revision} but the weights at {local} do not record their revision: "
                f"{_record_it(spec)}. See docs/llm.md.")
    return (f"config.yaml: {key} = {spec.revision} but the weights at {local} are revision {found}. Fetch the "
            f"pinned one (`hf download {spec.weights} --revision {spec.revision} --local-dir DIR`) or, if the "
            f"change is intended, pin {found} (and rerun the model's jobs). See docs/llm.md.")


def _record_it(spec: ModelSpec) -> str:
    local = Path(spec.weights).expanduser().is_dir()
    repo, commit = ("<hub repository>" if local else spec.weights), spec.revision or "COMMIT"
    return (f"fetch them with `hf download {repo} --revision {commit} --local-dir DIR` (which records the commit in "
            f"DIR/.cache/huggingface/download) and point weights at DIR, or point weights at the hub id with HF_HOME "
            f"on a cache that holds that commit's snapshot")


def _missing(spec: ModelSpec, reason: str) -> str:
    key = f"llm.models.{spec.name}.weights"
    return (
        f"config.yaml: {key} = {spec.weights!r} {reason}. Nothing is downloaded. Point {key} at a local "
        f"directory with the checkpoint (config.json, *.safetensors, tokenizer files), e.g. in a config "
        f"overlay passed with `--configfile weights.yaml`:\n"
        f"    llm: {{models: {{{spec.name}: {{weights: /path/to/{Path(str(spec.weights)).name}}}}}}}\n"
        f"or fill the cache on a machine with internet (`hf download {spec.weights} --revision "
        f"{spec.revision or 'COMMIT'}`) and set HF_HOME to it; or run the stand-ins instead "
        f"(`--config preset=quick`). See docs/llm.md."
    )
