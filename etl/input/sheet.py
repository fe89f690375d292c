"""A workbook read as text (python-calamine: `.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`):
one sheet (by default the one the workbook opens on, if visible, else the first visible
one), every cell as the sheet shows it, as text, copied to a temporary CSV that the
rest of the run reads exactly as it reads any CSV (columns, checks, journal, results are
the same).

- text cells unchanged (`000123` stays `000123`);
- whole numbers without a decimal point (`123`, not `123.0`), other numbers as Excel
  shows them, to 15 significant digits (`4.5`, `0.1`; `10.1+20.2`, the double
  30.299999999999997, is `30.3`);
- date-time cells as Zulu timestamps with milliseconds (`2025-06-28T19:29:48.174Z`: a
  cell has no time zone, so it is taken as UTC); a date-only cell is that day's midnight
  (`2025-06-28T00:00:00.000Z`); a time-only cell `19:29:48`; a duration `30:00:00`;
- booleans `true` / `false`; empty cells empty; a row with no value at all is skipped, as
  a blank line of a CSV is.

A cell showing a formula's error (`#N/A`, `#DIV/0!`) reads as empty: calamine does not
tell the two apart.

calamine holds a whole sheet in memory, a cell for every row and column of its extent:
one stray cell at `XFD1048576` would ask for 512 GB (and abort the process). Before a
sheet is read, its extent (a `.xlsx`/`.xlsm` sheet's cell references, scanned as the
file streams) and a ZIP workbook's unzipped size are checked against bounds.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from affelios_import.errors import InputError, SetupError

# What a sheet may ask of memory: cells of its extent (rows x columns; 32 bytes each in
# calamine, so 2 GB), and a ZIP workbook's unzipped size (a 6 MB file unzipped to 5
# million rows peaked at 2.7 GB before it was refused).
CELLS_MAX = 64_000_000
EXCEL_ROWS = 1_048_576  # the most rows a sheet has
UNZIPPED_MAX = 1 << 30
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
# A row's number, and a cell's column of two or three letters (past Z): the usual sheet
# of a few columns matches the second pattern nowhere, and its scan stays fast.
_ROW_REF = re.compile(rb"<row\b[^>]*?\br=\"([0-9]{1,7})\"")
_WIDE_CELL = re.compile(rb"r=\"([A-Z][A-Z][A-Z]?)[0-9]")  # no \b: 7 times faster

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
        if value.is_integer():
            return str(int(value))
        # As Excel shows it: 15 significant digits (`10.1+20.2` is the double
        # 30.299999999999997, shown and meant as 30.3).
        shown = f"{value:.15g}"
        return str(int(float(shown))) if float(shown).is_integer() else shown
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
            sheet = _default_sheet(path, book, name=name)
        elif sheet not in names:
            listed = ", ".join(repr(n) for n in names)
            raise InputError(f"{name}: no sheet named {sheet!r}; its sheets: {listed}")
        _refuse_too_big(path, name=name, sheet=sheet)
        rows = book.get_sheet_by_name(sheet).iter_rows()
    except (CalamineError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{name}: cannot be read as a workbook ({exc})") from exc
    # Most cells are text: they skip the call.
    return sheet, ([v if type(v) is str else cell_text(v) for v in row] for row in rows)


def _default_sheet(path: Path, book: Any, *, name: str) -> str:
    """The sheet the analyst sees on opening the workbook: the active one (a .xlsx's
    `activeTab`) if it is visible, else the first visible worksheet; never a hidden one."""
    from python_calamine import SheetTypeEnum, SheetVisibleEnum

    visible = [
        meta.name
        for meta in book.sheets_metadata
        if meta.visible == SheetVisibleEnum.Visible and meta.typ == SheetTypeEnum.WorkSheet
    ]
    if not visible:
        raise InputError(f"{name}: the workbook has no visible sheet; give --sheet NAME")
    active = _active_sheet(path, book.sheet_names)
    return active if active is not None and active in visible else str(visible[0])


def _active_sheet(path: Path, names: list[str]) -> str | None:
    """The sheet a .xlsx/.xlsm workbook opens on (its first view's `activeTab`)."""
    import xml.etree.ElementTree as ET

    try:
        with zipfile.ZipFile(path) as book:
            workbook = ET.fromstring(book.read("xl/workbook.xml"))
    except (OSError, KeyError, zipfile.BadZipFile, ET.ParseError):
        return None
    view = workbook.find(f"{_MAIN}bookViews/{_MAIN}workbookView")
    tab = view.get("activeTab", "0") if view is not None else "0"
    return names[int(tab)] if tab.isascii() and tab.isdigit() and int(tab) < len(names) else None


def _refuse_too_big(path: Path, *, name: str, sheet: str) -> None:
    """Raise InputError if reading `sheet` would take more memory than the bounds allow."""
    if not zipfile.is_zipfile(path):
        return  # .xls: a compound file, whose size is its own
    with zipfile.ZipFile(path) as book:
        unzipped = sum(member.file_size for member in book.infolist())
        if unzipped > UNZIPPED_MAX:
            raise InputError(
                f"{name}: the workbook unzips to {unzipped / 2**30:.1f} GB, more than "
                f"{UNZIPPED_MAX / 2**30:.0f} GB: save the sheet as CSV and import that"
            )
        part = _sheet_part(book, sheet)
        if part is None:
            return  # not a .xlsx/.xlsm sheet: its unzipped size is the bound
        rows, columns = _extent(book, part)
    if rows * columns > CELLS_MAX:
        raise InputError(
            f"{name}: sheet {sheet!r} reaches row {rows:,} and column {columns:,} (a cell "
            f"far from the data, at {_column_name(columns)}{rows}?): {rows * columns:,} "
            f"cells, more than {CELLS_MAX:,}; delete what is beyond the data, or save "
            "the sheet as CSV"
        )


def _sheet_part(book: zipfile.ZipFile, sheet: str) -> str | None:
    """The ZIP member of a .xlsx/.xlsm sheet, found through the workbook's relations."""
    import xml.etree.ElementTree as ET

    try:
        workbook = ET.fromstring(book.read("xl/workbook.xml"))
        rels = ET.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ET.ParseError):
        return None
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    for element in workbook.iter(f"{_MAIN}sheet"):
        if element.get("name") == sheet:
            target = targets.get(element.get(_REL), "").lstrip("/")
            return target if target.startswith("xl/") else f"xl/{target}"
    return None


def _extent(book: zipfile.ZipFile, part: str) -> tuple[int, int]:
    """(last row, last column) a sheet part names, read as it unzips: a bound, not a
    count. Any column up to Z counts as Z (the usual sheet matches no wider one, and its
    scan is one quick pass); the rows are counted, in a second pass, only when there
    are so many columns that a sheet of every row Excel allows would be too big."""
    columns = max([26, *map(_column_number, _matches(book, part, _WIDE_CELL))])
    if columns * EXCEL_ROWS <= CELLS_MAX:
        return EXCEL_ROWS, columns
    return max([0, *map(int, _matches(book, part, _ROW_REF))]), columns


def _matches(book: zipfile.ZipFile, part: str, pattern: re.Pattern[bytes]) -> Iterator[bytes]:
    """The first group of each match of `pattern` in the part, as it unzips."""
    tail = b""
    with book.open(part) as stream:
        while chunk := stream.read(1 << 20):
            text = tail + chunk
            yield from pattern.findall(text)
            tail = text[-64:]  # a reference cut by the chunk's end is read whole next


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _column_name(number: int) -> str:
    name = ""
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(65 + rest) + name
    return name


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
