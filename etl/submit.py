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
import time
from email.utils import parsedate_to_datetime

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from etl.outcome import Outcome, Status
from etl.settings import CUSTOMER_PATH

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


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return f"connection lost ({type(exc).__name__})"


class Submitter:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        retries: int,
        rate: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._client = client
        self._limiter = AsyncLimiter(1, 1 / rate) if rate else None
        self.stop = asyncio.Event()
        self.stop_reason = ""
        # Until the API has answered once, one request goes alone: a refused key then
        # costs one request, not one per worker.
        self._first_answer = asyncio.Event()
        self._probing = False
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
            reraise=True,
        )

    def stop_run(self, reason: str) -> None:
        """Send nothing more: rows not yet sent will be `not_sent`."""
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    def _key_refused(self, code: int) -> None:
        what = "rejected the API key" if code == 401 else "refused the API key's permissions"
        self.stop_run(f"the API {what} (HTTP {code}); check AFFELIOS_API_KEY or --api-key-file")

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def send(self, body: bytes) -> Outcome:
        """Create one customer; never raises for anything the server or network does."""
        attempts = 0
        if not self._first_answer.is_set():
            if self._probing:
                await self._first_answer.wait()
            self._probing = True

        async def attempt() -> httpx.Response:
            nonlocal attempts
            if self.stop.is_set():
                raise _Stopped
            if self._limiter is not None:
                await self._limiter.acquire()
            attempts += 1
            try:
                response = await self._client.post(CUSTOMER_PATH, content=body)
                if response.status_code in (401, 403):
                    self._key_refused(response.status_code)
            except httpx.TransportError as exc:
                raise _Retryable(_describe(exc), status=None, retry_after=None) from exc
            finally:
                self._first_answer.set()
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(
                    f"HTTP {response.status_code}",
                    status=response.status_code,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            return response

        try:
            response: httpx.Response = await self._retrying.copy()(attempt)
        except _Stopped:
            return Outcome(
                status=Status.NOT_SENT if attempts == 0 else Status.FAILED,
                attempts=attempts,
                error="" if attempts == 0 else "run stopped before the retry; outcome unknown",
                kinds=() if attempts == 0 else ("run stopped before the retry",),
            )
        except _Retryable as exc:
            return Outcome(
                status=Status.FAILED,
                http_status=exc.status,
                attempts=attempts,
                error=f"gave up after {attempts} attempts: {exc.detail}",
                kinds=(f"gave up: {exc.detail}",),
            )
        return self._classify(response, attempts)

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
                    kinds=("created, but the answer carried no id",),
                )
            return Outcome(
                status=Status.CREATED, affelios_id=affelios_id, http_status=code, attempts=attempts
            )
        if code == 409:
            note = "" if attempts == 1 else "an earlier attempt may have created it"
            return Outcome(status=Status.EXISTS, http_status=code, attempts=attempts, error=note)
        if code in (401, 403):
            return Outcome(
                status=Status.FAILED,
                http_status=code,
                attempts=attempts,
                error=f"HTTP {code}: the API refused the key: {excerpt(response)}",
                kinds=(f"HTTP {code}: the API refused the key",),
            )
        return Outcome(
            status=Status.FAILED,
            http_status=code,
            attempts=attempts,
            error=f"HTTP {code}: {excerpt(response)}",
            kinds=(f"HTTP {code}",),
        )
