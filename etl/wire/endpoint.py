"""One request to the API and its answer: the `Endpoint` posts a body and reads the
answer (`Answer`: its status, headers and as much of its body as is worth reading), and
`parse_retry_after` reads the one header every kind of answer may carry.

What an answer *means* is not said here: each kind of record says that (see
`affelios_import.kinds`), and the submitter decides whether to try again.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

import httpx

from affelios_import.redact import Redactor

BODY_EXCERPT_CHARS = 200
CONNECT_SHARE = 0.9  # of --timeout, for getting a connection (see Endpoint)
RETRY_AFTER_MAX = 300.0  # seconds; a longer Retry-After is capped, not obeyed
# How much of an answer is read: a record is a kilobyte or two; of anything else only an
# excerpt is kept, so a 100 MB error page is not read whole.
RECORD_BODY_MAX = 1 << 20
OTHER_BODY_MAX = 64 << 10


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if (number := whole_number(value)) is not None:
        seconds = float(number)
    elif value.isdigit():
        return RETRY_AFTER_MAX  # more digits than a wait worth reading
    else:
        try:
            when = parsedate_to_datetime(value)
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def retry_after_of(headers: httpx.Headers) -> float | None:
    """`parse_retry_after` of the answer's `Retry-After` as `headers.get` reads it (its
    values joined, decoded as its other values are), found by one pass over the raw
    names: 0.7 µs an answer less."""
    found = [value for name, value in headers.raw if name.lower() == b"retry-after"]
    if not found:
        return None
    return parse_retry_after(b", ".join(found).decode(headers.encoding))


def whole_number(text: str) -> int | None:
    """A header field's whole number: ASCII digits only (`str.isdigit` takes `²` and `٣`,
    which `int` refuses), at most 15 of them (past any wait or quota that means
    anything); None for anything else."""
    if 0 < len(text) <= 15 and text.isascii() and text.isdigit():
        return int(text)
    return None


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

    def affelios_id(self) -> str | None:
        """The id of the record this answer carries, or None: a 2xx proves a creation
        only with the record in it (not a maintenance page, an empty 202 or a 204)."""
        if not self.complete:
            return None
        body = self.body
        try:
            # Bytes that json.loads would read as UTF-8 (a brace, then not a NUL as
            # UTF-16 would have) read as it reads them, without its look at the encoding.
            utf8 = body[:1] == b"{" and body[1:2] != b"\x00"
            record = json.loads(body.decode("utf-8", "surrogatepass") if utf8 else body)
        except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
            return None
        value = record.get("id") if isinstance(record, dict) else None
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


class Body(httpx.AsyncByteStream):
    """An answer's body that can be read up to a limit in one go (a `LeanTransport`'s).
    The endpoint calls `read_at_most` once; iterating the body (`__aiter__`, which a
    subclass implements too) gives all of it."""

    async def read_at_most(self, limit: int) -> tuple[bytes, bool]:
        """The first `limit` bytes of the body at most, and whether that was all of it."""
        raise NotImplementedError


class LeanTransport(httpx.AsyncBaseTransport):
    """A transport that frames a request itself (`Host`, `Content-Length`, compression)
    and answers with a `Body`: the endpoint then builds no more of httpx's objects per
    row than the interface needs, and reads no answer through httpx's decoders."""


class Endpoint:
    """A kind's create endpoint (`path`, under `base_url`), reached through an httpx transport.

    Requests go straight to the transport (the engine of `affelios_import.wire.transport`
    unless another is given), not through `httpx.AsyncClient.send`: at thousands of
    requests a second its auth, redirect, cookie and hook machinery costs more CPU than
    the request itself, and none of it is wanted here (a redirect must never carry the
    key to another host). A `LeanTransport` gets the body as it is and hands the answer's
    body back already unpacked; httpx's encoding and decoding of bodies cost about 30 µs
    each a row (bench/README.md). Any other transport gets a request httpx framed.

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
        path: str,
    ) -> None:
        self._transport = transport
        self._lean = isinstance(transport, LeanTransport)
        base = httpx.URL(base_url)  # a path in it is kept, as AsyncClient(base_url=) keeps it
        self.url = base.copy_with(path=base.path.rstrip("/") + path)
        self._headers = httpx.Headers(headers)
        self._timeout = timeout
        # Getting a connection (waiting for one of the pool, or connecting) must end a
        # little before the whole attempt does, so that a request that never left the
        # machine fails as the transport's connect timeout (it provably never reached
        # the API, and may be sent again), not as this attempt's timeout (in doubt).
        connect = CONNECT_SHARE * timeout
        self._extensions = {
            "timeout": httpx.Timeout(timeout, connect=connect, pool=connect).as_dict()
        }
        self.redact = Redactor(
            [headers.get("X-Api-Key"), unquote(self.url.password or ""), self.url.password]
        )

    async def post(self, body: bytes) -> Answer:
        if self._lean:
            request = httpx.Request(
                "POST",
                self.url,
                headers=self._headers,
                stream=httpx.ByteStream(body),
                extensions=self._extensions,
            )
        else:
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
    limit = RECORD_BODY_MAX if 200 <= response.status_code < 300 else OTHER_BODY_MAX
    if isinstance(response.stream, Body):
        body, complete = await response.stream.read_at_most(limit)
        return Answer(response.status_code, response.headers, body, complete)
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        parts.append(part)
        size += len(part)
        if size > limit:
            return Answer(response.status_code, response.headers, b"".join(parts)[:limit], False)
    return Answer(response.status_code, response.headers, b"".join(parts))
