"""Resolving the workflow config: preset overlay, hashes and provenance.

Kept free of Snakemake so the same resolution is used by the workflow, the CLI and
the tests.
"""
from __future__ import annotations

import copy
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def deep_merge(base: dict, overlay: dict) -> dict:
    """Return ``base`` with ``overlay`` merged in; nested dicts merge, other values replace."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_config(config: dict, command_line: dict | None = None) -> dict:
    """Apply the preset named by ``config['preset']`` ('paper' means no overlay), then
    ``command_line`` again (the values of ``--configfile``/``--config``), so that precedence is
    config.yaml < preset < the command line: a value the user typed is never lost to the preset."""
    preset = config.get("preset", "paper")
    presets = config.get("presets", {})
    if preset != "paper" and preset not in presets:
        raise ValueError(
            f"config.yaml: preset={preset!r} is unknown; expected 'paper' or one of "
            f"{sorted(presets)} (the keys of 'presets')"
        )
    resolved = deep_merge(config, presets[preset]) if preset != "paper" else copy.deepcopy(config)
    return deep_merge(resolved, {k: v for k, v in (command_line or {}).items() if k != "presets"})


def config_hash(obj: Any) -> str:
    """Short stable hash of a JSON-serialisable object (key order does not matter)."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def derive_seed(*parts: object) -> int:
    """A 63-bit seed determined by ``parts`` (e.g. run seed and purpose), the same on every machine."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


def code_version() -> str:
    """Git commit of the working tree (with '-dirty' if modified), else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "revcurse-" + metadata.version("revcurse")


def provenance() -> dict[str, str]:
    """Code and package versions stored with every output."""
    versions = {"code_version": code_version(), "python": platform.python_version()}
    for package in ("torch", "numpy", "pandas", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def toy_model_fields(config: dict, model: str) -> dict:
    """One toy model's definition: the shared ``model_defaults`` overlaid with its entry."""
    toy = config["toy"]
    return {**toy["model_defaults"], **toy["models"][model]}


def toy_train_spec(config: dict, model: str, length: int, seed: int) -> dict:
    """Everything a toy training run depends on (and nothing it does not, e.g. eval settings)."""
    return {
        "preset": config["preset"],
        "model": model,
        "length": length,
        "seed": seed,
        "model_fields": toy_model_fields(config, model),
        "train": config["toy"]["train"],
    }


def toy_eval_spec(config: dict, model: str, length: int, seed: int) -> dict:
    return {"preset": config["preset"], "model": model, "length": length, "seed": seed,
            "eval": config["toy"]["eval"]}


def toy_eval_over_training_spec(config: dict, model: str, length: int, seed: int) -> dict:
    """Accuracy over training: decoding as toy.eval, schedule and sample count of toy.eval_over_training."""
    return {**toy_eval_spec(config, model, length, seed), "over_training": config["toy"]["eval_over_training"]}
