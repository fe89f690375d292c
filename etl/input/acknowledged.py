"""Rows a person acknowledged as never importable (`--acknowledged FILE`).

Some rows can never go green: an empty id in the source system, a row of another brand,
a customer the API refuses as it is. Left alone, each comes back `invalid` every night
and the job never exits 0. The acknowledged file names them, each with a reason: a row
of the input that it names is `acknowledged`, not sent and not a row to fix (exit 0),
and the summary and the report list it apart, with its reason.

The file (CSV, or a workbook) has a `reason` column and some of the input's columns (by
the input's names, or by the API's field names): a row of the input is acknowledged when
its values in those columns are the file's, exactly. So the file may hold a record's key
alone (`externalBrandId`, `externalId`: that record, whatever its other values), or whole
rows copied from an errors file (those rows exactly as they were: once one is changed, it
is checked and sent again). The columns an errors or results file adds (`source_row`,
`key_check`, `to_do`, `error`, `status`, ...) are not the row's and are not compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from affelios_import.errors import SetupError
from affelios_import.input.columns import ColumnMap, fields_of
from affelios_import.input.read import column_names
from affelios_import.kinds.base import Kind

REASON = "reason"
# The columns affelios-import adds to a row in its results and errors files.
ADDED = frozenset(
    {
        "row", "status", "affelios_id", "http_status", "attempts", "error", "error_kind",
        "source_row", "key_check", "to_do",
    }
)  # fmt: skip


@dataclass
class Acknowledged:
    """The acknowledged rows of one file, and which of them the input has had so far."""

    name: str  # the file, as messages name it
    # Each compared column: (True, the input chunk's column) or (False, the API field).
    columns: list[tuple[bool, str]]
    reasons: dict[tuple[str, ...], tuple[int, str]]  # values -> (its row in the file, why)
    matched: set[int] = field(default_factory=set)  # rows of the file an input row matched

    @classmethod
    def of(
        cls, name: str, rows: pd.DataFrame, header: tuple[str, ...], *, input: ColumnMap, kind: Kind
    ) -> Acknowledged:
        """The acknowledged rows of a file read as text (`rows`, its `header`), compared
        with the input of `input`'s columns; raises SetupError naming what is wrong."""
        if REASON not in header:
            raise SetupError(
                f"{name}: no column {REASON!r}: each acknowledged row says why it will never "
                f"be importable (columns found: {', '.join(header) or '(none)'})"
            )
        names = column_names(header)
        compared = [(h, n) for h, n in zip(header, names, strict=True) if h not in (REASON, *ADDED)]
        if not compared:
            raise SetupError(
                f"{name}: no column of the input beside {REASON!r}: name the rows by the "
                "input's columns (externalBrandId and externalId, say), or copy them from "
                "an errors file"
            )
        columns = [_column(name, h, input=input, kind=kind) for h, _ in compared]
        reasons = {}
        why = rows[names[header.index(REASON)]].to_numpy(dtype=object).tolist()
        values = zip(*(rows[n].to_numpy(dtype=object).tolist() for _, n in compared), strict=True)
        for number, (key, reason) in enumerate(zip(values, why, strict=True), start=1):
            if not reason.strip():
                raise SetupError(
                    f"{name}: row {number}, column {REASON!r} is empty: say why the row will "
                    "never be importable"
                )
            reasons[tuple(key)] = (number, reason.strip())
        return cls(name=name, columns=columns, reasons=reasons)

    def matches(self, raw: pd.DataFrame, frame: pd.DataFrame) -> Iterable[tuple[int, str]]:
        """The positions of the chunk's rows (`raw` as read, `frame` its contract fields)
        that the file acknowledges, each with its reason."""
        if not self.reasons:
            return []
        empty = np.full(len(raw), "", dtype=object)
        arrays = []
        for as_read, name in self.columns:
            table = raw if as_read else frame
            arrays.append(table[name].to_numpy(dtype=object) if name in table else empty)
        found = []
        for position, key in enumerate(zip(*(a.tolist() for a in arrays), strict=True)):
            if (hit := self.reasons.get(key)) is not None:
                self.matched.add(hit[0])
                found.append((position, hit[1]))
        return found

    @property
    def unmatched(self) -> int:
        """Rows of the file that no row of the input read so far matched."""
        return len({number for number, _ in self.reasons.values()} - self.matched)


def _column(name: str, wanted: str, *, input: ColumnMap, kind: Kind) -> tuple[bool, str]:
    """Where a column of the acknowledged file is in the input: a column of that name
    (as read), else the API field of that name (or alias) that the input has."""
    header = list(input.header)
    if wanted in header:
        return True, column_names(input.header)[header.index(wanted)]
    places = fields_of([wanted], kind=kind)
    had = (*input.to_field.values(), "externalBrandId")  # the brand: --brand may give it
    if places and (field_name := next(iter(places))) in had:
        return False, field_name
    raise SetupError(
        f"{name}: column {wanted!r} is neither a column of the input nor a field it has "
        f"(its columns: {', '.join(header) or '(none)'}); name the rows by the input's "
        "columns, as its errors file does"
    )
