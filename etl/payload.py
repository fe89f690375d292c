"""The one function that turns a validated row into the body of a create request."""

from __future__ import annotations

import json
from collections.abc import Mapping

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


def encode(body: Body) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
