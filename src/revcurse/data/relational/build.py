"""The three relational datasets: which directions they have, and how each is built.

``source: null`` in the config builds the embedded fictitious default; a path imports
the original data from it (docs/datasets.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from revcurse.data.relational import generate, importers
from revcurse.data.relational.records import MANIFEST, RelationalDataset, layout


@dataclass(frozen=True)
class DatasetKind:
    title: str
    directions: tuple[str, ...]
    generate: Callable
    import_: Callable
    source_files: Callable[[Path, dict], list[Path]]  # (source path, settings) -> files read
    expected_source: str  # what a source path must point at, for error messages


DATASETS = {
    "parent_child": DatasetKind(
        "Parent-Child", ("p2c", "c2p"),
        generate.generate_parent_child, importers.import_parent_child,
        lambda source, settings: [Path(source)],
        "Berglund et al.'s celebrity_relations/parent_child_pairs.csv",
    ),
    "person_description": DatasetKind(
        "Person-Description", ("p2d", "d2p"),
        generate.generate_person_description, importers.import_person_description,
        lambda source, settings: importers.person_description_files(source),
        "the directory reverse_experiments/june_version_7921032488 of Berglund et al. "
        "(p2d_/d2p_ prompts_train, prompts_test and reverse_prompts_test .jsonl files)",
    ),
    "trex": DatasetKind(
        "T-REx (virtualized)", ("h2t",),
        generate.generate_trex, importers.import_trex,
        lambda source, settings: importers.trex_source_files(source, settings["relations"]),
        "a LAMA-style T-REx .jsonl file, or a directory with one <relation>.jsonl per configured "
        "relation (LAMA's data/TREx/), or LAMA's data/ directory holding TREx/",
    ),
}

# Large-scale task (rows of the paper's Table 1) -> (dataset, direction).
TASKS = {
    "P2C": ("parent_child", "p2c"),
    "C2P": ("parent_child", "c2p"),
    "P2D": ("person_description", "p2d"),
    "D2P": ("person_description", "d2p"),
    "T-REx": ("trex", "h2t"),
}


def source_files(name: str, settings: dict) -> list[Path]:
    """Files an import of dataset ``name`` with config ``settings`` reads (none for the
    embedded default).

    Raises ValueError naming the config key when a configured path or a file it must
    hold does not exist, so a typo stops the workflow before any job runs.
    """
    source = settings["source"]
    if source is None:
        return []
    kind = DATASETS[name]
    problem = f"config.yaml: datasets.{name}.source = {source!r}"
    if not Path(source).exists():
        raise ValueError(f"{problem} does not exist; expected {kind.expected_source}")
    files = kind.source_files(Path(source), settings)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"{problem}: missing {', '.join(missing)}; expected {kind.expected_source}")
    return files


def build_dataset(name: str, settings: dict, resources: dict) -> RelationalDataset:
    kind = DATASETS[name]
    source_files(name, settings)
    make = kind.generate if settings["source"] is None else kind.import_
    entities, facts, directions, source = make(settings, resources)
    return RelationalDataset(name, kind.title, source, settings, entities, facts, directions)


def output_files(name: str, out_dir: str) -> dict[str, str]:
    """Every file the build of dataset ``name`` writes under ``out_dir``, by a short key
    (manifest, entities, facts, p2c_train, p2c_eval_forward, ...) for Snakemake rules."""
    relative = [MANIFEST, *layout(DATASETS[name].directions)]
    return {path.split(".")[0].replace("/", "_"): f"{out_dir}/{path}" for path in relative}
