"""The results CSV: one line per data row, in input order, written as chunks complete.

Columns: `row`, `status`, `affelios_id`, `http_status`, `attempts`, `error`, then every
original column unchanged. Each chunk is flushed to disk when written, so a crash keeps
every line written before it.

Spreadsheet safety: analysts open this file in Excel or LibreOffice, which would run a
cell starting with `=`, `+`, `-`, `@`, tab or carriage return as a formula. Such cells
(original columns and `error`) are written with a leading apostrophe (`'=HYPERLINK(...)`),
which spreadsheets show as text. Only this file is changed: the request carries the
original text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd

from etl.errors import InputError, SetupError
from etl.outcome import Outcome, Status
from etl.summary import Summary

FORMULA_CHARS = frozenset({"=", "+", "-", "@", "\t", "\r"})

RESULT_COLUMNS: tuple[str, ...] = (
    "row",
    "status",
    "affelios_id",
    "http_status",
    "attempts",
    "error",
)


def _create(path: Path, what: str) -> TextIO:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise SetupError(f"{path}: cannot write the {what} here ({exc.strerror})") from exc


class ResultsWriter:
    def __init__(self, path: Path, *, header: Sequence[str]) -> None:
        self.path = path
        self._file = _create(path, "results")
        self._csv = csv.writer(self._file)
        self._csv.writerow([*RESULT_COLUMNS, *header])
        self._file.flush()

    def write_chunk(self, raw: pd.DataFrame, outcomes: Sequence[Outcome]) -> None:
        """Write `raw`'s rows (original columns) beside their outcomes, in order."""
        self._csv.writerows(
            (
                row + 1,
                outcome.status.value,
                outcome.affelios_id,
                "" if outcome.http_status is None else outcome.http_status,
                outcome.attempts,
                defuse_formula(outcome.error),
                *values,
            )
            for row, outcome, values in zip(
                raw.index, outcomes, _rows(raw, defuse=True), strict=True
            )
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()


ERRORS_COLUMN = "error"
TO_FIX = frozenset({Status.INVALID, Status.FAILED})


class ErrorsWriter:
    """The rows to fix: only `invalid` and `failed` ones, their columns as read, then why.

    An analyst fixes the rows in a spreadsheet and imports this same file again: the
    original columns come first, unchanged (no apostrophes here, or they would be sent),
    in the input's delimiter, then `error`. A file that already has an `error` column (an
    errors file imported again) gets the new reason in that column, not a second one.
    """

    def __init__(self, path: Path, *, header: Sequence[str], delimiter: str) -> None:
        self.path = path
        self._file = _create(path, "errors file")
        self._csv = csv.writer(self._file, delimiter=delimiter)
        self._error_at = list(header).index(ERRORS_COLUMN) if ERRORS_COLUMN in header else None
        self._csv.writerow(header if self._error_at is not None else [*header, ERRORS_COLUMN])
        self._file.flush()

    def write_chunk(self, raw: pd.DataFrame, outcomes: Sequence[Outcome]) -> None:
        at = [i for i, outcome in enumerate(outcomes) if outcome.status in TO_FIX]
        if not at:
            return
        rows = []
        for values, i in zip(_rows(raw.iloc[at]), at, strict=True):
            outcome = outcomes[i]
            if self._error_at is None:
                rows.append([*values, outcome.error])
            else:
                rows.append(
                    [*values[: self._error_at], outcome.error, *values[self._error_at + 1 :]]
                )
        self._csv.writerows(rows)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def summarise(path: Path) -> Summary:
    """The summary of a run, from its results file alone (read in chunks)."""
    summary = Summary(results_path=str(path))
    try:
        with pd.read_csv(
            path,
            usecols=["row", "status", "error"],
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            chunksize=100_000,
        ) as reader:
            for chunk in reader:
                for row, status, error in zip(
                    chunk["row"], chunk["status"], chunk["error"], strict=True
                ):
                    summary.add(int(row), status, _undefused(error))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a results file of affelios-import ({exc})") from exc
    summary.dry_run = summary.counts[Status.VALID.value] > 0
    if summary.counts[Status.NOT_SENT.value]:
        summary.stop_reason = "the run stopped before every row was sent"
    return summary


def _undefused(text: str) -> str:
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_CHARS else text


def _rows(frame: pd.DataFrame, *, defuse: bool = False) -> Iterator[tuple[str, ...]]:
    """The frame's rows as tuples of text, column by column (pandas' string arrays are
    slow to read cell by cell, fast to turn into lists), formulas defused if asked."""
    columns = [frame.iloc[:, i].tolist() for i in range(frame.shape[1])]
    if defuse:
        columns = [[f"'{v}" if v[:1] in FORMULA_CHARS else v for v in c] for c in columns]
    return zip(*columns, strict=True) if columns else iter([()] * len(frame))


def defuse_formula(text: str) -> str:
    return "'" + text if text[:1] in FORMULA_CHARS else text
