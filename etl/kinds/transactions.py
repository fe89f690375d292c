"""Transactions: `POST /api/v1/transaction` (deposits, revenue, commissions).

Nothing documents that the API refuses a repeat, so a transaction sent twice may be
counted twice. **A transaction is sent at most once**: only attempts that provably did
not reach the API (429, 503, a connection refused before the request was written) are
repeated; any other doubt ends as `unconfirmed`, never sent again without a person's
word (`affelios-journal forget --kind transactions`). A transaction the journal holds is
never sent again, whatever today's row says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from affelios_import import codes
from affelios_import.keys import Entry, api_did
from affelios_import.kinds.base import BRAND_ALIASES, Held, Kind, Reference, refusal
from affelios_import.outcome import UNCONFIRMED_ADVICE, Outcome, Status
from affelios_import.schemas import transaction
from affelios_import.wire.endpoint import Answer, excerpt

if TYPE_CHECKING:
    import pandera.pandas as pa

    from affelios_import.redact import Redactor

# Answers that say the API did not act on the request: the only ones sent again.
NOT_TAKEN = frozenset({429, 503})
# A journal entry of these: the API took the transaction.
TAKEN = frozenset({Status.ACCEPTED, Status.CREATED, Status.EXISTS})


def body(row: Mapping[str, str]) -> bytes:
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
    text = json.dumps(strings, ensure_ascii=False, separators=(",", ":"))
    if not amounts:
        return text.encode()
    return f"{text[:-1]}{',' if strings else ''}{','.join(amounts)}}}".encode()


def json_number(amount: str) -> str:
    """A validated amount (`-?digits[.digits]`) as a JSON number of the same value: JSON
    allows no leading zeros (`007.50` -> `7.50`)."""
    sign, digits = ("-", amount[1:]) if amount.startswith("-") else ("", amount)
    whole, point, fraction = digits.partition(".")
    return f"{sign}{whole.lstrip('0') or '0'}{point}{fraction}"


class Transactions(Kind):
    name = "transactions"
    path = "/api/v1/transaction"
    fields = transaction.CONTRACT_FIELDS
    required = transaction.REQUIRED_FIELDS
    aliases = {  # noqa: RUF012 (read only)
        "clickid": "clickKey",
        "externaltransactionid": "externalId",
        **BRAND_ALIASES,
    }
    guarded = {  # noqa: RUF012 (read only)
        r"brand": "externalBrandId",
        r"click|btag": "clickKey",
        r"(customer|player|user|account)(id|no|number|ref)|^(customer|player)$": (
            "externalCustomerId"
        ),
        r"(trans|txn|tx|booking|posted).*(date|time|at$)|^(date|datetime|timestamp)$": (
            "transactionDate"
        ),
        r"amount|deposit|revenue|wager|commission|ggr|ngr|stake": "depositAmount",
    }
    amounts = transaction.AMOUNT_FIELDS
    references = Reference(kind="customers", field="externalCustomerId")
    released_by_default = frozenset({"unconfirmed", "sending"})
    needs_history = True
    intent_per_request = True
    watched = ("accepted", "skipped", "unconfirmed", "invalid", "failed")
    folded_keys = True

    def schema(self, brand: str | None) -> pa.DataFrameSchema:
        return transaction.transaction_schema(brand)

    def body(self, row: Mapping[str, str]) -> bytes:
        return body(row)

    def held(self, entry: Entry, *, today: bytes | None, problem: str) -> Outcome | Held:
        """Never sent again: `skipped` when the API took it, `unconfirmed` when that was
        never learned (whatever today's row holds)."""
        when = f" on {entry.first_recorded_at[:10]}" if entry.first_recorded_at else ""
        if entry.status in TAKEN:
            sent = f"sent{when}: {api_did(entry.status)}"
            changes = _changes(entry.sent, today)
            if changes:
                return Outcome(
                    status=Status.CORRECTED,
                    affelios_id=entry.affelios_id or "",
                    error=f"{sent}; changed since: {'; '.join(changes)}; not sent again (a "
                    "transaction is sent once: correct it in Affelios)",
                    code=codes.item("corrected"),
                )
            return Outcome(status=Status.SKIPPED, affelios_id=entry.affelios_id or "", error=sent)
        return Outcome(
            status=Status.UNCONFIRMED,
            error=f"an earlier run was sending it{when} and never learned whether the API "
            f"took it; {UNCONFIRMED_ADVICE}",
            code=codes.item("unconfirmed_earlier"),
        )

    def may_have_acted(self, status: int | None, *, written: bool) -> bool:
        return written if status is None else status not in NOT_TAKEN

    def repeatable(self, status: int | None, *, written: bool) -> bool:
        """Only what provably did not reach the API: 429, 503, or a request never written."""
        return not self.may_have_acted(status, written=written)

    def answered(self, answer: Answer, *, attempts: int, redact: Redactor) -> Outcome:
        """202 is queued (`accepted`); a 200 or 201 `created`, with the id it carries,
        if any. Any other 2xx, a 200/201 whose body is neither empty nor JSON (a
        maintenance page), a 3xx or a 5xx: the API may have taken it (`unconfirmed`). A
        4xx refused it (`failed`: nothing was taken, the next run sends it again)."""
        status = answer.status
        if status == 202:
            return Outcome(status=Status.ACCEPTED, http_status=status, attempts=attempts)
        if status in (200, 201) and answer.complete and _empty_or_json(answer.body):
            return Outcome(
                status=Status.CREATED, affelios_id=answer.affelios_id() or "",
                http_status=status, attempts=attempts,
            )  # fmt: skip
        if 200 <= status < 400:
            # A 2xx of another shape, or a redirect (a 303 is the usual answer to a POST
            # that was processed): the API may have taken it.
            shown = excerpt(answer, redact) or "no body"
            return self.lost(f"HTTP {status} ({shown})", attempts=attempts, status=status)
        if status >= 500:
            return self.lost(f"HTTP {status}", attempts=attempts, status=status)
        code, error = refusal(answer, redact)
        return Outcome(
            status=Status.FAILED, http_status=status, attempts=attempts, error=error,
            code=codes.item(code),
        )  # fmt: skip

    def lost(
        self, detail: str, *, attempts: int, status: int | None, code: str = "unconfirmed"
    ) -> Outcome:
        """`unconfirmed`: never sent again until a person has checked."""
        return Outcome(
            status=Status.UNCONFIRMED,
            http_status=status,
            attempts=attempts,
            error=f"{detail}: the API may have queued it; {UNCONFIRMED_ADVICE}",
            code=codes.item("unconfirmed"),
        )


def _changes(sent: str | None, today: bytes | None) -> list[str]:
    """Field by field, what today's body changes in the one sent (amounts compared as
    the numbers they are: `7.50` is `7.5`); none when either is not known."""
    if sent is None or today is None or today == sent.encode():
        return []
    before = json.loads(sent, parse_float=Decimal)
    after = json.loads(today, parse_float=Decimal)
    return [
        f"{name}: {_shown(before.get(name))} → {_shown(after.get(name))}"
        for name in transaction.CONTRACT_FIELDS
        if before.get(name) != after.get(name)
    ]


def _shown(value: object) -> str:
    return "''" if value is None else repr(str(value))


def _empty_or_json(body: bytes) -> bool:
    if not body.strip():
        return True
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


KIND = Transactions()
