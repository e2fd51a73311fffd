"""Parquet files with their metadata (spec, provenance) in the file's schema, and reading several as one table."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


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
