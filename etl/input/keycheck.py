"""A check of each row's key, carried in the errors file (its `key_check` column), so
that a row whose id a spreadsheet changed is refused when the file is imported again.

Opened the default way in Excel or LibreOffice and saved as CSV, an errors file loses
what makes an id text: `0000100` comes back as `100` (another customer), a 16-digit id
as `1.23457E+15`. The check is a short hash of the row's key (`externalBrandId`,
`externalId`, and the record it names: a transaction's `externalCustomerId`), written
as text no spreadsheet takes for a number or a date (`K-4GQ2MZ7A`). A row whose key no
longer hashes to its check is `invalid` (`key_changed`), and the message says what the
spreadsheet did. An empty check is no check: whoever changed an id on purpose empties
it; and a row whose key is what was wrong with it (a missing id, a duplicate) is
written without one, so that fixing it is not refused.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from affelios_import.input.columns import ColumnMap, to_contract
from affelios_import.kinds.base import Kind

COLUMN = "key_check"
PREFIX = "K-"
# A long number as a spreadsheet writes it back: `1.23457E+15`, `1.23456789012346E+015`.
_ROUNDED = re.compile(r"\d(\.\d+)?E\+?\d+", re.IGNORECASE)
_KEY_CODES = ("duplicate_row", "near_duplicate_row")  # fixed by changing the key
_WIDEST_ID = 20  # leading zeros are looked for up to this many digits


def key_fields(kind: Kind) -> tuple[str, ...]:
    """The fields a row's check covers: its key, and the record it names."""
    named = (kind.references.field,) if kind.references is not None else ()
    return ("externalBrandId", "externalId", *named)


def check(values: Sequence[str]) -> str:
    """The check of one row's key values (8 characters of base32, after `K-`)."""
    digest = hashlib.blake2b("\x1f".join(values).encode(), digest_size=5).digest()
    return PREFIX + base64.b32encode(digest).decode()


class KeyChecks:
    """The checks of rows of one input (its columns, `--brand`, its kind)."""

    def __init__(self, columns: ColumnMap, *, brand: str | None, kind: Kind) -> None:
        self._columns, self._brand = columns, brand
        self.fields = key_fields(kind)

    def values(self, frame: pd.DataFrame) -> list[tuple[str, ...]]:
        """Each row's key values, from its contract fields (`to_contract`)."""
        empty = np.full(len(frame), "", dtype=object)
        columns = [
            frame[name].to_numpy(dtype=object) if name in frame.columns else empty
            for name in self.fields
        ]
        return list(zip(*columns, strict=True))

    def of(self, raw: pd.DataFrame, error_kinds: Sequence[str]) -> list[str]:
        """The checks to write beside `raw`'s rows (read as the input has them): none
        for a row whose key is what was wrong with it, or is incomplete; and for a row
        whose key changed since its check was made, that check again (the key it was
        made of is the one to restore)."""
        frame = to_contract(raw, self._columns, brand=self._brand)
        carried = raw[COLUMN].to_numpy(dtype=object) if COLUMN in raw.columns else None
        found = []
        for at, (values, kinds) in enumerate(zip(self.values(frame), error_kinds, strict=True)):
            if carried is not None and "key_changed" in kinds:
                found.append(carried[at])
                continue
            about_key = any(f":{name}" in kinds for name in self.fields) or any(
                code in kinds for code in _KEY_CODES
            )
            complete = all(value.strip() for value in values[:2])
            found.append(check(values) if complete and not about_key else "")
        return found

    def changed(self, values: tuple[str, ...], expected: str) -> str | None:
        """None if `values` are the key the check `expected` was made of; else what a
        spreadsheet seems to have done to them, as a row's error message."""
        if check(values) == expected:
            return None
        for at, value in enumerate(values):
            name = self.fields[at]
            if value.isascii() and value.isdigit():
                for width in range(len(value) + 1, _WIDEST_ID + 1):
                    was = value.zfill(width)
                    if check((*values[:at], was, *values[at + 1 :])) == expected:
                        return (
                            f"{name} {value!r} was {was!r} when this file was written: a "
                            "spreadsheet dropped its leading zeros; not sent. Take the "
                            f"row from the .xlsx errors file, or open the CSV as text"
                        )
            if _ROUNDED.fullmatch(value.strip()):
                return (
                    f"{name} {value!r} is a long number as a spreadsheet rounds it: its "
                    "digits are lost; not sent. Take the row from the original export "
                    "or the .xlsx errors file"
                )
        return (
            f"{', '.join(self.fields)} of this row are not what they were when this file "
            f"was written (its {COLUMN} says so): a spreadsheet may have changed them; not "
            f"sent. If you changed them yourself, empty its {COLUMN} cell"
        )
