"""Send one create request per row, with retries, a global rate limit and a stop switch.

One `Submitter` (and one `httpx.AsyncClient`) serves every worker of a run. Answers:
2xx `created` with the returned id; 409 `exists`; 401/403 stop the whole run; other 4xx
`failed` with the status and an excerpt of the body; 429, 5xx, timeouts and dropped
connections are retried with exponential backoff and full jitter, honouring
`Retry-After`, then `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from etl.logs import event
from etl.outcome import Outcome, Status
from etl.settings import CUSTOMER_PATH
from etl.throttle import Throttle

BODY_EXCERPT_CHARS = 200
RETRY_AFTER_MAX = 300.0  # seconds; a longer Retry-After is capped, not obeyed


class _Retryable(Exception):
    def __init__(self, detail: str, *, status: int | None, retry_after: float | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


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


def excerpt(response: httpx.Response) -> str:
    """A short one-line excerpt of a response body, for the results' error column.

    Should a server echo the key back, it is blanked out.
    """
    text = " ".join(response.text.split())
    if key := response.request.headers.get("X-Api-Key"):
        text = text.replace(key, "[key]")
    if len(text) > BODY_EXCERPT_CHARS:
        text = text[: BODY_EXCERPT_CHARS - 1] + "…"
    return text


class Endpoint:
    """The create endpoint, reached through an httpx transport.

    Requests go straight to the transport (by default aiohttp's, from `httpx-aiohttp`),
    not through `httpx.AsyncClient.send`: at thousands of requests a second its auth,
    redirect, cookie and hook machinery costs more CPU than the request itself, and
    none of it is wanted here (a redirect must never carry the key to another host).
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
    ) -> None:
        self._transport = transport
        base = httpx.URL(base_url)  # a path in it is kept, as AsyncClient(base_url=) keeps it
        self.url = base.copy_with(path=base.path.rstrip("/") + CUSTOMER_PATH)
        self._headers = httpx.Headers(headers)
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}

    async def post(self, body: bytes) -> httpx.Response:
        request = httpx.Request(
            "POST", self.url, headers=self._headers, content=body, extensions=self._extensions
        )
        response = await self._transport.handle_async_request(request)
        response.request = request  # as AsyncClient.send does (mock transports leave it out)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    event(
        "retry",
        reason=exc.detail if isinstance(exc, _Retryable) else repr(exc),
        attempt=state.attempt_number,
        wait_s=round(state.upcoming_sleep, 3),
    )


def _replay(
    failure: _Retryable, attempt: Callable[[], Awaitable[httpx.Response]]
) -> Callable[[], Awaitable[httpx.Response]]:
    """`attempt` for tenacity, whose first call reports the failure already seen (at no
    cost), so that its count of attempts, its backoff and its log include that one."""
    seen: _Retryable | None = failure

    async def again() -> httpx.Response:
        nonlocal seen
        if seen is not None:
            failed, seen = seen, None
            raise failed
        return await attempt()

    return again


class Submitter:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        retries: int,
        rate: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        down_after: int = 30,
        concurrency: int = 16,
    ) -> None:
        self._endpoint = endpoint
        # Requests in flight are bounded here, not by the number of rows in progress: a
        # row waiting out its Retry-After or backoff holds no slot, so it does not keep
        # the other rows from being sent.
        self._slots = asyncio.Semaphore(concurrency)
        self.throttle = Throttle(cap=rate)
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.retries_spent = 0
        # Until the API has answered once, one request goes alone: a refused key then
        # costs one request, not one per worker.
        self._first_answer = asyncio.Event()
        self._probing = False
        # The API is plainly down after this many failed attempts in a row (5xx, refused
        # or lost connections, timeouts), whatever rows they were for.
        self._down_after = down_after
        self._failures_in_a_row = 0
        self._in_flight: set[asyncio.Task[object]] = set()
        self._interrupting = False
        backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return exc.retry_after
            return float(backoff(state))

        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(retries + 1),
            wait=wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep_unless_stopped,
            before_sleep=_log_retry,
            reraise=True,
        )

    def stop_run(self, reason: str) -> None:
        """Send nothing more: rows not yet sent will be `not_sent`."""
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    def interrupt_in_flight(self) -> None:
        """Abandon the requests in flight now; their rows' outcome is unknown."""
        self._interrupting = True
        for task in self._in_flight:
            task.cancel()

    def _key_refused(self, code: int) -> None:
        what = "rejected the API key" if code == 401 else "refused the API key's permissions"
        self.stop_run(f"the API {what} (HTTP {code}); check AFFELIOS_API_KEY or --api-key-file")

    def _attempt_failed(self, detail: str) -> None:
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= self._down_after:
            self.stop_run(
                f"the API looks down: {self._failures_in_a_row} requests in a row failed "
                f"(last: {detail}); nothing more was sent. Start the same command again "
                "to resume: the journal skips what was created"
            )

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def send(self, body: bytes) -> Outcome:
        """Create one customer; never raises for anything the server or network does."""
        attempts = 0
        reached = False  # whether any attempt may have reached the API
        posting = False  # an attempt is on the wire right now
        if not self._first_answer.is_set():
            if self._probing:
                await self._first_answer.wait()
            self._probing = True

        async def attempt() -> httpx.Response:
            nonlocal attempts, reached, posting
            if self.stop.is_set():
                raise _Stopped
            async with self._slots:
                await self.throttle.turn()
                if self.stop.is_set():
                    raise _Stopped
                attempts += 1
                try:
                    posting = True
                    sent_at = time.monotonic()
                    response = await self._endpoint.post(body)
                    posting = False
                except httpx.TransportError as exc:
                    posting = False
                    # Imported on the first failure only: aiohttp takes 0.15 s to import,
                    # which a dry run need not pay.
                    from etl import transport as transport_errors

                    if untrusted := transport_errors.tls_refused(exc):
                        self.stop_run(
                            f"the TLS certificate of {self._endpoint.url.host} could not "
                            f"be verified ({untrusted}); nothing was sent"
                        )
                        raise _Stopped from exc
                    # Refused or never connected: the request cannot have reached the API.
                    reached = reached or not transport_errors.never_reached(exc)
                    detail = transport_errors.describe(exc)
                    self._attempt_failed(detail)
                    raise _Retryable(detail, status=None, retry_after=None) from exc
                finally:
                    self._first_answer.set()
            reached = True
            code = response.status_code
            event(
                "request",
                logging.DEBUG,
                status=code,
                attempt=attempts,
                ms=round((time.monotonic() - sent_at) * 1000),
            )
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self.throttle.answered(throttled=code == 429, retry_after=retry_after)
            if code in (401, 403):
                self._key_refused(code)
            if code >= 500:
                self._attempt_failed(f"HTTP {code}")
            else:
                self._failures_in_a_row = 0
            if code == 429 or code >= 500:
                raise _Retryable(f"HTTP {code}", status=code, retry_after=retry_after)
            return response

        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            try:
                # Most rows need one attempt: it is made directly, and tenacity (which
                # costs as much CPU as the request) only runs the retries.
                response = await attempt()
            except _Retryable as failure:
                response = await self._retrying.copy()(_replay(failure, attempt))
        except _Stopped:
            return self._unfinished(attempts, reached, "the run stopped before the retry")
        except _Retryable as exc:
            return Outcome(
                status=Status.FAILED,
                http_status=exc.status,
                attempts=attempts,
                maybe_created=reached,
                error=f"gave up after {attempts} attempts: {exc.detail}",
            )
        except asyncio.CancelledError:
            if not self._interrupting:
                raise
            task.uncancel()
            return self._unfinished(
                attempts, reached or posting, "interrupted with the request in flight"
            )
        finally:
            self._in_flight.discard(task)
            self.retries_spent += max(0, attempts - 1)
        return self._classify(response, attempts)

    @staticmethod
    def _unfinished(attempts: int, reached: bool, why: str) -> Outcome:
        if not reached:
            return Outcome(status=Status.NOT_SENT, attempts=attempts)
        return Outcome(
            status=Status.FAILED,
            attempts=attempts,
            maybe_created=True,
            error=f"{why}; the API may have created it: the next run will tell",
        )

    def _classify(self, response: httpx.Response, attempts: int) -> Outcome:
        code = response.status_code
        if 200 <= code < 300:
            try:
                affelios_id = str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                return Outcome(
                    status=Status.CREATED,
                    http_status=code,
                    attempts=attempts,
                    error=f"the answer carried no customer id: {excerpt(response)}",
                )
            return Outcome(
                status=Status.CREATED, affelios_id=affelios_id, http_status=code, attempts=attempts
            )
        if code == 409:
            note = "" if attempts == 1 else "an earlier attempt of this run may have created it"
            return Outcome(status=Status.EXISTS, http_status=code, attempts=attempts, error=note)
        if code in (401, 403):
            return Outcome(
                status=Status.FAILED,
                http_status=code,
                attempts=attempts,
                error=f"HTTP {code}: the API refused the key: {excerpt(response)}",
            )
        return Outcome(
            status=Status.FAILED,
            http_status=code,
            attempts=attempts,
            error=f"HTTP {code}: {excerpt(response)}",
        )
