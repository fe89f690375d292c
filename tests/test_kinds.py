"""Each kind's rules as pure decisions, table by table: no HTTP, no journal, no files.

The stages ask the kind (see `affelios_import.kinds.base.Kind`); these tables are the
rules a reader checks when "a transaction is never sent twice" is in question.
"""

from __future__ import annotations

import json

import httpx
import pytest

from affelios_import import kinds
from affelios_import.keys import Entry
from affelios_import.kinds.base import Held, Kind
from affelios_import.outcome import Outcome, Status
from affelios_import.redact import Redactor
from affelios_import.wire.endpoint import Answer

CUSTOMERS, TRANSACTIONS = kinds.get("customers"), kinds.get("transactions")
EVERY_KIND = [pytest.param(kinds.get(name), id=name) for name in kinds.NAMES]
NO_KEY = Redactor([])


def answer(status: int, body: bytes = b"", **headers: str) -> Answer:
    return Answer(status, httpx.Headers(headers), body)


def test_every_registered_kind_is_whole() -> None:
    for name in kinds.NAMES:
        kind = kinds.get(name)
        assert kind.name == name
        assert kind.path.startswith("/api/v1/")
        assert set(kind.required) <= set(kind.fields)
        assert {"externalId", "externalBrandId"} <= set(kind.required)
        assert set(kind.aliases.values()) <= set(kind.fields)
        assert set(kind.amounts) <= set(kind.fields)
        assert kind.schema(None) is kind.schema(None)  # built once


# status (None: no answer), written -> (may have acted, may be repeated)
SENDING = {
    "customers": [
        (None, False, False, True),  # refused before sending
        (None, True, True, True),  # a timeout after sending: the API's 409 tells later
        (429, True, False, True),  # the API says it did not act
        (500, True, True, True),
        (502, True, True, True),
        (503, True, False, True),
        (504, True, True, True),
        (201, True, True, False),
        (303, True, True, False),
        (400, True, True, False),
        (409, True, True, False),
    ],
    "transactions": [
        (None, False, False, True),  # refused before sending: provably never arrived
        (None, True, True, False),  # sent, answer lost: never again
        (429, True, False, True),  # the API says it did not act
        (503, True, False, True),
        (500, True, True, False),
        (502, True, True, False),
        (504, True, True, False),
        (202, True, True, False),
        (201, True, True, False),
        (303, True, True, False),
        (400, True, True, False),
    ],
}


@pytest.mark.parametrize(
    ("name", "status", "written", "acted", "repeat"),
    [(name, *row) for name, rows in SENDING.items() for row in rows],
)
def test_whether_an_attempt_acted_and_may_be_repeated(
    name: str, status: int | None, written: bool, acted: bool, repeat: bool
) -> None:
    kind = kinds.get(name)
    assert kind.may_have_acted(status, written=written) is acted
    assert kind.repeatable(status, written=written) is repeat


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_no_kind_repeats_what_may_have_acted_unless_the_api_refuses_repeats(kind: Kind) -> None:
    """The rule under "never twice": a kind that may not be sent twice repeats only
    attempts that provably did not act."""
    if kind.accepts_changes:  # customers: the API refuses a repeat (409)
        return
    for status in (None, *range(200, 600)):
        for written in (False, True):
            if kind.repeatable(status, written=written):
                assert not kind.may_have_acted(status, written=written), (status, written)


# (kind, status, body, attempts) -> (status, code, id, maybe created)
ANSWERS = [
    ("customers", 201, b'{"id": "A1"}', 1, Status.CREATED, "", "A1", False),
    ("customers", 200, b'{"id": 7}', 1, Status.CREATED, "", "7", False),
    ("customers", 202, b"", 1, Status.FAILED, "no_customer_id", "", True),
    ("customers", 200, b"<html>maintenance</html>", 1, Status.FAILED, "no_customer_id", "", True),
    ("customers", 409, b"customer already exists", 1, Status.EXISTS, "", "", False),
    ("customers", 409, b"customer already exists", 2, Status.EXISTS, "", "", False),
    ("customers", 409, b"locked", 1, Status.FAILED, "conflict", "", False),
    # "already" is no evidence: another customer's conflict is one to fix
    (
        "customers",
        409,
        b"username is already taken by another customer",
        1,
        Status.FAILED,
        "conflict",
        "",
        False,
    ),
    ("customers", 409, b"email already in use", 1, Status.FAILED, "conflict", "", False),
    ("customers", 409, b'{"errors":["duplicate externalId"]}', 1, Status.EXISTS, "", "", False),
    ("customers", 303, b"", 1, Status.FAILED, "redirected", "", False),
    ("customers", 400, b"bad date", 1, Status.FAILED, "refused", "", False),
    ("customers", 400, b"bad date", 2, Status.FAILED, "refused", "", True),
    ("customers", 401, b"", 2, Status.FAILED, "key_refused", "", False),
    ("transactions", 202, b"", 1, Status.ACCEPTED, "", "", False),
    ("transactions", 201, b'{"id": "T9"}', 1, Status.CREATED, "", "T9", False),
    ("transactions", 200, b"", 1, Status.CREATED, "", "", False),
    (
        "transactions",
        200,
        b"<html>maintenance</html>",
        1,
        Status.UNCONFIRMED,
        "unconfirmed",
        "",
        False,
    ),
    ("transactions", 204, b"", 1, Status.UNCONFIRMED, "unconfirmed", "", False),
    ("transactions", 500, b"", 1, Status.UNCONFIRMED, "unconfirmed", "", False),
    ("transactions", 504, b"", 2, Status.UNCONFIRMED, "unconfirmed", "", False),
    ("transactions", 303, b"", 1, Status.UNCONFIRMED, "unconfirmed", "", False),
    ("transactions", 301, b"", 1, Status.UNCONFIRMED, "unconfirmed", "", False),
    ("transactions", 400, b"bad amount", 1, Status.FAILED, "refused", "", False),
    ("transactions", 409, b"", 1, Status.FAILED, "conflict", "", False),
]


@pytest.mark.parametrize(
    ("name", "code", "body", "attempts", "status", "error_code", "affelios_id", "maybe"),
    ANSWERS,
)
def test_what_a_final_answer_means(
    name: str,
    code: int,
    body: bytes,
    attempts: int,
    status: Status,
    error_code: str,
    affelios_id: str,
    maybe: bool,
) -> None:
    outcome = kinds.get(name).answered(answer(code, body), attempts=attempts, redact=NO_KEY)
    assert (outcome.status, outcome.code, outcome.affelios_id) == (status, error_code, affelios_id)
    assert (outcome.http_status, outcome.attempts, outcome.maybe_created) == (code, attempts, maybe)


def test_a_row_whose_answer_was_lost() -> None:
    customer = CUSTOMERS.lost("timed out", attempts=2, status=None, code="interrupted_in_flight")
    assert (customer.status, customer.maybe_created) == (Status.FAILED, True)
    assert customer.code == "interrupted_in_flight"
    assert customer.error.endswith("the next run will tell")
    transaction = TRANSACTIONS.lost("timed out", attempts=1, status=None, code="gave_up_timeout")
    assert (transaction.status, transaction.code) == (Status.UNCONFIRMED, "unconfirmed")
    assert "release it (with the command that ends this message)" in transaction.error


SENT = json.dumps({"externalId": "C1", "externalBrandId": "b"}, separators=(",", ":"))
OTHER = b'{"externalId":"C1","externalBrandId":"b","country":"DE"}'


def entry(status: str, affelios_id: str | None = "A1", sent: str | None = SENT) -> Entry:
    return Entry(status, affelios_id, "2026-11-24T02:10:33.120Z", sent)


# (kind, journal entry, today's body or None (invalid today)) -> decision, or the status
HELD = [
    ("customers", entry("created"), SENT.encode(), Held.SAME),
    ("customers", entry("created", sent=None), OTHER, Held.SAME),  # nothing to compare
    ("customers", entry("exists", affelios_id=None), SENT.encode(), Status.SKIPPED),
    ("customers", entry("created"), OTHER, Status.CHANGED),
    ("customers", entry("created"), None, Status.SKIPPED),  # a problem today is a note
    ("customers", entry("sending"), SENT.encode(), Held.RESEND),
    ("customers", entry("sending"), None, Held.AS_IS),
    ("transactions", entry("accepted"), SENT.encode(), Status.SKIPPED),
    ("transactions", entry("created"), OTHER, Status.CORRECTED),  # exit 1: someone looks
    ("transactions", entry("created", sent=None), OTHER, Status.SKIPPED),  # nothing to compare
    ("transactions", entry("accepted"), None, Status.SKIPPED),
    ("transactions", entry("unconfirmed"), SENT.encode(), Status.UNCONFIRMED),
    ("transactions", entry("sending"), SENT.encode(), Status.UNCONFIRMED),  # a crash's
    ("transactions", entry("sending"), None, Status.UNCONFIRMED),
]


@pytest.mark.parametrize(("name", "held", "today", "expected"), HELD)
def test_what_a_journal_entry_means_for_todays_row(
    name: str, held: Entry, today: bytes | None, expected: Held | Status
) -> None:
    decision = kinds.get(name).held(held, today=today, problem="today's row has a bad date")
    if isinstance(expected, Held):
        assert decision is expected
    else:
        assert isinstance(decision, Outcome) and decision.status is expected


def test_a_transaction_held_is_never_sent_again_whatever_its_entry() -> None:
    for status in ("sending", "accepted", "created", "exists", "unconfirmed", "anything"):
        for today in (SENT.encode(), OTHER, None):
            decision = TRANSACTIONS.held(entry(status), today=today, problem="")
            assert isinstance(decision, Outcome), (status, today)
            assert decision.status in (Status.SKIPPED, Status.UNCONFIRMED, Status.CORRECTED)


@pytest.mark.parametrize(
    ("status", "said"),
    [("accepted", "the API accepted it"), ("created", "the API created it"),
     ("exists", "the API already had it")],
)  # fmt: skip
def test_a_held_transaction_says_what_the_api_did_in_words(status: str, said: str) -> None:
    """ "the API exists it" was what an entry `exists` said."""
    outcome = kinds.get("transactions").held(
        Entry(status, None, "2026-11-24T02:10:33.120Z"), today=None, problem=""
    )
    assert isinstance(outcome, Outcome)
    assert outcome.error == f"sent on 2026-11-24: {said}"


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "aff-1"}',
        b'{"id": 7}',
        '{"id": "aff-é"}'.encode(),
        '{"id": "aff-1"}'.encode("utf-16-le"),  # no BOM: json.loads tells it by its NULs
        '{"id": "aff-1"}'.encode("utf-16"),
        '{"id": "aff-1"}'.encode("utf-8-sig"),
        b'{"id": "\xed\xa0\x80"}',  # an encoded surrogate, as json.loads lets it through
        b'{"id": "\xff"}',
        b"{",
        b"",
        b' {"id": "aff-1"}',
    ],
)
def test_an_answer_s_id_is_read_as_json_loads_reads_its_bytes(body: bytes) -> None:
    try:
        record = json.loads(body)
        expected = str(record["id"]) if isinstance(record, dict) else None
    except ValueError:
        expected = None
    assert answer(201, body).affelios_id() == expected
