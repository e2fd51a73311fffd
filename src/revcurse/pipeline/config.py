"""The one config loader of the workflow, its command lines and its benchmarks.

``revcurse.core.config.read_config`` reads config.yaml, the overlays, the preset and the command line and checks
the result against the schema; the rules that span several keys belong to the studies (a toy model's shape, the
ablation grid over toy.models, the large-model registry), and core imports no study (tests/core/test_layout.py).
This folder is the one that may import every study, so the list of their checks lives here, next to the one
function that runs both: every entry point calls ``load_config``, so a bad value stops each with the same line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from revcurse.ablation.grid import check_ablation_config
from revcurse.core.cli import BadInput
from revcurse.core.config import CONFIG_FILE, SCHEMA_FILE, read_config
from revcurse.llm.plan import check_llm_config
from revcurse.toy.specs import check_toy_config

# Each raises ValueError naming the keys; in the order the workflow's rule files meet them.
CROSS_FIELD_CHECKS = (check_toy_config, check_ablation_config, check_llm_config)


def load_config(overlays: Sequence[Path | str | dict] = (), command_line: dict | None = None,
                config_file: Path = CONFIG_FILE, schema_file: Path = SCHEMA_FILE) -> dict:
    """The resolved config (``read_config``: config.yaml < preset < ``overlays`` in order < ``command_line``),
    valid under the schema and every study's cross-field checks; a bad value is a BadInput whose message is one
    line naming the key(s)."""
    config = read_config(overlays, command_line, config_file, schema_file)
    for check in CROSS_FIELD_CHECKS:
        try:
            check(config)
        except ValueError as error:
            raise BadInput(str(error)) from None
    return config
