"""Results and errors written as workbooks that Excel cannot mangle (XlsxWriter, rows
streamed to disk as they come): every cell is stored as text and every column formatted
as text (`@`), so that Excel keeps `000123` and date text as written, also when an
analyst types into it; the header row frozen and filterable, the columns sized to fit.
The workbook is put together when it is closed: a killed run leaves none (its journal
still knows every row). Reading a workbook is `input.sheet`'s.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from affelios_import.errors import OutputFailed, SetupError, reason
from affelios_import.input.keycheck import KeyChecks
from affelios_import.input.sheet import CELL_CHARS_MAX, CUT_MARK
from affelios_import.outcome import Status
from affelios_import.output.results import errors_header, results_header, to_fix
from affelios_import.schemas.transaction import SIZED_AMOUNT_PATTERN

if TYPE_CHECKING:
    import xlsxwriter.worksheet

    from affelios_import.plan import PlannedChunk

WRITE_SUFFIX = ".xlsx"
MAX_ROWS = 1_048_576  # Excel's rows a sheet, the header's included
EXCEL_DIGITS = 15  # the significant digits a spreadsheet's number keeps
_AMOUNT = re.compile(SIZED_AMOUNT_PATTERN, re.ASCII)
WIDTH_MIN, WIDTH_MAX = 6, 60  # columns sized to fit their text, within these
# The results' status column, coloured by status: (fill, font).
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    Status.CREATED.value: ("#C6EFCE", "#006100"),
    Status.ACCEPTED.value: ("#C6EFCE", "#006100"),
    Status.EXISTS.value: ("#DDEBF7", "#1F4E78"),
    Status.SKIPPED.value: ("#EDEDED", "#404040"),
    Status.VALID.value: ("#E2EFDA", "#375623"),
    Status.INVALID.value: ("#FFEB9C", "#9C5700"),
    Status.FAILED.value: ("#FFC7CE", "#9C0006"),
    Status.NOT_SENT.value: ("#FCE4D6", "#833C0B"),
    Status.UNCONFIRMED.value: ("#F4B6C2", "#7A0026"),
    Status.CORRECTED.value: ("#F4B6C2", "#7A0026"),
    Status.CLAIMED.value: ("#EDEDED", "#404040"),
}


def is_workbook_name(path: Path) -> bool:
    """Whether an output's name asks for a workbook."""
    return path.suffix.lower() == WRITE_SUFFIX


def check_rows(option: str, path: Path, rows: int) -> None:
    """A workbook output must hold every row: refuse, before anything is sent, a run
    with more data rows than a sheet has room for."""
    if rows > MAX_ROWS - 1:
        raise SetupError(
            f"{option} {path}: {rows:,} rows do not fit in a workbook (Excel's sheets "
            f"hold {MAX_ROWS - 1:,} rows below the header); write a .csv instead"
        )


def exact_number(text: str) -> float | None:
    """The amount `text` as a number a spreadsheet holds exactly, or None: a decimal
    amount (`-12.50`) of at most 15 significant digits (what a spreadsheet's number keeps
    and shows); any other text stays text."""
    if not _AMOUNT.fullmatch(text):
        return None
    digits = text.strip().lstrip("-").replace(".", "").lstrip("0")
    return float(text) if len(digits.rstrip("0") or "0") <= EXCEL_DIGITS else None


class _Book:
    """One sheet, written a row at a time with every cell stored as text."""

    def __init__(self, path: Path, *, header: Sequence[str], title: str, what: str) -> None:
        import xlsxwriter

        self.path, self.what = path, what
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.book = xlsxwriter.Workbook(
                str(path),
                {
                    "constant_memory": True,  # rows go to disk as they are written
                    "strings_to_numbers": False,
                    "strings_to_formulas": False,
                    "strings_to_urls": False,
                },
            )
        except OSError as exc:
            raise SetupError(f"{path}: cannot write the {what} here ({reason(exc)})") from exc
        self.sheet: xlsxwriter.worksheet.Worksheet = self.book.add_worksheet(title)
        self.text = self.book.add_format({"num_format": "@"})
        heading = self.book.add_format({"num_format": "@", "bold": True})
        self.header = list(header)
        self.widths = [min(max(len(name), WIDTH_MIN), WIDTH_MAX) for name in self.header]
        for column, name in enumerate(self.header):
            self.sheet.write_string(0, column, name, heading)
        self.rows = 0  # data rows written
        self.closed = False

    def write_rows(self, rows: Iterator[Sequence[str]] | Sequence[Sequence[str]]) -> None:
        sheet, widths, text = self.sheet, self.widths, self.text
        for values in rows:
            self.rows += 1
            for column, value in enumerate(values):
                if not value:
                    continue
                if len(value) > CELL_CHARS_MAX:
                    # An input cell this long made its row invalid while it was planned
                    # (see plan.Refusals); this keeps what fits, and says so.
                    value = value[: CELL_CHARS_MAX - len(CUT_MARK)] + CUT_MARK
                if not self.write_value(self.rows, column, value):
                    sheet.write_string(self.rows, column, value, text)
                if len(value) > widths[column] and widths[column] < WIDTH_MAX:
                    widths[column] = min(len(value), WIDTH_MAX)

    def finish(self) -> None:
        """Put the workbook together; raises OutputFailed if it cannot be written."""
        if self.closed:
            return
        self.closed = True
        sheet, last = self.sheet, len(self.header) - 1
        for column, width in enumerate(self.widths):
            sheet.set_column(column, column, width + 2, self.text)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(self.rows, 1), last)
        self.decorate()
        try:
            self.book.close()
        except Exception as exc:  # XlsxWriter's own errors and OSError alike
            why = reason(exc)
            raise OutputFailed(f"{self.path}: cannot write the {self.what} ({why})") from exc

    def write_value(self, row: int, column: int, value: str) -> bool:
        """Write a cell otherwise than as text, if this workbook does (True if so)."""
        return False

    def decorate(self) -> None:
        """Anything more a kind of workbook shows, added before it is put together."""

    def close(self) -> None:
        """Put it together if nobody did (a run that failed before its end): a failure
        then only repeats the one that stopped the run."""
        with contextlib.suppress(OutputFailed):
            self.finish()


class ResultsWorkbook(_Book):
    """The results as a workbook: the same columns as the results CSV, every cell as
    text (so no cell needs the CSV's apostrophe against formulas), the status coloured;
    but the amount columns (`amounts`: their places among the input's columns), whose
    amounts are numbers a spreadsheet sums, where a number holds them exactly (see
    `exact_number`; any other stays text)."""

    def __init__(self, path: Path, *, header: Sequence[str], amounts: Sequence[int] = ()) -> None:
        super().__init__(path, header=results_header(header), title="results", what="results")
        offset = len(self.header) - len(header)  # the tool's own columns come first
        self.amounts = frozenset(offset + at for at in amounts)
        self.money = self.book.add_format({"num_format": "#,##0.00##########"})

    def write_value(self, row: int, column: int, value: str) -> bool:
        if column in self.amounts and (number := exact_number(value)) is not None:
            self.sheet.write_number(row, column, number, self.money)
            return True
        return False

    def write_chunk(self, chunk: PlannedChunk) -> None:
        raw = chunk.raw
        columns = [
            [str(row) for row in chunk.rows.tolist()],
            chunk.status.tolist(),
            chunk.affelios_id.tolist(),
            [str(code) if code else "" for code in chunk.http_status.tolist()],
            [str(n) for n in chunk.attempts.tolist()],
            chunk.error.tolist(),
            chunk.error_kind.tolist(),
            *(raw.iloc[:, i].to_numpy(dtype=object).tolist() for i in range(raw.shape[1])),
        ]
        self.write_rows(zip(*columns, strict=True))

    def decorate(self) -> None:
        status = self.header.index("status")
        for value, (fill, font) in STATUS_COLOURS.items():
            self.sheet.conditional_format(
                1,
                status,
                max(self.rows, 1),
                status,
                {
                    "type": "cell",
                    "criteria": "==",
                    "value": f'"{value}"',
                    "format": self.book.add_format({"bg_color": fill, "font_color": font}),
                },
            )


class ErrorsWorkbook(_Book):
    """The rows to fix as a workbook: the input's columns as read, then `source_row`
    and `error` (last), as the errors CSV has them; fixed and saved, it imports as is."""

    def __init__(self, path: Path, *, header: Sequence[str], keys: KeyChecks | None) -> None:
        super().__init__(
            path, header=errors_header(header), title="rows to fix", what="errors file"
        )
        self.keys = keys

    def write_chunk(self, chunk: PlannedChunk) -> None:
        self.write_rows(to_fix(chunk, self.header, self.keys))
