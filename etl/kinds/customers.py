"""Customers: `POST /api/v1/customer`.

The API refuses a repeat (409), so a customer whose answer was lost is sent again and
the 409 tells. A customer counts as created only on an answer that carries its id. The
journal keeps what was sent: a row that would send other values today is `changed`
(the API has no update), until `--accept-changes`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from affelios_import import codes
from affelios_import.keys import Entry
from affelios_import.kinds.base import BRAND_ALIASES, Held, Kind, refusal
from affelios_import.outcome import Outcome, Status
from affelios_import.schemas import customer
from affelios_import.text import arrow_text, json_strings
from affelios_import.wire.endpoint import Answer, excerpt

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

    from affelios_import.redact import Redactor

Body = dict[str, str | bool]

# The words by which a 409 says the customer exists; any other 409 is another conflict.
# What a 409 must say to be evidence that the customer exists (the contract's "the
# resource already exists, or a conflict occurred"): that something exists, or is a
# duplicate, and not that another customer holds a value of this one's ("username is
# already taken by another customer": "already" alone is no evidence).
EXISTS_WORDS = re.compile(r"\bexist(s|ing)?\b|\bduplicate\b", re.IGNORECASE)
OTHER_CONFLICT = re.compile(r"\btaken\b|\bin use\b|\banother\b|\bother\b", re.IGNORECASE)
MAYBE_CREATED = "the API may have created it: the next run will tell"
NOT_TAKEN = frozenset({429, 503})  # answers that say the API did not act


def _says_it_exists(text: str) -> bool:
    return EXISTS_WORDS.search(text) is not None and OTHER_CONFLICT.search(text) is None


EARLIER_ATTEMPT = "an earlier attempt of this run may have created it"


def build_payload(row: Mapping[str, str]) -> Body:
    """Exactly the contract's field names and JSON types; empty values are left out.

    Strings are sent exactly as written in the CSV. Columns the contract does not know
    are not in `row` (the columns stage leaves them behind).
    """
    body: Body = {}
    for name in customer.STRING_FIELDS:
        value = row.get(name, "")
        if value.strip():
            body[name] = value
    for name in customer.BOOLEAN_FIELDS:
        value = row.get(name, "").strip()
        if value:
            body[name] = value.lower() in customer.TRUE_WORDS
    return body


def encode(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def payloads(frame: pd.DataFrame) -> list[bytes]:
    """`encode(build_payload(row))` of every row of `frame`, built column by column in
    Arrow's kernels: each field a column of `,"name":value` pieces (empty where the value
    is blank), joined end to end, the first comma dropped. 1 µs a row, against 5 a row
    at a time. (Not Arrow's join that skips missing pieces: pyarrow 26 drops the rows
    whose pieces are all missing.)"""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces = []
    for name in customer.STRING_FIELDS:
        if name in frame.columns:
            text = arrow_text(frame[name])
            named = pc.binary_join_element_wise(f',"{name}":', json_strings(text), "")
            pieces.append(pc.if_else(pa.array(customer.filled(text)), named, ""))
    for name in customer.BOOLEAN_FIELDS:
        if name in frame.columns:
            word = pc.utf8_lower(pc.utf8_trim_whitespace(arrow_text(frame[name])))
            true = pc.is_in(word, pa.array(sorted(customer.TRUE_WORDS)))
            named = pc.if_else(true, f',"{name}":true', f',"{name}":false')
            pieces.append(pc.if_else(pc.equal(word, ""), "", named))
    if not pieces:
        return [b"{}"] * len(frame)
    fields = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*pieces, ""), 1)
    joined = pc.binary_join_element_wise("{", fields, "}", "")
    return joined.cast(pa.binary()).to_pylist()  # type: ignore[no-any-return]


class Customers(Kind):
    name = "customers"
    path = "/api/v1/customer"
    fields = customer.CONTRACT_FIELDS
    required = customer.REQUIRED_FIELDS
    aliases = {"clickkey": "clickId", **BRAND_ALIASES}  # noqa: RUF012 (read only)
    guarded = {  # noqa: RUF012 (read only)
        r"brand": "externalBrandId",
        r"click|btag|affiliate": "clickId",
        r"(regist|signup).*(date|time|at$)|(date|time).*(regist|signup)": "registrationDate",
    }
    accepts_changes = True
    watched = ("created", "exists", "skipped", "invalid", "failed")

    def schema(self, brand: str | None) -> pa.DataFrameSchema:
        return customer.customer_schema(brand)

    def body(self, row: Mapping[str, str]) -> bytes:
        return encode(build_payload(row))

    def bodies(self, frame: pd.DataFrame) -> list[bytes]:
        return payloads(frame)

    def held(self, entry: Entry, *, today: bytes | None, problem: str) -> Outcome | Held:
        """An entry `sending` (an earlier run died sending it): sent again, and the API's
        409 tells whether that run created it. A customer done is `skipped` (a problem in
        today's row is noted, not counted as a row to fix), or `changed` when today's
        row would send other values than were sent."""
        if not entry.done:
            return Held.RESEND if today is not None else Held.AS_IS
        if today is None:
            return _skipped(entry, today=problem)
        if entry.affelios_id and (entry.sent is None or today == entry.sent.encode()):
            return Held.SAME
        return _compared(entry, today)

    def may_have_acted(self, status: int | None, *, written: bool) -> bool:
        """Any attempt written, but one the API answered 429 or 503: it says it did not act
        (a row stopped while it waits out a long Retry-After was refused, not maybe
        created)."""
        return written if status is None else status not in NOT_TAKEN

    def repeatable(self, status: int | None, *, written: bool) -> bool:
        """429, 5xx and every failed connection: a repeat is refused by the API (409)."""
        return status is None or status == 429 or status >= 500

    def answered(self, answer: Answer, *, attempts: int, redact: Redactor) -> Outcome:
        """`created` only with the id; `exists` on a 409 that says so; else `failed`."""
        status = answer.status
        if 200 <= status < 300 and (affelios_id := answer.affelios_id()) is not None:
            return Outcome(
                status=Status.CREATED, affelios_id=affelios_id, http_status=status,
                attempts=attempts,
            )  # fmt: skip
        if status == 409 and _says_it_exists(answer.text()):  # the whole of what was read
            note = "" if attempts == 1 else f"; {EARLIER_ATTEMPT}"
            error = f"HTTP 409: {excerpt(answer, redact)}{note}"
            return Outcome(status=Status.EXISTS, http_status=status, attempts=attempts, error=error)
        if 200 <= status < 300:
            shown = excerpt(answer, redact) or "no body"
            code = "no_customer_id"
            error = f"HTTP {status} without a customer id ({shown}); {MAYBE_CREATED}"
        else:
            code, error = refusal(answer, redact)
        # A 2xx without the customer proves nothing (a maintenance page, an empty 202, a
        # 204), and an earlier attempt may have created it (it timed out, say): then the
        # journal entry stays `sending`, so the next run sends the row again and the
        # API's 409 tells.
        maybe_created = 200 <= status < 300 or (attempts > 1 and status not in (401, 403))
        return Outcome(
            status=Status.FAILED, http_status=status, attempts=attempts,
            maybe_created=maybe_created, error=error, code=codes.item(code),
        )  # fmt: skip

    def lost(self, detail: str, *, attempts: int, status: int | None, code: str) -> Outcome:
        """`failed`, and maybe created: the journal keeps its entry `sending`, so the next
        run sends it again and the API's 409 tells."""
        return Outcome(
            status=Status.FAILED, http_status=status, attempts=attempts, maybe_created=True,
            error=f"{detail}; {MAYBE_CREATED}", code=codes.item(code),
        )  # fmt: skip


def _imported(entry: Entry) -> str:
    return f"imported {entry.first_recorded_at[:10]}" if entry.first_recorded_at else "imported"


def _skipped(entry: Entry, *, today: str = "") -> Outcome:
    notes = [_imported(entry) if today else "", today]
    if not entry.affelios_id:
        notes.insert(0, "already existed; its id is not known")
    return Outcome(
        status=Status.SKIPPED,
        affelios_id=entry.affelios_id or "",
        error="; ".join(filter(None, notes)),
    )


def _compared(entry: Entry, today: bytes) -> Outcome:
    """`skipped`, or `changed` when `today` is not what was sent for the customer (an
    entry from before the journal kept it has nothing to compare: skipped)."""
    if entry.sent is None or today == entry.sent.encode():
        return _skipped(entry)
    before, body = json.loads(entry.sent), json.loads(today)
    if before == body:  # the same values, written another way
        return _skipped(entry)
    changes = [
        f"{name}: {_shown(before.get(name))} → {_shown(body.get(name))}"
        for name in customer.CONTRACT_FIELDS
        if before.get(name) != body.get(name)
    ]
    return Outcome(
        status=Status.CHANGED,
        affelios_id=entry.affelios_id or "",
        error=f"{_imported(entry)}; changed since: {'; '.join(changes)}; not sent (the API "
        "has no update: change it in Affelios, see the README)",
    )


def _shown(value: object) -> str:
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


KIND = Customers()
