"""Read the customer CSV as text, in chunks, so memory does not grow with the file.

Every cell stays exactly as written (`000123`, `1e5`, `NA` and empty are all text).
The index of each chunk is the 0-based data row number across the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from etl.errors import InputError

DEFAULT_CHUNK_SIZE = 10_000
ENCODING = "utf-8-sig"  # UTF-8, with or without a byte-order mark


def _input_error(path: Path, exc: Exception) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{path}: is a directory, not a CSV file")
    if isinstance(exc, PermissionError):
        return InputError(f"{path}: not readable (permission denied)")
    if isinstance(exc, UnicodeDecodeError):
        return InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    if isinstance(exc, pd.errors.EmptyDataError):
        return InputError(f"{path}: the file is empty; expected a header line")
    return InputError(f"{path}: cannot be read as CSV: {exc}")


def read_header(path: Path) -> list[str]:
    """The column names of the file, read without its rows."""
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding=ENCODING, nrows=0
        )
        return [str(c) for c in frame.columns]
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise _input_error(path, exc) from exc


def read_chunks(path: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[pd.DataFrame]:
    """The file's data rows, `chunk_size` at a time, every column as text."""
    try:
        with pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding=ENCODING,
            chunksize=chunk_size,
        ) as reader:
            yield from reader
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise _input_error(path, exc) from exc
