from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from affelios_import.config import ImportConfig
from affelios_import.kinds import get
from affelios_import.kinds.base import Kind
from affelios_import.outcome import Outcome, Status, StopReason
from affelios_import.send.submit import Submitter
from affelios_import.wire.endpoint import Endpoint, parse_retry_after, retry_after_of

CUSTOMERS, TRANSACTIONS = get("customers"), get("transactions")
EVERY_KIND = [pytest.param(k, id=k.name) for k in (CUSTOMERS, TRANSACTIONS)]


def taken(kind: Kind) -> tuple[httpx.Response, Status]:
    """A good answer to a row of `kind`, and the status it gives the row."""
    if kind is TRANSACTIONS:
        return httpx.Response(202), Status.ACCEPTED
    return httpx.Response(201, json={"id": "x"}), Status.CREATED


Handler = Callable[[httpx.Request], httpx.Response]
BODY = b'{"externalId":"C1","externalBrandId":"b","registrationDate":"2025-06-28T19:29:48Z"}'


def endpoint(
    handler: Callable[..., object], *, headers: dict[str, str] | None = None, kind: Kind = CUSTOMERS
) -> Endpoint:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return Endpoint(
        transport, base_url="https://api.test", headers=headers or {}, timeout=5, path=kind.path
    )


def send(
    handler: Handler,
    *,
    kind: Kind = CUSTOMERS,
    retries: int = 3,
    sleeps: list[float] | None = None,
) -> Outcome:
    async def go() -> Outcome:
        config = ImportConfig(retries=retries, backoff_base=0.001, backoff_max=0.01)
        submitter = Submitter(endpoint(handler, kind=kind), kind=kind, config=config)
        if sleeps is not None:
            original = submitter._sleep_unless_stopped

            async def record(seconds: float) -> None:
                sleeps.append(seconds)
                await original(0)

            submitter._retrying.sleep = record  # type: ignore[assignment]
        return await submitter.send(BODY)

    return asyncio.run(go())


def answers(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that answers `responses` in turn (an exception: the transport raises it)."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def test_created_carries_the_returned_id_and_the_body_is_sent_as_given() -> None:
    handler, seen = answers(httpx.Response(201, json={"id": "abc123", "externalId": "C1"}))
    assert send(handler) == Outcome(
        status=Status.CREATED, affelios_id="abc123", http_status=201, attempts=1
    )
    assert seen[0].url.path == "/api/v1/customer"
    assert seen[0].content == BODY


def test_409_is_exists_when_it_says_so_with_its_body_kept() -> None:
    body = {"errors": ["customer C1 already exists for brand b"]}
    handler, _ = answers(httpx.Response(409, json=body))
    outcome = send(handler)
    assert (outcome.status, outcome.http_status) == (Status.EXISTS, 409)
    assert outcome.error == 'HTTP 409: {"errors":["customer C1 already exists for brand b"]}'


@pytest.mark.parametrize("body", ['{"errors":["version conflict, try later"]}', ""])
def test_a_409_that_names_another_conflict_is_failed_not_exists(body: str) -> None:
    handler, _ = answers(httpx.Response(409, text=body))
    outcome = send(handler)
    assert (outcome.status, outcome.http_status, outcome.maybe_created) == (
        Status.FAILED,
        409,
        False,
    )
    assert outcome.error.startswith("HTTP 409, a conflict other than an existing customer: ")
    assert outcome.error.endswith(body or "no body")


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_other_4xx_fail_at_once_with_an_excerpt_of_the_body(kind: Kind) -> None:
    handler, seen = answers(httpx.Response(422, text="brand   not\nconfigured " + "x" * 400))
    outcome = send(handler, kind=kind)
    assert outcome.status is Status.FAILED
    assert outcome.http_status == 422
    assert outcome.error.startswith("HTTP 422: brand not configured xxx")
    assert len(outcome.error) < 230
    assert len(seen) == 1


@pytest.mark.parametrize("kind", EVERY_KIND)
@pytest.mark.parametrize("code", [401, 403])
def test_auth_refusal_stops_the_run(code: int, kind: Kind) -> None:
    async def go() -> tuple[Outcome, bool, str]:
        refuse = endpoint(lambda r: httpx.Response(code), kind=kind)
        submitter = Submitter(refuse, kind=kind, config=ImportConfig(retries=3))
        outcome = await submitter.send(BODY)
        return outcome, submitter.stop.is_set(), submitter.stop_reason

    outcome, stopped, reason = asyncio.run(go())
    assert (outcome.status, outcome.attempts) == (Status.FAILED, 1)
    assert stopped
    assert f"(HTTP {code})" in reason


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_one_request_goes_alone_until_the_first_answer(kind: Kind) -> None:
    in_flight = peak = 0

    async def go() -> list[Outcome]:
        async def handler(request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return taken(kind)[0]

        submitter = Submitter(
            endpoint(handler, kind=kind), kind=kind, config=ImportConfig(retries=0)
        )
        first = asyncio.create_task(submitter.send(BODY))
        await asyncio.sleep(0)
        others = [submitter.send(BODY) for _ in range(9)]
        await asyncio.sleep(0.005)
        assert peak == 1
        return [await first, *await asyncio.gather(*others)]

    outcomes = asyncio.run(go())
    assert {o.status for o in outcomes} == {taken(kind)[1]}
    assert peak == 9  # then everyone at once


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_a_key_echoed_in_an_error_body_is_blanked(kind: Kind) -> None:
    async def go() -> Outcome:
        refuse = endpoint(
            lambda r: httpx.Response(401, text="bad key s3cr3t"),
            headers={"X-Api-Key": "s3cr3t"},
            kind=kind,
        )
        return await Submitter(refuse, kind=kind, config=ImportConfig(retries=0)).send(BODY)

    assert asyncio.run(go()).error == "HTTP 401: the API refused the key: bad key [key]"


@pytest.mark.parametrize(
    ("kind", "code"),
    [pytest.param(k, code, id=f"{k.name}-{code}") for k in (CUSTOMERS, TRANSACTIONS)
     for code in (429, 500, 502, 503, 504) if k.repeatable(code, written=True)],
)  # fmt: skip
def test_what_the_kind_repeats_is_retried_with_backoff(kind: Kind, code: int) -> None:
    good, status = taken(kind)
    handler, seen = answers(httpx.Response(code), httpx.Response(code), good)
    outcome = send(handler, kind=kind)
    assert (outcome.status, outcome.attempts) == (status, 3)
    assert len(seen) == 3


def test_timeouts_and_dropped_connections_are_retried_then_fail() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise httpx.ReadTimeout("slow", request=request)
        raise httpx.RemoteProtocolError("dropped", request=request)

    outcome = send(handler, retries=3)
    assert outcome.status is Status.FAILED
    assert outcome.attempts == 4 == calls
    assert outcome.error == "gave up after 4 attempts: connection lost (RemoteProtocolError)"


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_retry_after_of_a_server_error_is_honoured_by_its_row(kind: Kind) -> None:
    good, status = taken(kind)
    handler, _ = answers(
        httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(503), good
    )
    sleeps: list[float] = []
    assert send(handler, kind=kind, sleeps=sleeps).status is status
    assert sleeps[0] == 7
    assert 0 <= sleeps[1] <= 0.01  # no Retry-After: the jittered backoff


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_a_throttled_row_does_not_sleep_it_goes_back_through_the_pace(kind: Kind) -> None:
    good, status = taken(kind)
    handler, seen = answers(httpx.Response(429), good)
    sleeps: list[float] = []
    assert send(handler, kind=kind, sleeps=sleeps).status is status
    assert sleeps == [0.0] and len(seen) == 2


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_a_stop_ends_the_runs_retry_after_pause_at_once(kind: Kind) -> None:
    # The first 429's Retry-After pauses the whole run; a stop (Ctrl-C) must not wait it
    # out (it waited the whole grace period before).
    handler, seen = answers(httpx.Response(429, headers={"Retry-After": "300"}))

    async def go() -> Outcome:
        submitter = Submitter(
            endpoint(handler, kind=kind), kind=kind, config=ImportConfig(retries=3)
        )
        sending = asyncio.create_task(submitter.send(BODY))
        while not seen:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the row is back in the pace, waiting out the pause
        submitter.stop_run(StopReason.INTERRUPTED, "stopped")
        return await asyncio.wait_for(sending, 10)  # not 300 s

    outcome = asyncio.run(go())
    assert outcome.attempts == 1 and len(seen) == 1


def test_parse_retry_after_takes_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("12") == 12
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 30
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=now.timestamp()) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("999999") == 300
    for odd in ("²", "٣", "9" * 5000, "Mon, 99 Foo 2026 99:99:99 GMT", "\x00"):
        assert parse_retry_after(odd) in (None, 300), odd  # never an exception


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [("Retry-After", "7")],
        [("retry-after", " 7 "), ("Content-Type", "application/json")],
        [("RETRY-AFTER", "3"), ("Retry-After", "4")],  # two: joined, as httpx joins them
        [("Retry-After", "Thu, 01 Jan 2099 00:00:00 GMT")],
        [(b"Retry-After", b"\xb2")],  # not ASCII: neither reads a wait in it
        [(b"Retry-After", "²".encode())],
        [("X-Retry-After", "5")],
    ],
)
def test_retry_after_is_read_as_headers_get_reads_it(
    fields: list[tuple[str, str]] | list[tuple[bytes, bytes]],
) -> None:
    headers = httpx.Headers(fields)
    assert retry_after_of(headers) == parse_retry_after(headers.get("Retry-After"))


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="OK"),
        httpx.Response(201, html="<html><body>Down for maintenance</body></html>"),
        httpx.Response(201, json={"externalId": "C1"}),
        httpx.Response(201, json={"id": None}),
        httpx.Response(201, json={"id": ""}),
        httpx.Response(201, json={"id": True}),
        httpx.Response(201, json=[{"id": "x"}]),
        httpx.Response(202),
        httpx.Response(204),
    ],
)
def test_a_2xx_without_a_customer_id_is_not_a_creation(answer: httpx.Response) -> None:
    handler, _ = answers(answer)
    outcome = send(handler)
    assert (outcome.status, outcome.affelios_id, outcome.maybe_created) == (
        Status.FAILED,
        "",
        True,
    )
    assert outcome.error.startswith(f"HTTP {answer.status_code} without a customer id (")
    assert outcome.error.endswith("the API may have created it: the next run will tell")


def test_a_numeric_id_is_an_id() -> None:
    handler, _ = answers(httpx.Response(201, json={"id": 12345}))
    assert send(handler).affelios_id == "12345"


def test_a_redirect_is_failed_and_names_where_without_credentials() -> None:
    handler, seen = answers(
        httpx.Response(301, headers={"Location": "https://u:p@api.test/login?next=x"})
    )
    outcome = send(handler)
    assert (outcome.status, outcome.http_status, len(seen)) == (Status.FAILED, 301, 1)
    assert outcome.error == (
        "HTTP 301: the API redirected to https://api.test/login: check --base-url"
    )


@pytest.mark.parametrize(
    ("base_url", "path"),
    [
        ("https://api.test", "/api/v1/customer"),
        ("https://gw.test/affelios/", "/affelios/api/v1/customer"),
    ],
)
def test_the_create_path_goes_under_the_base_url(base_url: str, path: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "x"})

    endpoint = Endpoint(
        httpx.MockTransport(handler),
        base_url=base_url,
        headers={},
        timeout=5,
        path="/api/v1/customer",
    )
    asyncio.run(endpoint.post(BODY))
    assert (seen[0].url.host, seen[0].url.path) == (httpx.URL(base_url).host, path)


def test_a_409_says_exists_anywhere_in_what_was_read_not_only_in_the_excerpt() -> None:
    body = '{"trace": "' + "x" * 500 + '", "message": "customer already exists"}'
    handler, _ = answers(httpx.Response(409, text=body))
    outcome = send(handler)
    assert outcome.status is Status.EXISTS
    assert len(outcome.error) <= 210  # the excerpt is still short


# Transactions: sent at most once (kinds.transactions), answer by answer.


def test_202_is_accepted_and_200_or_201_created_with_the_id_if_any() -> None:
    accepted = send(answers(httpx.Response(202))[0], kind=TRANSACTIONS)
    assert (accepted.status, accepted.http_status) == (Status.ACCEPTED, 202)
    created = send(answers(httpx.Response(201, json={"id": "tx9"}))[0], kind=TRANSACTIONS)
    assert (created.status, created.affelios_id) == (Status.CREATED, "tx9")
    assert send(answers(httpx.Response(200))[0], kind=TRANSACTIONS).status is Status.CREATED


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(503),
     httpx.ConnectError("refused")],
)  # fmt: skip
def test_a_transaction_that_provably_did_not_reach_the_api_is_retried(
    answer: httpx.Response | Exception,
) -> None:
    handler, seen = answers(answer, httpx.Response(202))
    outcome = send(handler, kind=TRANSACTIONS)
    assert (outcome.status, len(seen)) == (Status.ACCEPTED, 2)


@pytest.mark.parametrize(
    ("answer", "said"),
    [(httpx.Response(500), "HTTP 500"), (httpx.Response(502), "HTTP 502"),
     (httpx.Response(504), "HTTP 504"), (httpx.ReadTimeout("slow"), "timed out"),
     (httpx.RemoteProtocolError("dropped"), "after the request was sent"),
     (httpx.Response(204), "HTTP 204"),
     (httpx.Response(200, text="<html>maintenance</html>"), "HTTP 200 (<html>maintenance")],
)  # fmt: skip
def test_a_transaction_that_may_have_reached_the_api_is_unconfirmed_and_never_sent_again(
    answer: httpx.Response | Exception, said: str
) -> None:
    handler, seen = answers(answer, httpx.Response(202))
    outcome = send(handler, kind=TRANSACTIONS)
    assert (outcome.status, len(seen)) == (Status.UNCONFIRMED, 1)
    assert said in outcome.error
    assert "release it (with the command that ends this message)" in outcome.error
    assert outcome.code == "unconfirmed"


def test_a_refused_transaction_is_failed_and_429s_without_end_give_up_unsent() -> None:
    handler, _ = answers(httpx.Response(422, json={"errors": ["bad"]}))
    refused = send(handler, kind=TRANSACTIONS)
    assert (refused.status, refused.http_status) == (Status.FAILED, 422)
    handler, seen = answers(*[httpx.Response(429, headers={"Retry-After": "0"})] * 4)
    gave_up = send(handler, kind=TRANSACTIONS)
    assert (gave_up.status, len(seen), gave_up.maybe_created) == (Status.FAILED, 4, False)


def test_a_transaction_refused_after_a_503_is_failed_with_nothing_taken() -> None:
    handler, seen = answers(httpx.Response(503), httpx.Response(422))
    outcome = send(handler, kind=TRANSACTIONS)
    assert (outcome.status, len(seen), outcome.maybe_created) == (Status.FAILED, 2, False)


class _BrokenBody(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"id": '
        raise RuntimeError("a body that breaks its reader")


@pytest.mark.parametrize(
    ("kind", "status", "code", "maybe"),
    [(CUSTOMERS, Status.FAILED, "answer_unreadable", True),
     (TRANSACTIONS, Status.UNCONFIRMED, "unconfirmed", False)],
)  # fmt: skip
def test_an_answer_that_cannot_be_read_is_in_doubt_not_lost(
    kind: Kind, status: Status, code: str, maybe: bool
) -> None:
    """Whatever breaks while an answer is read, the row gets an outcome that keeps it
    in the journal (and the run goes on); it is not sent again by this run."""
    handler, seen = answers(httpx.Response(201, stream=_BrokenBody()), *taken(kind)[:1])
    outcome = send(handler, kind=kind)
    assert (outcome.status, outcome.code, outcome.maybe_created) == (status, code, maybe)
    assert "the answer could not be read (RuntimeError)" in outcome.error
    assert len(seen) == 1
