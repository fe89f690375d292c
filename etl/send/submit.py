"""Send one create request per row, with retries, a global rate limit and a stop switch.

One `Submitter` (and one endpoint) serves every worker of a run. Its policy is the same
for every kind of record: attempts in a bounded number of slots, at the shared pace
(`send.throttle`), one request alone until the API has answered once, retries with
exponential backoff and full jitter that honour `Retry-After`, a 429 retried at once
through the pace (which slows the whole run instead of putting the row to sleep), 401/403
and a run of failures stop the run. Which attempts may be repeated, and what an answer
or a lost answer means for the row, is the kind's to say (`kinds.base.Kind`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from affelios_import import codes
from affelios_import.config import ImportConfig
from affelios_import.logs import LOGGER, event
from affelios_import.outcome import Outcome, Status, StopReason
from affelios_import.redact import Redactor
from affelios_import.send import ratelimit
from affelios_import.send.throttle import Throttle
from affelios_import.wire.endpoint import Answer, Endpoint, retry_after_of

if TYPE_CHECKING:
    from tenacity import AsyncRetrying, RetryCallState, wait_random_exponential

    from affelios_import.kinds.base import Kind

LOOK_FOR_LIMITS = 50  # answers without RateLimit fields after which they are not looked for


class _Retryable(Exception):
    def __init__(
        self, detail: str, *, status: int | None, retry_after: float | None, written: bool = True
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.written = written  # False: the request provably never left the machine


class _Lost(Exception):
    """An attempt that may have acted, not to be repeated, its answer never learned."""

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class _Stopped(Exception):
    """The run was stopped while this row waited to retry."""


class _Unreadable(Exception):
    """An answer (or what came back instead of one) that could not be read or handled."""

    def __init__(self, cause: Exception, *, status: int | None = None) -> None:
        super().__init__(repr(cause))
        self.cause = cause
        self.status = status


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
    stop switch, for rows of one `kind`; `config` gives the retries, rate, backoff,
    concurrency and `down_after`."""

    def __init__(
        self, endpoint: Endpoint, *, kind: Kind, config: ImportConfig | None = None
    ) -> None:
        config = config or ImportConfig(kind=kind.name)
        self._endpoint = endpoint
        self.kind = kind
        # Requests in flight are bounded here, not by the number of rows in progress: a
        # row waiting out its Retry-After or backoff holds no slot, so it does not keep
        # the other rows from being sent.
        self._slots = asyncio.Semaphore(config.concurrency)
        self.throttle = Throttle(cap=config.rate, sleep=self._sleep_unless_stopped)
        self.stop = asyncio.Event()
        self.stopped: StopReason | None = None
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
        self._config = config

    @functools.cached_property
    def _backoff(self) -> wait_random_exponential:
        from tenacity import wait_random_exponential

        return wait_random_exponential(
            multiplier=self._config.backoff_base, max=self._config.backoff_max
        )

    @functools.cached_property
    def _retrying(self) -> AsyncRetrying:
        """tenacity's loop of retries, made at the first retry: a run that needs none
        (a dry run, say) does not import it (0.03 s)."""
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        return AsyncRetrying(
            stop=stop_after_attempt(self._config.retries + 1),
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

    def stop_run(self, why: StopReason, reason: str) -> None:
        """Send nothing more: rows not yet sent will be `not_sent`. The first stop's
        `why` and reason are the run's."""
        if not self.stop.is_set():
            self.stopped = why
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
        """Create one record; never raises for anything the server or network does."""
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
        except _Lost as exc:
            return self.kind.lost(exc.detail, attempts=row.attempts, status=None, code=exc.code)
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
        except _Unreadable as exc:
            return self._unreadable(exc.cause, row, status=exc.status)
        finally:
            self._in_flight.discard(task)
        try:
            return self.kind.answered(answer, attempts=row.attempts, redact=self.redact)
        except Exception as exc:
            return self._unreadable(exc, row, status=answer.status)

    def _unreadable(self, exc: Exception, row: Sending, *, status: int | None = None) -> Outcome:
        """A row whose answer could not be read or handled (a malformed header, a bug):
        never left without an outcome, and never taken for one that did not act."""
        event(
            "answer_unreadable",
            logging.WARNING,
            error=self.redact(repr(exc)),
            traceback=self.redact("".join(traceback.format_exception(exc))),
        )
        detail = f"{codes.CODES['answer_unreadable']} ({type(exc).__name__})"
        return self.kind.lost(
            detail, attempts=row.attempts, status=status, code="answer_unreadable"
        )

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
            except Exception as exc:  # not a transport's error: the answer was unreadable
                row.posting = False
                raise _Unreadable(exc) from exc
            finally:
                self._first_answer.set()
        row.reached = row.reached or self.kind.may_have_acted(answer.status, written=True)
        try:
            return self._answered(answer, row.attempts, sent_at, ticket)
        except (_Retryable, _Stopped):
            raise
        except Exception as exc:  # a header that broke its reader, say
            raise _Unreadable(exc, status=answer.status) from exc

    def _not_answered(self, row: Sending, exc: httpx.TransportError) -> Exception:
        """What a failed connection, send or read means: retry, or stop the run."""
        # Imported on the first failure only: a dry run, or a run on a transport of its
        # own, need not load the engine.
        from affelios_import.wire import transport as transport_errors

        if untrusted := transport_errors.tls_refused(exc):
            self.stop_run(
                StopReason.TLS_UNTRUSTED,
                f"the TLS certificate of {self._endpoint.url.host} could not "
                f"be verified ({untrusted}); nothing was sent",
            )
            return _Stopped()
        # Refused or never connected: the request cannot have reached the API.
        written = not transport_errors.never_reached(exc)
        row.reached = row.reached or self.kind.may_have_acted(None, written=written)
        detail = transport_errors.describe(exc)
        self._attempt_failed(detail)
        if not self.kind.repeatable(None, written=written):
            code = "gave_up_timeout" if detail == "timed out" else "gave_up_connection"
            return _Lost(f"{detail} after the request was sent", code=code)
        return _Retryable(detail, status=None, retry_after=None, written=written)

    def _answered(self, answer: Answer, attempts: int, sent_at: float, ticket: int) -> Answer:
        """Log and account for an answer; raises `_Retryable` for one the kind repeats."""
        code = answer.status
        if LOGGER.isEnabledFor(logging.DEBUG):  # (its fields cost a row 0.5 µs otherwise)
            ms = round((time.monotonic() - sent_at) * 1000)
            event("request", logging.DEBUG, status=code, attempt=attempts, ms=ms)
        retry_after = retry_after_of(answer.headers)
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
        if self.kind.repeatable(code, written=True):
            raise _Retryable(f"HTTP {code}", status=code, retry_after=retry_after)
        return answer

    def _unfinished(self, attempts: int, reached: bool, code: str) -> Outcome:
        if not reached:
            return Outcome(status=Status.NOT_SENT, attempts=attempts)
        return self.kind.lost(codes.CODES[code], attempts=attempts, status=None, code=code)


def _gave_up(exc: _Retryable, row: Sending) -> Outcome:
    """The outcome of a row whose every attempt failed in a way worth retrying: none of
    them reached the API, and the last never left the machine (no connection, or none
    in time): `not_sent`, as a row the run never got to; else `failed`."""
    if not row.reached and not exc.written:
        return Outcome(
            status=Status.NOT_SENT,
            attempts=row.attempts,
            error=f"not sent: {exc.detail} ({row.attempts} attempts); the next run sends it",
        )
    if exc.status is not None:
        code = "gave_up_http"
    else:
        code = "gave_up_timeout" if exc.detail == "timed out" else "gave_up_connection"
    return Outcome(
        status=Status.FAILED,
        http_status=exc.status,
        attempts=row.attempts,
        maybe_created=row.reached,
        error=f"gave up after {row.attempts} attempts: {exc.detail}",
        code=codes.item(code),
    )
