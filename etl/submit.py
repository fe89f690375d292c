"""Send one create request per row, with retries, a global rate limit and a stop switch.

One `Submitter` (and one transport) serves every worker of a run. Answers: a 2xx that
carries the customer's id is `created`; any other 2xx proves nothing and is `failed`
(maybe created: the next run sends it again); a 3xx is `failed` (check --base-url); a
409 that says the customer exists is `exists`, any other 409 `failed`; 401/403 stop the
whole run; other 4xx `failed` with the status and an excerpt of the body; 429, 5xx,
timeouts and dropped connections are retried with exponential backoff and full jitter,
honouring `Retry-After`, then `failed`. A 429 is retried at once through the shared pace
(`etl.throttle`), which slows the whole run instead of putting the row to sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from etl import kinds, ratelimit
from etl.config import ImportConfig
from etl.logs import event
from etl.outcome import UNCONFIRMED_ADVICE, Outcome, Status, StopReason
from etl.records import KINDS
from etl.redact import Redactor
from etl.settings import CUSTOMER_PATH
from etl.throttle import Throttle
from etl.urls import public

BODY_EXCERPT_CHARS = 200
RETRY_AFTER_MAX = 300.0  # seconds; a longer Retry-After is capped, not obeyed
# How much of an answer is read: a customer object is a kilobyte or two; of anything
# else only an excerpt is kept, so a 100 MB error page is not read whole.
CUSTOMER_BODY_MAX = 1 << 20
OTHER_BODY_MAX = 64 << 10
# The words by which a 409 says the customer exists; any other 409 is another conflict.
EXISTS_WORDS = re.compile(r"exist|duplicate|already", re.IGNORECASE)


LOOK_FOR_LIMITS = 50  # answers without RateLimit fields after which they are not looked for
MAYBE_CREATED = "the API may have created it: the next run will tell"
EARLIER_ATTEMPT = "an earlier attempt of this run may have created it"


class _Retryable(Exception):
    def __init__(self, detail: str, *, status: int | None, retry_after: float | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


class _Unconfirmed(Exception):
    """An attempt that may have reached the API, of a record sent at most once."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class _Stopped(Exception):
    """The run was stopped while this row waited to retry."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the API answered to one request: its status, headers and (the start of) its
    body. `complete` is False when the body was longer than was read."""

    status: int
    headers: httpx.Headers
    body: bytes
    complete: bool = True

    def text(self) -> str:
        message = Message()
        message["content-type"] = self.headers.get("Content-Type", "")
        charset = message.get_content_charset() or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    def customer_id(self) -> str | None:
        """The id of the customer this answer carries, or None: a 2xx proves a creation
        only with the customer in it (not a maintenance page, an empty 202 or a 204)."""
        if not self.complete:
            return None
        try:
            customer = json.loads(self.body)
        except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
            return None
        value = customer.get("id") if isinstance(customer, dict) else None
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # the contract says a string; a number is still an id
        return None


def excerpt(answer: Answer, redact: Redactor) -> str:
    """A short one-line excerpt of an answer's body, for the results' error column, with
    the key blanked out in whatever form the server echoed it."""
    text = answer.text()
    if not answer.complete:
        text = text[: max(0, len(text) - redact.longest)]  # it may end in a part of the key
    text = redact(" ".join(redact(text).split()))
    if len(text) > BODY_EXCERPT_CHARS:
        text = text[: BODY_EXCERPT_CHARS - 1] + "…"
    return text


class Endpoint:
    """The create endpoint, reached through an httpx transport.

    Requests go straight to the transport (by default aiohttp's, from `httpx-aiohttp`),
    not through `httpx.AsyncClient.send`: at thousands of requests a second its auth,
    redirect, cookie and hook machinery costs more CPU than the request itself, and
    none of it is wanted here (a redirect must never carry the key to another host).

    `timeout` bounds a whole attempt, from sending to the last byte of the answer read:
    a server that trickles its answer a byte at a time cannot hold a slot for longer.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        path: str = CUSTOMER_PATH,
    ) -> None:
        self._transport = transport
        base = httpx.URL(base_url)  # a path in it is kept, as AsyncClient(base_url=) keeps it
        self.url = base.copy_with(path=base.path.rstrip("/") + path)
        self._headers = httpx.Headers(headers)
        self._timeout = timeout
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self.redact = Redactor(
            [headers.get("X-Api-Key"), unquote(self.url.password or ""), self.url.password]
        )

    async def post(self, body: bytes) -> Answer:
        request = httpx.Request(
            "POST", self.url, headers=self._headers, content=body, extensions=self._extensions
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._transport.handle_async_request(request)
                try:
                    return await _read(response)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise httpx.ReadTimeout("the answer took longer than --timeout") from exc

    async def aclose(self) -> None:
        await self._transport.aclose()


async def _read(response: httpx.Response) -> Answer:
    """The answer, with as much of its body as it is worth reading."""
    limit = CUSTOMER_BODY_MAX if 200 <= response.status_code < 300 else OTHER_BODY_MAX
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        parts.append(part)
        size += len(part)
        if size > limit:
            return Answer(response.status_code, response.headers, b"".join(parts)[:limit], False)
    return Answer(response.status_code, response.headers, b"".join(parts))


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    event(
        "retry",
        reason=exc.detail if isinstance(exc, _Retryable) else repr(exc),
        attempt=state.attempt_number,
        wait_s=round(state.upcoming_sleep, 3),
    )


def _replay(
    failure: _Retryable, attempt: Callable[[], Awaitable[Answer]]
) -> Callable[[], Awaitable[Answer]]:
    """`attempt` for tenacity, whose first call reports the failure already seen (at no
    cost), so that its count of attempts, its backoff and its log include that one."""
    seen: _Retryable | None = failure

    async def again() -> Answer:
        nonlocal seen
        if seen is not None:
            failed, seen = seen, None
            raise failed
        return await attempt()

    return again


@dataclass(slots=True)
class Sending:
    """One row's sending: what is sent, and what its attempts so far may have done."""

    body: bytes
    attempts: int = 0
    reached: bool = False  # whether any attempt may have reached the API
    posting: bool = False  # an attempt is on the wire right now
    failure: _Retryable | None = None  # the last attempt's, when it is worth repeating


class Submitter:
    """Sends rows for every worker of a run, under one pace, one set of slots and one
    stop switch; `config` gives the retries, rate, backoff, concurrency and `down_after`."""

    def __init__(self, endpoint: Endpoint, config: ImportConfig | None = None) -> None:
        config = config or ImportConfig()
        self._endpoint = endpoint
        # Transactions: an attempt that may have reached the API is never repeated (see
        # etl.records); only 429, 503 and connections refused before sending are.
        self._at_most_once = KINDS[config.kind].at_most_once
        # Requests in flight are bounded here, not by the number of rows in progress: a
        # row waiting out its Retry-After or backoff holds no slot, so it does not keep
        # the other rows from being sent.
        self._slots = asyncio.Semaphore(config.concurrency)
        self.throttle = Throttle(cap=config.rate, sleep=self._sleep_unless_stopped)
        self.stop = asyncio.Event()
        self.stop_kind: StopReason | None = None
        self.stop_reason = ""
        self.retries_spent = 0
        # Until the API has answered once, one request goes alone: a refused key then
        # costs one request, not one per worker.
        self._first_answer = asyncio.Event()
        self._probing = False
        # The API is plainly down after this many failed attempts in a row (5xx, refused
        # or lost connections, timeouts), whatever rows they were for.
        self._down_after = config.down_after
        self._failures_in_a_row = 0
        self._in_flight: set[asyncio.Task[object]] = set()
        self._interrupting = False
        self._limits_looked_for = 0  # answers that stated no rate limit
        self._backoff = wait_random_exponential(
            multiplier=config.backoff_base, max=config.backoff_max
        )
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(config.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep_unless_stopped,
            before_sleep=_log_retry,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        """How long before a row's next attempt: none after a 429 (the pace waits for the
        whole run), else the server's Retry-After, or the backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.status == 429:
            return 0.0  # back through the shared pace, which the 429 has slowed
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    @property
    def redact(self) -> Redactor:
        """Blanks the key (and URL credentials) out of text."""
        return self._endpoint.redact

    def stop_run(self, kind: StopReason, reason: str) -> None:
        """Send nothing more: rows not yet sent will be `not_sent`. The first stop's kind
        and reason are the run's."""
        if not self.stop.is_set():
            self.stop_kind = kind
            self.stop_reason = reason
            self.stop.set()

    def interrupt_in_flight(self) -> None:
        """Abandon the requests in flight now; their rows' outcome is unknown."""
        self._interrupting = True
        for task in self._in_flight:
            task.cancel()

    def _key_refused(self, code: int) -> None:
        what = "rejected the API key" if code == 401 else "refused the API key's permissions"
        self.stop_run(
            StopReason.KEY_REFUSED,
            f"the API {what} (HTTP {code}); check AFFELIOS_API_KEY or --api-key-file",
        )

    def _attempt_failed(self, detail: str) -> None:
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= self._down_after:
            self.stop_run(
                StopReason.API_DOWN,
                f"the API looks down: {self._failures_in_a_row} requests in a row failed "
                f"(last: {detail}); nothing more was sent. Start the same command again "
                "to resume: the journal skips what was created",
            )

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def send(self, body: bytes) -> Outcome:
        """Create one customer; never raises for anything the server or network does."""
        first = await self.send_once(body)
        return first if isinstance(first, Outcome) else await self.send_again(first)

    async def send_once(self, body: bytes) -> Outcome | Sending:
        """A row's first attempt: its outcome, or, when that attempt is worth repeating,
        the row's `Sending`, for `send_again` (so that the caller's task need not wait
        out the backoff, and can go on to the next row)."""
        row = Sending(body)
        return await self._guarded(row, functools.partial(self._attempt, row), last=False)

    async def send_again(self, row: Sending) -> Outcome:
        """The retries of a row whose first attempt failed (`send_once`)."""
        assert row.failure is not None
        again = _replay(row.failure, functools.partial(self._attempt, row))
        outcome = await self._guarded(row, functools.partial(self._retrying.copy(), again))
        assert isinstance(outcome, Outcome)
        return outcome

    async def _guarded(
        self, row: Sending, attempts: Callable[[], Awaitable[Answer]], *, last: bool = True
    ) -> Outcome | Sending:
        """Make `attempts` for `row`, and say what came of them as an outcome; a failure
        worth retrying returns `row`, unless these were the `last` attempts."""
        if not self._first_answer.is_set():
            # Until the API has answered once, one request goes alone.
            if self._probing:
                await self._first_answer.wait()
            self._probing = True
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            answer = await attempts()
        except _Stopped:
            return self._unfinished(row.attempts, row.reached, "stopped_before_retry")
        except _Unconfirmed as exc:
            return _unconfirmed(exc.detail, row.attempts, exc.status)
        except _Retryable as exc:
            if not last:
                row.failure = exc
                return row
            return _gave_up(exc, row)
        except asyncio.CancelledError:
            if not self._interrupting:
                raise
            task.uncancel()
            return self._unfinished(
                row.attempts, row.reached or row.posting, "interrupted_in_flight"
            )
        finally:
            self._in_flight.discard(task)
        return self._classify(answer, row.attempts)

    async def _attempt(self, row: Sending) -> Answer:
        """One request for `row`, in a slot and at the shared pace; raises `_Retryable`
        for what is worth trying again and `_Stopped` once the run is stopping."""
        if self.stop.is_set():
            raise _Stopped
        async with self._slots:
            ticket = await self.throttle.turn()
            if self.stop.is_set():
                raise _Stopped
            row.attempts += 1
            if row.attempts > 1:
                self.retries_spent += 1
            try:
                # Left set if the attempt is cancelled: the request may have reached the API.
                row.posting = True
                sent_at = time.monotonic()
                answer = await self._endpoint.post(row.body)
                row.posting = False
            except httpx.TransportError as exc:
                row.posting = False
                raise self._not_answered(row, exc) from exc
            finally:
                self._first_answer.set()
        # An answered attempt of a transaction may be repeated only when the API says it
        # did not act on it (429, 503): any other answer ends the row (see `_answered`),
        # so a transaction's row never counts as having reached the API by an answer.
        row.reached = row.reached or not self._at_most_once
        return self._answered(answer, row.attempts, sent_at, ticket)

    def _not_answered(self, row: Sending, exc: httpx.TransportError) -> Exception:
        """What a failed connection, send or read means: retry, or stop the run."""
        # Imported on the first failure only: aiohttp takes 0.15 s to import, which a dry
        # run need not pay.
        from etl import transport as transport_errors

        if untrusted := transport_errors.tls_refused(exc):
            self.stop_run(
                StopReason.TLS_UNTRUSTED,
                f"the TLS certificate of {self._endpoint.url.host} could not "
                f"be verified ({untrusted}); nothing was sent",
            )
            return _Stopped()
        # Refused or never connected: the request cannot have reached the API.
        reached = not transport_errors.never_reached(exc)
        row.reached = row.reached or reached
        detail = transport_errors.describe(exc)
        self._attempt_failed(detail)
        if reached and self._at_most_once:
            return _Unconfirmed(f"{detail} after the request was sent")
        return _Retryable(detail, status=None, retry_after=None)

    def _answered(self, answer: Answer, attempts: int, sent_at: float, ticket: int) -> Answer:
        """Log and account for an answer; raises `_Retryable` for a 429 or a 5xx."""
        code = answer.status
        event(
            "request",
            logging.DEBUG,
            status=code,
            attempt=attempts,
            ms=round((time.monotonic() - sent_at) * 1000),
        )
        retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        if retry_after is None and self._limits_looked_for < LOOK_FOR_LIMITS:
            # An API that states its limit does so in every answer; one that stated none
            # in its first answers is not asked again (4 µs an answer saved).
            if (limit := ratelimit.read(answer.headers)) is not None:
                self.throttle.heed(limit)
            else:
                self._limits_looked_for += 1
        self.throttle.answered(ticket, throttled=code == 429, retry_after=retry_after)
        if code in (401, 403):
            self._key_refused(code)
        if code >= 500:
            self._attempt_failed(f"HTTP {code}")
        else:
            self._failures_in_a_row = 0
        if self._at_most_once and code >= 500 and code != 503:
            raise _Unconfirmed(f"HTTP {code}", status=code)  # the API may have acted
        if code == 429 or code >= 500:
            raise _Retryable(f"HTTP {code}", status=code, retry_after=retry_after)
        return answer

    def _unfinished(self, attempts: int, reached: bool, kind: str) -> Outcome:
        if not reached:
            return Outcome(status=Status.NOT_SENT, attempts=attempts)
        if self._at_most_once:
            return _unconfirmed(kinds.KINDS[kind], attempts, None)
        return Outcome(
            status=Status.FAILED,
            attempts=attempts,
            maybe_created=True,
            error=f"{kinds.KINDS[kind]}; {MAYBE_CREATED}",
            kind=kinds.item(kind),
        )

    def _classify(self, answer: Answer, attempts: int) -> Outcome:
        code, redact = answer.status, self._endpoint.redact
        if self._at_most_once and 200 <= code < 300:
            return _taken(answer, attempts, redact)
        if 200 <= code < 300 and (affelios_id := answer.customer_id()) is not None:
            return Outcome(
                status=Status.CREATED, affelios_id=affelios_id, http_status=code, attempts=attempts
            )
        if code == 409 and EXISTS_WORDS.search(answer.text()):  # the whole of what was read
            note = "" if attempts == 1 else f"; {EARLIER_ATTEMPT}"
            error = f"HTTP 409: {excerpt(answer, redact)}{note}"
            return Outcome(status=Status.EXISTS, http_status=code, attempts=attempts, error=error)
        kind, error = _refusal(answer, redact)
        # A 2xx without the customer proves nothing (a maintenance page, an empty 202, a
        # 204), and an earlier attempt may have created it (it timed out, say): then the
        # journal entry stays `sending`, so the next run sends the row again and the
        # API's 409 tells.
        maybe_created = 200 <= code < 300 or (attempts > 1 and code not in (401, 403))
        maybe_created &= not self._at_most_once  # a transaction's earlier attempts: not taken
        return Outcome(
            status=Status.FAILED,
            http_status=code,
            attempts=attempts,
            maybe_created=maybe_created,
            error=error,
            kind=kinds.item(kind),
        )


def _unconfirmed(detail: str, attempts: int, status: int | None) -> Outcome:
    """A transaction that may have reached the API, its answer never learned."""
    return Outcome(
        status=Status.UNCONFIRMED,
        http_status=status,
        attempts=attempts,
        error=f"{detail}: the API may have queued it; {UNCONFIRMED_ADVICE}",
        kind=kinds.item("unconfirmed"),
    )


def _taken(answer: Answer, attempts: int, redact: Redactor) -> Outcome:
    """A transaction's 2xx: 202 is queued (`accepted`); a 200 or 201 `created`, with the
    id it carries, if any. Any other 2xx, or a 200/201 whose body is neither empty nor
    JSON (a maintenance page), proves nothing either way: `unconfirmed`."""
    code = answer.status
    if code == 202:
        return Outcome(status=Status.ACCEPTED, http_status=code, attempts=attempts)
    if code in (200, 201) and answer.complete and _empty_or_json(answer.body):
        return Outcome(
            status=Status.CREATED,
            affelios_id=answer.customer_id() or "",
            http_status=code,
            attempts=attempts,
        )
    return _unconfirmed(f"HTTP {code} ({excerpt(answer, redact) or 'no body'})", attempts, code)


def _empty_or_json(body: bytes) -> bool:
    if not body.strip():
        return True
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _gave_up(exc: _Retryable, row: Sending) -> Outcome:
    """The outcome of a row whose every attempt failed in a way worth retrying."""
    if exc.status is not None:
        kind = "gave_up_http"
    else:
        kind = "gave_up_timeout" if exc.detail == "timed out" else "gave_up_connection"
    return Outcome(
        status=Status.FAILED,
        http_status=exc.status,
        attempts=row.attempts,
        maybe_created=row.reached,
        error=f"gave up after {row.attempts} attempts: {exc.detail}",
        kind=kinds.item(kind),
    )


def _refusal(answer: Answer, redact: Redactor) -> tuple[str, str]:
    """The kind and message of an answer that did not create the customer."""
    code, shown = answer.status, excerpt(answer, redact)
    if 200 <= code < 300:
        return "no_customer_id", (
            f"HTTP {code} without a customer id ({shown or 'no body'}); {MAYBE_CREATED}"
        )
    if 300 <= code < 400:
        where = redact(public(answer.headers.get("Location", ""))) or "nowhere"
        return "redirected", f"HTTP {code}: the API redirected to {where}: check --base-url"
    if code == 409:
        return "conflict", (
            f"HTTP 409, a conflict other than an existing customer: {shown or 'no body'}"
        )
    if code in (401, 403):
        return "key_refused", f"HTTP {code}: the API refused the key: {shown}"
    return "refused", f"HTTP {code}: {shown}"
