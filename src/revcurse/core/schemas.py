"""Checks of the long-format tables (probe Parquet files) against a column schema: names, order, types, no nulls."""
from __future__ import annotations

import pandas as pd

_DTYPE_CHECKS = {str: pd.api.types.is_string_dtype, int: pd.api.types.is_integer_dtype,
                 float: pd.api.types.is_float_dtype}


def check_table(frame: pd.DataFrame, probe: str, schemas: dict[str, dict[str, type]]) -> pd.DataFrame:
    """``frame`` if it has exactly the columns of ``schemas[probe]``, of their types, without nulls."""
    if probe not in schemas:
        raise ValueError(f"unknown probe table {probe!r}; expected one of {sorted(schemas)}")
    schema = schemas[probe]
    if list(frame.columns) != list(schema):
        raise ValueError(f"probe {probe!r}: columns {list(frame.columns)}, expected {list(schema)}")
    wrong = [f"{c} ({frame[c].dtype}, expected {t.__name__})" for c, t in schema.items()
             if not _DTYPE_CHECKS[t](frame[c])]
    if wrong:
        raise ValueError(f"probe {probe!r}: wrong column types: {', '.join(wrong)}")
    nulls = frame.columns[frame.isna().any()].tolist()
    if nulls:
        raise ValueError(f"probe {probe!r}: null values in {nulls}")
    if frame.empty:
        raise ValueError(f"probe {probe!r}: no rows")
    return frame
