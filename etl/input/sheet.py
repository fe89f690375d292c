"""A workbook read as text (python-calamine: `.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`):
one sheet, every cell as the sheet shows it, as text, copied to a temporary CSV that the
rest of the run reads exactly as it reads any CSV (columns, checks, journal, results are
the same).

- text cells unchanged (`000123` stays `000123`);
- whole numbers without a decimal point (`123`, not `123.0`), other numbers in their
  shortest form (`4.5`, `0.1`);
- date-time cells as Zulu timestamps with milliseconds (`2025-06-28T19:29:48.174Z`: a
  cell has no time zone, so it is taken as UTC); a date-only cell is that day's midnight
  (`2025-06-28T00:00:00.000Z`); a time-only cell `19:29:48`; a duration `30:00:00`;
- booleans `true` / `false`; empty cells empty; a row with no value at all is skipped, as
  a blank line of a CSV is.

A cell showing a formula's error (`#N/A`, `#DIV/0!`) reads as empty: calamine does not
tell the two apart.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

from affelios_import.errors import InputError, SetupError

# The first bytes of the workbooks calamine reads: a ZIP (xlsx, xlsm, xlsb, ods) or an
# OLE compound file (xls).
MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
READ_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")


def is_workbook(path: Path) -> bool:
    """Whether the file starts as a workbook does (an unreadable one is not: the CSV
    checks then say why it cannot be read)."""
    try:
        with path.open("rb") as raw:
            return raw.read(4) in MAGIC
    except OSError:
        return False


def cell_text(value: object) -> str:
    """A cell's value as the text the sheet shows (see the module's docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):  # to the nearest millisecond
        moment = (value + timedelta(microseconds=500)).replace(tzinfo=None)
        return moment.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}T00:00:00.000Z"
    if isinstance(value, time):
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return str(value)


def sheet_rows(path: Path, *, name: str, sheet: str | None) -> tuple[str, Iterator[list[str]]]:
    """The sheet's name and its rows as text, the header first; raises InputError."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        names = book.sheet_names
        if sheet is None:
            if not names:
                raise InputError(f"{name}: the workbook has no sheet")
            sheet = names[0]
        elif sheet not in names:
            listed = ", ".join(repr(n) for n in names)
            raise InputError(f"{name}: no sheet named {sheet!r}; its sheets: {listed}")
        rows = book.get_sheet_by_name(sheet).iter_rows()
    except (CalamineError, OSError, ValueError) as exc:
        raise InputError(f"{name}: cannot be read as a workbook ({exc})") from exc
    # Most cells are text: they skip the call.
    return sheet, ([v if type(v) is str else cell_text(v) for v in row] for row in rows)


def spool_sheet(path: Path, *, name: str, sheet: str | None, folder: Path) -> tuple[Path, str]:
    """Copy one sheet, as text, to a CSV in `folder`; return its path and the sheet's
    name. Raises InputError naming the file (SetupError if the copy cannot be written)."""
    from python_calamine import CalamineError

    chosen, rows = sheet_rows(path, name=name, sheet=sheet)
    spool = folder / "sheet.csv"
    written = 0
    try:
        with spool.open("w", newline="", encoding="utf-8") as out:
            lines = csv.writer(out, lineterminator="\n")
            for row in rows:
                if any(row):
                    lines.writerow(row)
                else:
                    out.write("\n")  # a blank line: skipped, as in any CSV
                written += 1
    except (CalamineError, ValueError) as exc:  # calamine reads lazily: a bad cell shows here
        raise InputError(
            f"{name}: sheet {chosen!r} cannot be read past its row {written} ({exc})"
        ) from exc
    except OSError as exc:
        raise SetupError(
            f"{name}: cannot write a copy of sheet {chosen!r} in {folder} ({exc.strerror or exc})"
        ) from exc
    return spool, chosen
