"""Check a chunk with the pandera schema; bad rows become messages, not exceptions."""

from __future__ import annotations

import pandas as pd
from pandera.errors import SchemaErrors

from schemas.customer import customer_schema

MAX_VALUE_CHARS = 60


def _show(value: object) -> str:
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    if not text:
        return "empty"
    return repr(text) if text.strip() else f"{text!r} (blank)"


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
            f"{col} {_show(value)}: expected {check}"
            for col, value, check in zip(
                cases["column"], cases["failure_case"], cases["check"], strict=True
            )
        ]
        by_row = pd.Series(messages, index=cases["_row"].to_numpy(), dtype=str)
        return by_row.groupby(level=0, sort=True).agg("; ".join).to_frame("error")
    return pd.DataFrame({"error": pd.Series([], dtype=str)})
