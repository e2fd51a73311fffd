"""What the run commands of ``python -m revcurse.llm`` share: a run's backbone, its dataset direction, provenance."""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

import torch

from revcurse.core.provenance import provenance

LLM_PACKAGES = ("transformers", "peft", "accelerate", "tokenizers")


def llm_provenance(model_revision: str) -> dict[str, str]:
    """Code and package versions, and the revision of the model (``Backbone.revision``)."""
    versions = {**provenance(), "model_revision": model_revision}
    for package in LLM_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def direction_records(manifest: str, direction: str):
    """One direction of a relational dataset, after checking the files against the manifest."""
    from revcurse.data.relational import load_dataset

    dataset, _ = load_dataset(Path(manifest))
    return next(d for d in dataset.directions if d.name == direction)


def run_backbone(spec: dict, device: torch.device, stacked_seeds: list[int] | None = None):
    """The run's model with its seeded adapters; or, with ``stacked_seeds``, the frozen base with
    the adapters of those runs stacked (their specs differ only in the seed)."""
    from revcurse.llm.model.backbone import load_backbone, with_seeded_lora, with_stacked_lora
    from revcurse.llm.model.registry import ModelSpec

    model = ModelSpec.from_config(spec["model"], spec["model_config"])
    if stacked_seeds is not None and model.is_standin:
        raise ValueError(f"{model.name} is a stand-in: each run draws its random base from its seed, so runs of "
                         f"different seeds cannot be stacked over one (llm.train.stack_seeds)")
    tokenizer = Path(spec["tokenizer"]) if spec["tokenizer"] else None
    backbone = load_backbone(model, device, spec["seed"], tokenizer)
    if stacked_seeds is None:
        return with_seeded_lora(backbone, spec["lora"], spec["seed"])
    return with_stacked_lora(backbone, spec["lora"], stacked_seeds)


def check_trained_revision(training: dict, backbone, checkpoints: str) -> None:
    """Adapters trained on one revision of a model are not evaluated or probed on another."""
    if training.get("model_revision") != backbone.revision:
        name = backbone.spec.name
        raise SystemExit(f"{checkpoints} was trained on {name} revision {training.get('model_revision')}, but "
                         f"revision {backbone.revision} is loaded (config.yaml: llm.models.{name}.revision): "
                         f"retrain the run")
