"""What a `.xlsx`/`.xlsm` sheet's own XML says that the workbook reader (calamine) does
not: how far its cells reach, which cells show a formula's error (`#N/A`), which hold a
formula whose value the file does not hold, and which rows are hidden. calamine reads
all of the first three as empty cells, and hidden rows like the others.

One pass over the sheet part as it unzips, cut into pieces at cell starts so that every
cell is parsed whole; each search is for a short literal (`<f `, `t="e"`, `hidden=`),
so a sheet of plain values costs a quick scan (0.1 s for 100,000 rows).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field

from affelios_import.errors import InputError

# A cell's column of two or three letters (past Z): the usual sheet of a few columns
# matches this nowhere, and its scan stays fast.
_WIDE_CELL = re.compile(rb"r=\"([A-Z][A-Z][A-Z]?)[0-9]")  # no \b: 7 times faster
_ROW_REF = re.compile(rb"<row\b[^>]*?\br=\"([0-9]{1,7})\"")
_FORMULA = re.compile(rb"<f[\s>/]")
# Each starts with a literal (no \b), which the regex engine finds fast: where it
# stands is checked after (an error's `t="e"` must be its cell's type).
_ERROR = re.compile(rb"t=[\"']e[\"']")
_HIDDEN = re.compile(rb"hidden=[\"'](?:1|true)[\"']")
_ROW_NUMBER = re.compile(rb"\sr=[\"']([0-9]{1,7})[\"']")
_CELL_REF = re.compile(rb"\br=[\"']([A-Z]{1,3})([0-9]{1,7})[\"']")
_TYPE = re.compile(rb"\bt=[\"']([A-Za-z]+)[\"']")
_VALUE = re.compile(rb"<v\b[^>]*?(/?)>([^<]*)")
PIECE_BYTES = 1 << 20
CELL_MAX_BYTES = 64 << 20  # a piece never waits longer than this for its last cell to end
MARKED_MAX = 1_000_000  # cells with an error or a formula without a value, at most

FORMULA_WITHOUT_VALUE = "formula_without_value"
CELL_ERROR = "cell_error"


@dataclass
class SheetXml:
    """What the scan found; rows and columns are 0-based."""

    columns: int = 26  # the widest column a cell names (any up to Z counts as Z)
    # row -> column -> (code, what the cell shows): an error (`#N/A`), or a formula
    # without a value
    marked: dict[int, dict[int, tuple[str, str]]] = field(default_factory=dict)
    hidden: set[int] = field(default_factory=set)
    count: int = 0


def column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def scan(book: zipfile.ZipFile, part: str, *, name: str, stale: bool) -> SheetXml:
    """Scan the sheet part `part`. `stale`: the workbook asks to be recalculated when it
    is opened (`fullCalcOnLoad`, as programs that write formulas set it), so no formula's
    stored value is what a spreadsheet would show. Raises InputError past MARKED_MAX."""
    found = SheetXml()
    tail = b""
    with book.open(part) as stream:
        while True:
            chunk = stream.read(PIECE_BYTES)
            text = tail + chunk
            cut = len(text) if not chunk else max(text.rfind(b"<c "), text.rfind(b"<c>"))
            if cut <= 0 and len(text) < CELL_MAX_BYTES:
                cut = 0 if chunk else len(text)
            elif cut <= 0:
                cut = len(text)
            _read_piece(text[:cut], found, stale=stale)
            if found.count > MARKED_MAX:
                raise InputError(
                    f"{name}: the sheet holds more than {MARKED_MAX:,} cells showing an "
                    "error or a formula without a value; fix the sheet, or save it as CSV"
                )
            tail = text[cut:]
            if not chunk:
                return found


def last_row(book: zipfile.ZipFile, part: str) -> int:
    """The last row number (1-based) the sheet part names, read as it unzips."""
    last, tail = 0, b""
    with book.open(part) as stream:
        while chunk := stream.read(PIECE_BYTES):
            text = tail + chunk
            last = max([last, *map(int, _ROW_REF.findall(text))])
            tail = text[-64:]  # a row tag cut by the chunk's end is read whole next
    return last


def _read_piece(piece: bytes, found: SheetXml, *, stale: bool) -> None:
    """Record what `piece` (whole cells and rows only) holds."""
    for letters in _WIDE_CELL.findall(piece):
        found.columns = max(found.columns, column_number(letters))
    for match in _HIDDEN.finditer(piece):
        start = piece.rfind(b"<", 0, match.start())
        tag = piece[start : piece.find(b">", match.start())]
        if tag.startswith(b"<row") and (number := _ROW_NUMBER.search(tag)):
            found.hidden.add(int(number[1]) - 1)
    for match in _ERROR.finditer(piece):
        cell = _cell(piece, match.start())
        if cell is None or (kind := _TYPE.search(cell[0])) is None or kind[1] != b"e":
            continue  # `t="e"` in a cell's text, not its type
        value = _VALUE.search(cell[1])
        shown = value[2].decode("utf-8", "replace").strip() if value is not None else ""
        _mark(found, cell[0], CELL_ERROR, shown or "an error")
    for match in _FORMULA.finditer(piece):
        cell = _cell(piece, match.start())
        if cell is None:
            continue
        tag, body = cell
        kind = _TYPE.search(tag)
        if kind is not None and kind[1] == b"e":
            continue  # an error, marked as such
        value = _VALUE.search(body)
        text = kind is not None and kind[1] == b"str"  # its value may be empty text
        if stale or value is None or not (value[2].strip() or text):
            _mark(found, tag, FORMULA_WITHOUT_VALUE, "")


def _cell(piece: bytes, at: int) -> tuple[bytes, bytes] | None:
    """The start tag and the content of the cell holding position `at` (None if `at` is
    not inside a cell's start tag or content)."""
    start = max(piece.rfind(b"<c ", 0, at), piece.rfind(b"<c>", 0, at))
    if start < 0:
        return None
    tag_end = piece.find(b">", start)
    end = piece.find(b"</c>", tag_end)
    if tag_end < 0 or piece[tag_end - 1 : tag_end] == b"/" or end < at:
        return None  # an empty cell (`<c r="A1"/>`): `at` is past it
    return piece[start:tag_end], piece[tag_end + 1 : end]


def _mark(found: SheetXml, tag: bytes, code: str, shown: str) -> None:
    ref = _CELL_REF.search(tag)
    if ref is None:
        return  # a cell without its reference: where it is, calamine alone knows
    row, column = int(ref[2]) - 1, column_number(ref[1]) - 1
    cells = found.marked.setdefault(row, {})
    if column not in cells:
        cells[column] = (code, shown)
        found.count += 1
