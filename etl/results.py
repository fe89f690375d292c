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
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd

from etl.errors import SetupError
from etl.outcome import Outcome

FORMULA_START = r"^[=+\-@\t\r]"

RESULT_COLUMNS: tuple[str, ...] = (
    "row",
    "status",
    "affelios_id",
    "http_status",
    "attempts",
    "error",
)


class ResultsWriter:
    def __init__(self, path: Path, *, header: Sequence[str]) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO = path.open("w", newline="", encoding="utf-8")
        except OSError as exc:
            raise SetupError(f"{path}: cannot write the results here ({exc.strerror})") from exc
        self._csv = csv.writer(self._file)
        self._csv.writerow([*RESULT_COLUMNS, *header])
        self._file.flush()

    def write_chunk(self, raw: pd.DataFrame, outcomes: Sequence[Outcome]) -> None:
        """Write `raw`'s rows (original columns) beside their outcomes, in order."""
        raw = raw.apply(defuse_formulas)
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
                raw.index, outcomes, raw.itertuples(index=False, name=None), strict=True
            )
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def defuse_formulas(column: pd.Series) -> pd.Series:
    """The column with every cell a spreadsheet would run as a formula made text."""
    return column.mask(column.str.contains(FORMULA_START, regex=True), "'" + column)


def defuse_formula(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
