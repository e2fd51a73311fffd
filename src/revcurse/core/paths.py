"""Where a toy run's files live: the one definition every rule, command line, script and test uses.

Called with values it gives a run's folder (``run_dir("paper", "toy", "mdm", 20, 1)``); called with
Snakemake wildcards it gives the rule's pattern (``run_dir(PRESET, "toy", "{model}", "{L}", "{seed}")``).
"""
from __future__ import annotations

RESULTS = "results"


def run_dir(preset: str, study: str, model: str, length: int | str, seed: int | str, root: str = RESULTS) -> str:
    """One run's folder: ``<root>/<preset>/<study>/<model>/L<length>/seed<seed>``. ``root``: ``results`` for the
    runs a workflow makes, ``reference/paper/runs`` for the shipped copies of their Parquet files."""
    return f"{root}/{preset}/{study}/{model}/L{length}/seed{seed}"


def run_name(model: str, length: int | str, seed: int | str) -> str:
    """A run's name in the file names of its logs and benchmark records: ``<model>_L<length>_seed<seed>``."""
    return f"{model}_L{length}_seed{seed}"


def toy_data_file(study: str, length: int | str, suffix: str = ".parquet") -> str:
    """One length's toy data (``study``: ``toy`` or ``toy_attention_only``), or its manifest or check
    (``suffix``: ``.manifest.json``, ``.check.json``)."""
    return f"{RESULTS}/data/{study}/L{length}{suffix}"
