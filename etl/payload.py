"""The one function that turns a validated row into the body of a create request."""

from __future__ import annotations

import json
from collections.abc import Mapping

from schemas import transaction
from schemas.customer import BOOLEAN_FIELDS, STRING_FIELDS, TRUE_WORDS

Body = dict[str, str | bool]


def build_payload(row: Mapping[str, str]) -> Body:
    """Exactly the contract's field names and JSON types; empty values are left out.

    Strings are sent exactly as written in the CSV. Columns the contract does not know
    are not in `row` (the columns stage leaves them behind).
    """
    body: Body = {}
    for name in STRING_FIELDS:
        value = row.get(name, "")
        if value.strip():
            body[name] = value
    for name in BOOLEAN_FIELDS:
        value = row.get(name, "").strip()
        if value:
            body[name] = value.lower() in TRUE_WORDS
    return body


def encode(body: Mapping[str, str | bool]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def transaction_body(row: Mapping[str, str]) -> bytes:
    """A transaction's request body: its text fields as written, each amount a JSON
    number of exactly the written value (`19.99` is sent as `19.99`: never through a
    float); empty values are left out. `row` is a validated row."""
    strings = {name: value for name in transaction.STRING_FIELDS
               if (value := row.get(name, "")).strip()}  # fmt: skip
    amounts = [
        f'"{name}":{json_number(value)}'
        for name in transaction.AMOUNT_FIELDS
        if (value := row.get(name, "").strip())
    ]
    if not amounts:
        return encode(strings)
    text = json.dumps(strings, ensure_ascii=False, separators=(",", ":"))
    return f"{text[:-1]}{',' if strings else ''}{','.join(amounts)}}}".encode()


def json_number(amount: str) -> str:
    """A validated amount (`-?digits[.digits]`) as a JSON number of the same value: JSON
    allows no leading zeros (`007.50` -> `7.50`)."""
    sign, digits = ("-", amount[1:]) if amount.startswith("-") else ("", amount)
    whole, point, fraction = digits.partition(".")
    return f"{sign}{whole.lstrip('0') or '0'}{point}{fraction}"
