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

What the text of a cell cannot say is marked on its row (see `Fault`): a cell showing a
formula's error (`#N/A`, `#DIV/0!`) or holding a formula whose value the file does not
hold, a cell covered by a merged cell (whose value only its first cell holds), a hidden
row. Such a row is `invalid` (where the cell is in a field that is sent: see
`broken_rows`), never sent with an empty field the analyst did not see. calamine reads
all of these as empty cells: the sheet's own XML tells them apart (`sheetxml`, for
`.xlsx`/`.xlsm`), and calamine tells merged cells.

calamine holds a whole sheet in memory, a cell for every row and column of its extent:
one stray cell at `XFD1048576` would ask for 512 GB (and abort the process). Before a
sheet is read, its extent (a `.xlsx`/`.xlsm` sheet's cell references, scanned as the
file streams) and a ZIP workbook's unzipped size are checked against bounds.
"""

from __future__ import annotations

import csv
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from affelios_import import codes
from affelios_import.errors import InputError, SetupError, reason
from affelios_import.input import sheetxml
from affelios_import.input.columns import ColumnMap
from affelios_import.input.read import column_names
from affelios_import.input.sheetxml import SheetXml

# What a sheet may ask of memory: cells of its extent (rows x columns; 32 bytes each in
# calamine, so 2 GB), and a ZIP workbook's unzipped size (a 6 MB file unzipped to 5
# million rows peaked at 2.7 GB before it was refused).
CELLS_MAX = 64_000_000
EXCEL_ROWS = 1_048_576  # the most rows a sheet has
UNZIPPED_MAX = 1 << 30
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
# A workbook cell holds at most this many characters; what is written longer is cut to
# fit, ending with the mark (and a row holding a cell so cut is never sent: the rest of
# its text is lost).
CELL_CHARS_MAX = 32_767
CUT_MARK = " …[cut to fit a workbook cell]"

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
    if type(value) is datetime:  # a date-time column's every cell: first (0.9 µs, not 2)
        return _moment_text(value)
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
    if isinstance(value, datetime):
        return _moment_text(value)
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}T00:00:00.000Z"
    if isinstance(value, time):
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return str(value)


_HALF_MS = timedelta(microseconds=500)


def _moment_text(value: datetime) -> str:
    """A date-time to the nearest millisecond, written as a Zulu timestamp (a zone it
    carries is dropped: calamine gives none)."""
    moment = value + _HALF_MS
    if moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


@dataclass
class Sheet:
    """One sheet, opened: its rows as text (the header first), where they start, and what
    the text does not say (0-based sheet rows and columns)."""

    name: str
    rows: Iterator[list[str]]
    start: tuple[int, int] = (0, 0)  # the sheet row and column of the first row's first cell
    xml: SheetXml | None = None  # what a .xlsx/.xlsm sheet's XML says
    merged: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)


@dataclass(frozen=True)
class Fault:
    """What a cell (or a row) shows that its text does not say."""

    column: int  # its place in the row, 0-based; -1: the whole row
    code: str  # a code of `codes.CODES`
    where: str  # the cell (`F2`), or the sheet's row number
    detail: str = ""  # what it shows (`#N/A`), or the merged cell (`F2:F3`)


def sheet_rows(path: Path, *, name: str, sheet: str | None) -> tuple[str, Iterator[list[str]]]:
    """The sheet's name and its rows as text, the header first; raises InputError."""
    opened = open_sheet(path, name=name, sheet=sheet)
    return opened.name, opened.rows


def open_sheet(path: Path, *, name: str, sheet: str | None) -> Sheet:
    """Open one sheet (see `Sheet`); raises InputError."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        names = book.sheet_names
        if sheet is None:
            sheet = _default_sheet(path, book, name=name)
        elif sheet not in names:
            listed = ", ".join(repr(n) for n in names)
            raise InputError(f"{name}: no sheet named {sheet!r}; its sheets: {listed}")
        xml = _checked(path, name=name, sheet=sheet)
        opened = book.get_sheet_by_name(sheet)
        rows = opened.iter_rows()
        start = opened.start or (0, 0)
        merged = [(tuple(a), tuple(b)) for a, b in opened.merged_cell_ranges or []]
    except (CalamineError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{name}: cannot be read as a workbook ({exc})") from exc
    # Most cells are text: they skip the call.
    text = ([v if type(v) is str else cell_text(v) for v in row] for row in rows)
    return Sheet(sheet, text, start=start, xml=xml, merged=merged)  # type: ignore[arg-type]


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


def _checked(path: Path, *, name: str, sheet: str) -> SheetXml | None:
    """What the sheet's XML says (a .xlsx/.xlsm sheet; None for other formats), once it
    is known that reading `sheet` takes no more memory than the bounds allow (else
    InputError)."""
    if not zipfile.is_zipfile(path):
        return None  # .xls: a compound file, whose size is its own
    with zipfile.ZipFile(path) as book:
        unzipped = sum(member.file_size for member in book.infolist())
        if unzipped > UNZIPPED_MAX:
            raise InputError(
                f"{name}: the workbook unzips to {unzipped / 2**30:.1f} GB, more than "
                f"{UNZIPPED_MAX / 2**30:.0f} GB: save the sheet as CSV and import that"
            )
        part, stale = _sheet_part(book, sheet)
        if part is None:
            return None  # not a .xlsx/.xlsm sheet: its unzipped size is the bound
        xml = sheetxml.scan(book, part, name=name, stale=stale)
        columns, rows = xml.columns, EXCEL_ROWS
        if columns * rows > CELLS_MAX:  # so wide that the rows are worth counting
            rows = sheetxml.last_row(book, part)
    if rows * columns > CELLS_MAX:
        raise InputError(
            f"{name}: sheet {sheet!r} reaches row {rows:,} and column {columns:,} (a cell "
            f"far from the data, at {column_name(columns)}{rows}?): {rows * columns:,} "
            f"cells, more than {CELLS_MAX:,}; delete what is beyond the data, or save "
            "the sheet as CSV"
        )
    return xml


def _sheet_part(book: zipfile.ZipFile, sheet: str) -> tuple[str | None, bool]:
    """The ZIP member of a .xlsx/.xlsm sheet, found through the workbook's relations,
    and whether the workbook asks to be recalculated when opened (`fullCalcOnLoad`)."""
    import xml.etree.ElementTree as ET

    try:
        workbook = ET.fromstring(book.read("xl/workbook.xml"))
        rels = ET.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ET.ParseError):
        return None, False
    calc = workbook.find(f"{_MAIN}calcPr")
    stale = calc is not None and calc.get("fullCalcOnLoad") in ("1", "true")
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    for element in workbook.iter(f"{_MAIN}sheet"):
        if element.get("name") == sheet:
            target = targets.get(element.get(_REL), "").lstrip("/")
            return (target if target.startswith("xl/") else f"xl/{target}"), stale
    return None, stale


def column_name(number: int) -> str:
    name = ""
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(65 + rest) + name
    return name


@dataclass
class Spooled:
    """A sheet copied as CSV text, and the faults of its data rows (by 0-based data row)."""

    path: Path
    sheet: str
    faults: dict[int, list[Fault]] = field(default_factory=dict)


def spool_sheet(path: Path, *, name: str, sheet: str | None, folder: Path) -> Spooled:
    """Copy one sheet, as text, to a CSV in `folder`. Raises InputError naming the file
    (SetupError if the copy cannot be written)."""
    from python_calamine import CalamineError

    opened = open_sheet(path, name=name, sheet=sheet)
    spooled = Spooled(folder / "sheet.csv", opened.name)
    written = 0
    try:
        with spooled.path.open("w", newline="", encoding="utf-8") as out:
            lines = csv.writer(out, lineterminator="\n")
            data_row = -2  # -1: the header
            for row, faults in _with_faults(opened):
                if any(row) or any(f.column >= 0 for f in faults):
                    lines.writerow(row)
                    data_row += 1
                    if faults and data_row >= 0:
                        spooled.faults[data_row] = faults
                else:
                    out.write("\n")  # a blank line: skipped, as in any CSV
                written += 1
    except (CalamineError, ValueError) as exc:  # calamine reads lazily: a bad cell shows here
        raise InputError(
            f"{name}: sheet {opened.name!r} cannot be read past its row {written} ({exc})"
        ) from exc
    except OSError as exc:
        raise SetupError(
            f"{name}: cannot write a copy of sheet {opened.name!r} in {folder} ({reason(exc)})"
        ) from exc
    return spooled


def _with_faults(sheet: Sheet) -> Iterator[tuple[list[str], list[Fault]]]:
    """Each row of the sheet, with its faults (see `Fault`)."""
    top, left = sheet.start
    xml = sheet.xml or SheetXml()
    merges = deque(sorted(sheet.merged))  # ((first row, column), (last row, column))
    if not merges and not xml.hidden and not xml.marked:  # (most sheets) no row has any
        for row in sheet.rows:
            yield row, []
        return
    covering: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for at, row in enumerate(sheet.rows, start=top):
        while merges and merges[0][0][0] <= at:
            covering.append(merges.popleft())
        covering = [m for m in covering if m[1][0] >= at]
        faults = [Fault(-1, "hidden_row", str(at + 1))] if at in xml.hidden else []
        for column, (code, shown) in sorted(xml.marked.get(at, {}).items()):
            if 0 <= column - left < len(row):
                faults.append(Fault(column - left, code, _ref(at, column), shown))
        for (first_row, first), (last_row, last) in covering:
            merged = f"{_ref(first_row, first)}:{_ref(last_row, last)}"
            for column in range(max(first, left), min(last, left + len(row) - 1) + 1):
                if (at, column) != (first_row, first):
                    faults.append(Fault(column - left, "merged_cell", _ref(at, column), merged))
        yield row, faults


def _ref(row: int, column: int) -> str:
    return f"{column_name(column + 1)}{row + 1}"


def broken_rows(faults: dict[int, list[Fault]], columns: ColumnMap) -> dict[int, tuple[str, str]]:
    """The rows whose faults are in fields that are sent (or are the whole row's): data
    row -> (error kinds, message), as `Source.broken` holds them."""
    names = column_names(columns.header)
    broken = {}
    for data_row, found in faults.items():
        kinds, words = [], []
        for fault in found:
            name = names[fault.column] if 0 <= fault.column < len(names) else None
            if fault.column >= 0 and name not in columns.to_field:
                continue  # a column that is not sent
            target = columns.to_field[name] if name is not None else ""
            kinds.append(codes.item(fault.code, target))
            words.append(_say(fault, target))
        if kinds:
            broken[data_row] = ("; ".join(kinds), "; ".join(words))
    return broken


def _say(fault: Fault, target: str) -> str:
    where = f"{target} ({fault.where})"
    if fault.code == "hidden_row":
        return f"row {fault.where} of the sheet is hidden: unhide it to import it, or delete it"
    if fault.code == sheetxml.CELL_ERROR:
        return f"{where} shows {fault.detail}, an error of its formula: fix it in the sheet"
    if fault.code == sheetxml.FORMULA_WITHOUT_VALUE:
        return (
            f"{where} holds a formula whose value the file does not hold (written by a "
            "program, never calculated): open the workbook in a spreadsheet and save it, "
            "or write values"
        )
    first = fault.detail.partition(":")[0]
    return (
        f"{where} is inside the merged cell {fault.detail}, whose value only {first} "
        "holds: unmerge it and fill each row"
    )
