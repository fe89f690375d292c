"""Check a chunk with the pandera schema; bad rows become messages, not exceptions."""

from __future__ import annotations

import re

import pandas as pd
from pandera.errors import SchemaErrors

from etl.read import TEXT
from schemas.customer import EXPECT_ZULU, NOT_REAL, ZULU_PATTERN, customer_schema, zulu

MAX_VALUE_CHARS = 60


def _show(value: object) -> str:
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    if not text:
        return "empty"
    return repr(text) if text.strip() else f"{text!r} (blank)"


def _message(column: str, value: object, check: str) -> str:
    if check == EXPECT_ZULU:
        text = str(value)
        if re.fullmatch(ZULU_PATTERN, text, flags=re.ASCII):
            return f"{column} {_show(value)}: {NOT_REAL}"
        if fix := near_zulu(text):
            return f"{column} {_show(value)}: expected {check} (did you mean {fix}?)"
    return f"{column} {_show(value)}: expected {check}"


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


def row_errors(frame: pd.DataFrame, *, brand: str | None) -> pd.DataFrame:
    """The invalid rows of `frame` (same index), with one column, `error`.

    A row with several problems gets them all, in column order, in one `error`:
    `registrationDate '28/06/2025': expected an ISO-8601 Zulu timestamp ...`.
    """
    try:
        customer_schema(brand).validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        order = {name: i for i, name in enumerate(frame.columns)}
        cases = cases.assign(
            _col=cases["column"].map(order), _row=cases["index"].astype("int64")
        ).sort_values(["_row", "_col", "check_number"], kind="stable")
        messages = [
            _message(col, value, check)
            for col, value, check in zip(
                cases["column"], cases["failure_case"], cases["check"], strict=True
            )
        ]
        by_row = pd.Series(messages, index=cases["_row"].to_numpy(), dtype=str)
        return by_row.groupby(level=0, sort=True).agg("; ".join).to_frame("error")
    return pd.DataFrame({"error": pd.Series([], dtype=str)})
