"""The results CSV: one line per data row, in input order, written as chunks complete.

Columns: `row`, `status`, `affelios_id`, `http_status`, `attempts`, `error`,
`error_kind`, then every original column unchanged, under its own name: a repeated name
gets `.1`, `.2` (as pandas does), and a name the tool's columns use (an errors or
results file imported again has `error`, `row`, ...) gets `input_` before it, so that no
two columns share a name. Each chunk is flushed to disk when
written, so a crash keeps every line written before it.

Spreadsheet safety: analysts open this file in Excel or LibreOffice, which would run a
cell starting with `=`, `+`, `-`, `@`, tab or carriage return as a formula. Such cells
(original columns and `error`) are written with a leading apostrophe (`'=HYPERLINK(...)`),
which spreadsheets show as text. Only this file is changed: the request carries the
original text.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from affelios_import import codes
from affelios_import.errors import InputError, OutputFailed, SetupError, reason
from affelios_import.input import keycheck
from affelios_import.input.keycheck import KeyChecks
from affelios_import.input.read import column_names
from affelios_import.outcome import TO_FIX, Status
from affelios_import.output.summary import Summary
from affelios_import.text import first_bytes

if TYPE_CHECKING:
    from affelios_import.plan import PlannedChunk

FORMULA_CHARS = frozenset({"=", "+", "-", "@", "\t", "\r"})
NEGATIVE_NUMBER = r"^-\d+(\.\d+)?$"
# By a cell's first byte (-1: an empty cell, the table's last entry): a formula's or not.
_FORMULA_FIRST = np.zeros(257, dtype=bool)
_FORMULA_FIRST[[ord(c) for c in FORMULA_CHARS]] = True

RESULT_COLUMNS: tuple[str, ...] = (
    "row",
    "status",
    "affelios_id",
    "http_status",
    "attempts",
    "error",
    "error_kind",
)


INPUT_PREFIX = "input_"


def results_header(header: Sequence[str]) -> list[str]:
    """The results file's header: the tool's columns, then the input's, every name once."""
    names = column_names(tuple(header))
    taken = set(RESULT_COLUMNS) | set(names)
    kept = []
    for name in names:
        if name in RESULT_COLUMNS:
            while name in taken:
                name = INPUT_PREFIX + name
            taken.add(name)
        kept.append(name)
    return [*RESULT_COLUMNS, *kept]


def _create(path: Path, what: str) -> IO[bytes]:
    """The file, unbuffered: each chunk's lines are made in memory and written with
    `_append`, whole or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb", buffering=0)
    except OSError as exc:
        raise SetupError(f"{path}: cannot write the {what} here ({reason(exc)})") from exc


def _append(file: IO[bytes], data: bytes | memoryview) -> None:
    """Write `data` at the end of `file`, whole; should that fail (a full disk), cut the
    file back to where it was (so that it holds the lines counted, never half of a
    chunk's), and raise the OSError."""
    start = file.tell()
    try:
        view = memoryview(data)
        while view:
            written = file.write(view)
            if not written:
                raise OSError(errno.EIO, "the file took none of the bytes written")
            view = view[written:]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(file.fileno(), start)
            file.seek(start)
        raise


class ResultsWriter:
    """Writes with Arrow's CSV writer, a column at a time (the csv module, a row at a
    time, took 3 s a million rows), quoting every text cell."""

    def __init__(self, path: Path, *, header: Sequence[str], bom: bool = False) -> None:
        self.path = path
        self._file = _create(path, "results")
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow(results_header(header))
        with _setup(path, "results", self._file):
            _append(self._file, line.getvalue().encode("utf-8-sig" if bom else "utf-8"))
        self._options = pa_csv.WriteOptions(include_header=False)

    def write_chunk(self, chunk: PlannedChunk) -> None:
        """Write the chunk's rows (original columns) beside their outcomes, in order."""
        raw = chunk.raw
        columns = [
            pa.array(chunk.rows),
            _texts(chunk.status),
            _defused(_texts(chunk.affelios_id)),  # the API's text
            _http(chunk.http_status),
            pa.array(chunk.attempts),
            _defused(_texts(chunk.error)),
            _texts(chunk.error_kind),
            *(_defused(_text(raw.iloc[:, i])) for i in range(raw.shape[1])),
        ]
        names = [f"c{i}" for i in range(len(columns))]  # the header is written already
        lines = pa.BufferOutputStream()
        pa_csv.write_csv(pa.table(columns, names=names), lines, self._options)
        try:
            _append(self._file, memoryview(lines.getvalue()))  # Arrow's bytes, not a copy
        except OSError as exc:
            raise _failed(self.path, "results", exc) from exc

    def finish(self) -> None:
        """Every chunk was flushed as it was written: nothing is left to do."""

    def close(self) -> None:
        _close(self._file)


ERRORS_COLUMNS = ("source_row", keycheck.COLUMN, "to_do", "error")


def errors_header(header: Sequence[str]) -> list[str]:
    """The errors file's header: the input's columns, then `source_row`, `key_check`,
    `to_do` and `error` (an input that has them already, an errors file imported again,
    keeps them in place)."""
    return [*header, *(name for name in ERRORS_COLUMNS if name not in header)]


def to_fix(chunk: PlannedChunk, header: Sequence[str], keys: KeyChecks | None) -> list[list[str]]:
    """The chunk's rows to fix, as lines under `errors_header`: their columns as read,
    their data row number, the check of their key (see `keycheck`; none without `keys`)
    and why."""
    at = np.flatnonzero(np.isin(chunk.status, [status.value for status in TO_FIX]))
    if not len(at):
        return []
    width = len(header)
    row_at, check_at, do_at, error_at = (header.index(name) for name in ERRORS_COLUMNS)
    raw, kinds = chunk.raw.iloc[at], chunk.error_kind[at].tolist()
    checks = keys.of(raw, kinds) if keys is not None else [""] * len(at)
    statuses = chunk.status[at].tolist()
    lines = []
    for values, row, check, status, kind, error in zip(
        _rows(raw), chunk.rows[at].tolist(), checks, statuses, kinds, chunk.error[at], strict=True
    ):
        line = [*values, *[""] * (width - len(values))]
        line[row_at], line[check_at], line[error_at] = str(row), check, error
        line[do_at] = codes.to_do(status, kind)
        lines.append(line)
    return lines


class ErrorsWriter:
    """The rows to fix: only `invalid` and `failed` ones, their columns as read, then the
    row they are in the input (`source_row`) and why (`error`).

    An analyst fixes the rows in a spreadsheet and imports this same file again: the
    original columns come first, unchanged (no apostrophes here, or they would be sent),
    in the input's delimiter. A file that already has a `source_row` or `error` column
    (an errors file imported again) gets the new values in that column, not a second one.
    """

    def __init__(
        self,
        path: Path,
        *,
        header: Sequence[str],
        delimiter: str,
        bom: bool = False,
        keys: KeyChecks | None = None,
    ) -> None:
        self.path, self.keys = path, keys
        self._file = _create(path, "errors file")
        self._delimiter = delimiter
        self._header = errors_header(header)
        with _setup(path, "errors file", self._file):
            head = self._lines([self._header])
            _append(self._file, head.encode("utf-8-sig" if bom else "utf-8"))

    def _lines(self, rows: list[list[str]]) -> str:
        text = io.StringIO(newline="")
        csv.writer(text, delimiter=self._delimiter).writerows(rows)
        return text.getvalue()

    def write_chunk(self, chunk: PlannedChunk) -> None:
        if not (lines := to_fix(chunk, self._header, self.keys)):
            return
        try:
            _append(self._file, self._lines(lines).encode("utf-8"))
        except OSError as exc:
            raise _failed(self.path, "errors file", exc) from exc

    def finish(self) -> None:
        """Every chunk was flushed as it was written: nothing is left to do."""

    def close(self) -> None:
        _close(self._file)


@contextlib.contextmanager
def _setup(path: Path, what: str, file: IO[bytes]) -> Iterator[None]:
    """A write before the first request: its failure is a SetupError (nothing sent)."""
    try:
        yield
    except OSError as exc:
        _close(file)
        raise SetupError(f"{path}: cannot write the {what} here ({reason(exc)})") from exc


def _failed(path: Path, what: str, exc: OSError) -> OutputFailed:
    return OutputFailed(f"{path}: cannot write the {what} ({reason(exc)})")


def _close(file: IO[Any]) -> None:
    """Close an output whose every chunk was flushed when written: a failure here can only
    repeat one that stopped the run already."""
    with contextlib.suppress(OSError):
        file.close()


SUMMARISED = frozenset({"row", "status", "error_kind", "http_status"})


def summarise(path: Path) -> Summary:
    """The summary of a run, from its results file alone (a CSV read in chunks, or a
    workbook)."""
    summary = Summary(results_path=str(path))
    try:
        for chunk in _result_chunks(path):
            if "error_kind" not in chunk:  # written before kinds were: counts only
                chunk["error_kind"] = ""
            summary.add_chunk(
                chunk["row"].to_numpy(dtype=np.int64),
                chunk["status"].to_numpy(dtype=object),
                chunk["error_kind"].to_numpy(dtype=object),
                chunk["http_status"].to_numpy(dtype=object),
            )
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except KeyError as exc:  # a column every results file has is missing
        raise InputError(f"{path}: not a results file of affelios-import (no {exc})") from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a results file of affelios-import ({exc})") from exc
    summary.dry_run = summary.counts[Status.VALID.value] > 0
    if summary.counts[Status.NOT_SENT.value]:
        summary.stop_reason = "the run stopped before every row was sent"
    return summary


def _result_chunks(path: Path, size: int = 100_000) -> Iterator[pd.DataFrame]:
    """The summarised columns of a results file, as text, `size` rows at a time."""
    from affelios_import.input import sheet as sheets

    if sheets.is_workbook(path):
        _, rows = sheets.sheet_rows(path, name=str(path), sheet=None)
        header = next(rows, [])
        keep = [i for i, name in enumerate(header) if name in SUMMARISED]
        names = [header[i] for i in keep]
        while block := [[row[i] for i in keep] for row in itertools.islice(rows, size)]:
            yield pd.DataFrame(block, columns=names, dtype=object)
        return
    with pd.read_csv(
        path,
        usecols=lambda name: name in SUMMARISED,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        chunksize=size,
        encoding="utf-8-sig",  # written with --bom, or not
    ) as reader:
        yield from reader


def _rows(frame: pd.DataFrame) -> Iterator[tuple[str, ...]]:
    """The frame's rows as tuples of text, column by column (pandas' string arrays are
    slow to read cell by cell, fast to turn into object arrays)."""
    columns = [frame.iloc[:, i].to_numpy(dtype=object).tolist() for i in range(frame.shape[1])]
    return zip(*columns, strict=True) if columns else iter([()] * len(frame))


def _texts(values: npt.NDArray[np.object_]) -> pa.Array:
    """A column of outcomes' text as Arrow text. One value all down the column (a dry
    run's statuses, its empty ids and errors) is repeated, not read cell by cell."""
    if len(values) and (values == values[0]).all():
        return pa.repeat(pa.scalar(values[0], pa.string()), len(values))
    return pa.array(values, type=pa.string())


def _http(codes: npt.NDArray[np.object_]) -> pa.Array:
    """The HTTP statuses: a number, or empty where no answer came."""
    if (codes == "").all():
        return pa.nulls(len(codes), pa.int64())
    http = np.asarray([code or 0 for code in codes.tolist()], dtype=np.int64)
    return pa.array(http, mask=http == 0)


def _text(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(values, type=pa.string())


def _defused(text: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cells that a spreadsheet would run as formulas, behind a leading apostrophe."""
    formulas = _FORMULA_FIRST[first_bytes(text)]  # each cell's first byte, looked up
    if not formulas.any():
        return text  # the usual case: one look at each cell's first byte, nothing to change
    # A plain negative number is a number to the spreadsheet, not a formula: left as it
    # is, so that amounts can be summed there (`-2+3+cmd|...` is not plain).
    plain = pc.fill_null(pc.match_substring_regex(text, NEGATIVE_NUMBER), False)
    formulas = pc.and_(pa.array(formulas), pc.invert(plain))
    return pc.if_else(formulas, pc.utf8_replace_slice(text, 0, 0, "'"), text)
