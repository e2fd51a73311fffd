"""Parquet files with their metadata (spec, provenance) in the file's schema, reading several as one table,
and loading checkpoints without running code from them."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from revcurse.core.cli import BadInput


def write_parquet(frame: pd.DataFrame, path: Path, metadata: dict) -> None:
    """Parquet with the run's provenance in the file's key-value metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"revcurse": json.dumps(metadata).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_parquets(paths: Iterable[Path | str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def listed_values(column: pd.Series) -> list[str]:
    """The distinct values of a column whose cells may list several, joined by ", " (a table row that
    pools runs of several code versions), each once, sorted."""
    return sorted({value for cell in column.dropna().astype(str) for value in cell.split(", ")})


def load_checkpoint(path: Path, remedy: str):
    """``torch.load`` of a file this project wrote (tensors, state dicts, plain containers) with
    ``weights_only=True``, so a planted file cannot run code. A file that cannot be read that way is one
    BadInput naming it and ``remedy`` (what to do, e.g. delete it to restart the run)."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:        # weights_only refused an object (torch's text names it)
        named = re.search(r"GLOBAL (\S+)", str(error))
        found = f"found {named.group(1)}" if named else str(error).splitlines()[0]
        problem = f"holds more than tensors and plain containers ({found}), refused so that it cannot run code"
    except FileNotFoundError:
        problem = "does not exist"
    except Exception as error:                      # a truncated or foreign file, a permission error, ...
        problem = f"not a readable checkpoint ({str(error).split('. ')[0] or type(error).__name__})"
    raise BadInput(f"{path}: {problem}; {remedy}")


def check_writable(*folders: Path) -> None:
    """Create each folder if needed and write a temporary file in it, so that a job stops before its first
    step, naming the folder, rather than after hours of work at its first save."""
    import tempfile

    for folder in folders:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise BadInput(f"{folder}: cannot write there ({error.strerror or error}); expected a folder this job "
                           f"can write its outputs into: change its permissions or free space") from error
