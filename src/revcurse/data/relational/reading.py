"""Reading the original source files, with one clear error for every malformed input.

Every problem stops the import with an ``InputError`` whose message is
``<file>:<line>: <what was found>; expected <what should be there>``: bytes that are
not UTF-8, an empty file, a truncated row, a missing or wrongly typed field.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import Iterator


class InputError(ValueError):
    """A malformed source file or row: file, line and what was expected."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")


def read_utf8(path: Path, expected: str) -> str:
    """The text of ``path`` (a UTF-8 byte-order mark is dropped).

    Stops on the first byte that is not UTF-8 (naming its line and column) and on a file
    without any non-blank line; ``expected`` says what the file should hold.
    """
    data = Path(path).read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        raise InputError(
            path, data.count(b"\n", 0, error.start) + 1,
            f"byte 0x{data[error.start]:02x} at column {error.start - line_start + 1} is not UTF-8; "
            f"expected UTF-8 text ({expected})",
        ) from None
    if not text.strip():
        raise InputError(path, 1, f"the file is empty; expected {expected}")
    return text


def read_jsonl_objects(path: Path, expected: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of a JSON Lines file."""
    for line_number, line in enumerate(read_utf8(path, expected).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(
                path, line_number, f"invalid JSON ({error.msg}, column {error.colno}); expected {expected}"
            ) from None
        if not isinstance(row, dict):
            raise InputError(path, line_number, f"a JSON {type(row).__name__}; expected {expected}")
        yield line_number, row


def require_strings(path: Path, line: int, row: dict, required: tuple[str, ...], expected: str) -> None:
    """Stop unless each of ``required`` is a field of ``row`` holding a non-blank string."""
    missing = [f for f in required if f not in row]
    if missing:
        raise InputError(path, line, f"missing field {', '.join(missing)}; expected {expected}")
    for field in required:
        if not isinstance(row[field], str) or not row[field].strip():
            raise InputError(path, line, f"empty or non-string {field} {row[field]!r}; expected {expected}")


def read_jsonl_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line, with ``required`` non-empty strings."""
    expected = f"an object with non-empty string fields {', '.join(required)}"
    for line_number, row in read_jsonl_objects(path, expected):
        require_strings(path, line_number, row, required, expected)
        yield line_number, row


def read_csv_rows(path: Path, required: tuple[str, ...], expected: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line of the row, {column: stripped value}) of each data row of a CSV file.

    The header must name every ``required`` column; every row must have the header's
    number of fields; a quoted field left open (a truncated file) is an error; the file
    must hold at least one data row.
    """
    text = read_utf8(path, expected)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, rows, row_start = None, 0, 1
    try:
        for fields in reader:
            if header is None:
                header = [f.strip() for f in fields]
                missing = [c for c in required if c not in header]
                if missing:
                    raise InputError(path, 1, f"missing column {', '.join(missing)}; expected a header with "
                                              f"{', '.join(required)} ({expected})")
            elif fields:
                if len(fields) != len(header):
                    raise InputError(path, row_start, f"a row of {len(fields)} fields; expected {len(header)} "
                                                      f"fields, as in the header")
                rows += 1
                yield row_start, {column: value.strip() for column, value in zip(header, fields)}
            row_start = reader.line_num + 1
    except csv.Error as error:
        raise InputError(path, row_start, f"malformed CSV ({error}); expected a complete row of "
                                          f"{len(header or required)} fields") from None
    if rows == 0:
        raise InputError(path, 2, f"no data row after the header; expected {expected}")
