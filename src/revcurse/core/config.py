"""Resolving the workflow config: reading it (config.yaml, overlays, preset, command line) against the schema,
hashes, seeds and the smoke-test marking.

Kept free of Snakemake so the same resolution is used by the workflow, the CLI and
the tests.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from revcurse.core.cli import BadInput

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG_FILE = REPO_ROOT / "config.yaml"
SCHEMA_FILE = REPO_ROOT / "workflow/schemas/config.schema.yaml"


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
        raise BadInput(
            f"config.yaml: preset={preset!r} is unknown; expected 'paper' or one of "
            f"{sorted(presets)} (the keys of 'presets')"
        )
    resolved = deep_merge(config, presets[preset]) if preset != "paper" else copy.deepcopy(config)
    return deep_merge(resolved, {k: v for k, v in (command_line or {}).items() if k != "presets"})


def read_config(overlays: Sequence[Path | str | dict] = (), command_line: dict | None = None,
                config_file: Path = CONFIG_FILE, schema_file: Path = SCHEMA_FILE) -> dict:
    """``config_file`` (config.yaml), then ``overlays`` in order (config files, as ``snakemake --configfile``, or dicts,
    e.g. a benchmark's ``--set`` values; config.yaml itself among them is skipped, as ``snakemake --configfile
    config.yaml mine.yaml`` names it), then ``command_line`` (``snakemake --config`` values), with the preset
    applied by ``resolve_config``; checked against ``schema_file``. A value the schema rejects is a BadInput with
    ``config_error``'s line. The checks that span several keys belong to the studies:
    ``revcurse.pipeline.config.load_config`` runs them on this."""
    base = Path(config_file)
    typed: dict = {}
    for overlay in overlays:
        if isinstance(overlay, dict):
            typed = deep_merge(typed, overlay)
        elif Path(overlay).resolve() != base.resolve():
            typed = deep_merge(typed, yaml.safe_load(Path(overlay).read_text()) or {})
    typed = deep_merge(typed, command_line or {})
    config = resolve_config(deep_merge(yaml.safe_load(base.read_text()), typed), typed)
    error = config_error(config, yaml.safe_load(Path(schema_file).read_text()), command_line)
    if error:
        raise BadInput(error)
    return config


def dotted_values(items: Iterable[str]) -> dict:
    """``key.path=value`` items (values read as YAML, e.g. ``toy.train.steps=500``) as one nested dict: the
    ``--set`` values of the command lines that load the config."""
    overlay: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--set {item!r}: expected key.path=value")
        *parents, leaf = key.split(".")
        node = overlay
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return overlay


# Presets whose outputs are a smoke test of the pipeline (small models, few steps), not results:
# every table file they make opens with ``smoke_test_line`` and every figure carries a marker.
SMOKE_TEST_PRESETS = ("quick",)


def results_dir(preset: str) -> str:
    """Where a preset's tables, figures and report go: ``results/<preset>`` for a smoke-test preset
    (``results/quick/table2.csv``), beside its runs, so that a smoke test never overwrites a result;
    ``results`` for the paper preset and its paper-scale variants (the paths the README names, e.g.
    ``results/table2.csv``)."""
    return f"results/{preset}" if preset in SMOKE_TEST_PRESETS else "results"


def other_presets_output(path: str, preset: str):
    """Stop: ``path`` is where the paper preset writes one of its outputs (``results_dir``), asked for
    while ``preset``, a smoke test, is in use. Raises ValueError naming the path that preset writes instead."""
    own = f"{results_dir(preset)}/{Path(path).relative_to('results')}"
    raise ValueError(f"{path} is the paper preset's output; preset {preset} is a smoke test and writes {own} "
                     f"instead, so that it never overwrites a paper-scale result. Ask for that file: "
                     f"snakemake {own} --config preset={preset}")


def smoke_test_line(presets: str | Iterable[str],
                    what: str = "small models trained for few steps: not paper-scale numbers") -> str:
    """The bold paragraph that opens every Markdown table made with a smoke-test preset
    (``SMOKE_TEST_PRESETS``), saying what the table is; "" for any other preset. ``presets``: one
    preset, or the values of a table's ``preset`` column."""
    names = sorted({presets} if isinstance(presets, str) else {str(p) for p in presets})
    quick = [p for p in names if p in SMOKE_TEST_PRESETS]
    return f"**{', '.join(quick)} preset — a smoke test of the pipeline: {what}.**\n\n" if quick else ""


def config_hash(obj: Any) -> str:
    """Short stable hash of a JSON-serialisable object (key order does not matter)."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def derive_seed(*parts: object) -> int:
    """A 63-bit seed determined by ``parts`` (e.g. run seed and purpose), the same on every machine."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)




def config_error(config: dict, schema: dict, command_line: dict | None = None) -> str | None:
    """The most relevant problem the schema finds in the resolved ``config``, as one line a person can act
    on (the key, what was found, what was expected; no schema dump), or None if it is valid.
    ``command_line``: the ``--config`` values, whose nested values Snakemake reads as strings."""
    import difflib

    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    path = list(error.absolute_path)
    key = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".") or "the top level"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        close = {u: difflib.get_close_matches(u, known, n=1) for u in unknown}
        hints = "".join(f" ('{u}': did you mean '{c[0]}'?)" for u, c in close.items() if c)
        message = f"unknown key(s) {', '.join(map(repr, unknown))} under {key}{hints}; expected one of {', '.join(known)}"
    else:
        shown = repr(error.instance)
        message = f"{key} = {shown if len(shown) < 80 else shown[:77] + '...'}: {error.message.replace(shown, 'it', 1)}"
    dotted = [k for k in command_line or {} if "." in k]
    if path[:1] and path[0] in (command_line or {}) and isinstance(error.instance, str) or dotted:
        message += (". --config reads nested values as strings and cannot set a nested key: put the values in a "
                    "YAML file and pass it with --configfile FILE")
    return f"config: {message}"
