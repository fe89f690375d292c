"""Check a chunk with the pandera schema; bad rows become messages, not exceptions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from affelios_import import codes
from affelios_import.input.read import TEXT
from affelios_import.schemas.customer import (
    EXPECT_BOOLEAN,
    EXPECT_PRESENT,
    EXPECT_ZULU,
    NOT_REAL,
    ZULU_PATTERN,
    zulu,
)
from affelios_import.schemas.transaction import (
    AMOUNT_DIGITS,
    EXPECT_AMOUNT,
    EXPECT_AMOUNT_SIZE,
    SIZED_AMOUNT_PATTERN,
)

MAX_VALUE_CHARS = 60


def _show(value: object) -> str:
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    if not text:
        return "empty"
    return repr(text) if text.strip() else f"{text!r} (blank)"


# A check's "what was expected" text -> its code (see affelios_import.codes).
_CHECK_CODES = {
    EXPECT_PRESENT: "required_missing",
    EXPECT_ZULU: "date_not_zulu",
    EXPECT_BOOLEAN: "boolean_invalid",
    EXPECT_AMOUNT: "amount_invalid",
    EXPECT_AMOUNT_SIZE: "amount_invalid",
}


def _message(column: str, value: object, check: str, label: str = "") -> tuple[str, str]:
    """The message for one failed check (naming the field, and the input's column if
    `label` says it is called otherwise there), and its code (naming the field)."""
    shown = f"{label or column} {_show(value)}"
    if check == EXPECT_ZULU:
        text = str(value)
        if re.fullmatch(ZULU_PATTERN, text, flags=re.ASCII):
            return f"{shown}: {NOT_REAL}", codes.item("date_not_real", column)
        if fix := near_zulu(text):
            message = f"{shown}: expected {check} (did you mean {fix}?)"
            return message, codes.item("date_not_zulu", column)
    if check == EXPECT_AMOUNT and (fix := near_amount(str(value))):
        return f"{shown}: expected {check} (did you mean {fix}?)", codes.item(
            "amount_invalid", column
        )
    code = _CHECK_CODES.get(check, "brand_mismatch")  # the one check whose text varies
    return f"{shown}: expected {check}", codes.item(code, column)


# A date and a time as exports write them: a space or T between, then an offset of zero
# written some other way, or none.
_NEAR_ZULU = re.compile(
    r"\s*(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)"
    r"\s*(?:z|Z|UTC|GMT|[+-]00:?00)?\s*",
    flags=re.ASCII,
)


def near_zulu(text: str) -> str | None:
    """The Zulu timestamp `text` most likely means (`2025-06-28 19:29:48` ->
    `2025-06-28T19:29:48Z`), or None when it is not a near miss of a real one."""
    match = _NEAR_ZULU.fullmatch(text)
    if match is None:
        return None
    fix = f"{match.group(1)}T{match.group(2)}Z"
    real = zulu(pd.Series([fix], dtype=TEXT))
    return fix if bool(real.iloc[0]) else None


_THOUSANDS_POINT_DECIMAL_COMMA = re.compile(r"-?\d{1,3}(\.\d{3})+(,\d+)?", flags=re.ASCII)
_THOUSANDS_COMMA = re.compile(r"-?\d{1,3}(,\d{3})+\.\d+|-?\d{1,3}(,\d{3}){2,}", flags=re.ASCII)
_DECIMAL_COMMA = re.compile(r"-?\d+,(\d{1,2}|\d{4,})", flags=re.ASCII)  # 1,234 could be either
_OTHER_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", flags=re.ASCII)
_CURRENCY = re.compile(r"^[€$£]|[€$£]$|(EUR|USD|GBP)$", flags=re.IGNORECASE)


def near_amount(text: str) -> str | None:
    """The amount `text` most likely means, written as the importer wants it
    (`12,50` -> `12.50`, `1.234,50` -> `1234.50`, `1e3` -> `1000`, `€5` -> `5`), or None
    when there is no one likely meaning (`abc`, `1,234`), or none of a size money has
    (`1e99999999`: a suggestion is never longer than an amount may be)."""
    if len(text) > 4 * AMOUNT_DIGITS:
        return None
    found = _CURRENCY.sub("", re.sub(r"[\s\u00a0]", "", text))
    if _THOUSANDS_POINT_DECIMAL_COMMA.fullmatch(found):
        found = found.replace(".", "").replace(",", ".")
    elif _THOUSANDS_COMMA.fullmatch(found):
        found = found.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(found):
        found = found.replace(",", ".")
    elif _OTHER_NUMBER.fullmatch(found):
        try:
            number = Decimal(found)
        except InvalidOperation:
            return None
        if abs(number.adjusted()) >= AMOUNT_DIGITS:  # before `format` writes it all out
            return None
        found = format(number, "f")
    if found == text or not re.fullmatch(SIZED_AMOUNT_PATTERN, found, flags=re.ASCII):
        return None
    return found


def row_errors(
    frame: pd.DataFrame,
    *,
    brand: str | None,
    schema: Callable[[str | None], pa.DataFrameSchema],
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The invalid rows of `frame` (same index), with columns `error` and `error_kind`.

    A row with several problems gets them all, in column order, in one `error`:
    `registrationDate '28/06/2025': expected an ISO-8601 Zulu timestamp ...`, and their
    codes in the same order in `error_kind` (`date_not_zulu:registrationDate`). A field
    the input calls otherwise is named as both (`labels`, field -> how to name it:
    `column 'Registered' (registrationDate) '28/06/2025': …`).
    """
    labels = labels or {}
    try:
        schema(brand).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        if (broken := cases[cases["index"].isna()]).shape[0]:
            # A check that raised names no row: every row would pass it. A bug: the run
            # stops (as an internal error), rather than send what nothing checked.
            column, check, why = broken.iloc[0][["column", "check", "failure_case"]]
            raise RuntimeError(f"the check of {column} ({check}) failed: {why}") from exc
        order = {name: i for i, name in enumerate(frame.columns)}
        cases = cases.assign(
            _col=cases["column"].map(order), _row=cases["index"].astype("int64")
        ).sort_values(["_row", "_col", "check_number"], kind="stable")
        found = [
            _message(col, value, check, labels.get(col, ""))
            for col, value, check in zip(
                cases["column"], cases["failure_case"], cases["check"], strict=True
            )
        ]
        at = cases["_row"].to_numpy()
        table = pd.DataFrame(
            {"error": [m for m, _ in found], "error_kind": [k for _, k in found]},
            index=at,
            dtype=str,
        )
        return table.groupby(level=0, sort=True).agg("; ".join)
    return pd.DataFrame({"error": pd.Series([], dtype=str), "error_kind": pd.Series([], dtype=str)})
