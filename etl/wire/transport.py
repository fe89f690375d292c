"""The HTTP engine under httpx's API: pyreqwest (Rust's reqwest and hyper) behind a lean
httpx transport, and what its errors mean.

Chosen on numbers (bench/README.md, issue 26): behind this adapter a plain loop posts
1.4 times the rows a second of a bare aiohttp loop, where httpx over aiohttp managed 0.6.
Kept apart from `submit` so that a dry run, which sends nothing, does not import it.

What is the same for every request of a run is set once on the engine: the headers (the
run's requests all carry the same ones), the pool, the connect timeout, no redirects
(the key must never travel to another host), packed answers unpacked (gzip, deflate, and
the engine's brotli and zstd), and the proxy the environment names. It trusts the
certificates httpx would trust (the system's, and those `SSL_CERT_FILE` and
`SSL_CERT_DIR` name).

Per request, the body's bytes go over, and the status, headers and as much of the body as
the endpoint asks for come back: in one hand-off for an answer of up to 64 KB, which the
engine reads with the headers.

Its errors are told apart as httpx's are (`ConnectError`, `ConnectTimeout`, `PoolTimeout`:
the request never left the machine), with the engine's own error kept as the cause.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from pyreqwest import exceptions as engine
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.proxy import ProxyBuilder

from affelios_import.errors import SetupError
from affelios_import.urls import public
from affelios_import.wire.endpoint import Body, LeanTransport

# The engine's errors as httpx's (the most specific first), so that the sender tells a
# request that never left (connect) from one that may have reached the API.
_AS_HTTPX: tuple[tuple[type[Any], type[httpx.TransportError]], ...] = (
    (engine.ConnectTimeoutError, httpx.ConnectTimeout),
    (engine.PoolTimeoutError, httpx.PoolTimeout),
    (engine.ReadTimeoutError, httpx.ReadTimeout),
    (engine.WriteTimeoutError, httpx.WriteTimeout),
    (engine.RequestTimeoutError, httpx.ReadTimeout),
    (engine.ConnectError, httpx.ConnectError),
    (engine.ReadError, httpx.ReadError),
    (engine.WriteError, httpx.WriteError),
    (engine.DecodeError, httpx.ReadError),  # a body that would not unpack: lost
    (engine.RequestError, httpx.RemoteProtocolError),
)
# Set by the engine itself, never taken from the request.
_OWN = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_CONNECTING = "client error (Connect)"  # hyper's words for a connection that failed
READ_BLOCK = 64 << 10  # bytes asked of the engine at a time (it reads 64 KB with the headers)


def engine_transport(
    *, base_url: str, concurrency: int, connect_timeout: float
) -> httpx.AsyncBaseTransport:
    """The engine for one run's API: `concurrency` connections at most, a connection
    (or a free one of the pool) got within `connect_timeout` or the request fails as
    never sent, never a redirect followed, certificates and proxy as httpx takes them."""
    wait = timedelta(seconds=connect_timeout)
    builder = (
        ClientBuilder()
        .max_connections(concurrency)
        .pool_max_idle_per_host(concurrency)
        .pool_timeout(wait)
        .connect_timeout(wait)
        .follow_redirects(False)
        .gzip(True)
        .deflate(True)
        .http1_only()
    )
    # The engine trusts the system's certificates, and those `SSL_CERT_FILE` and
    # `SSL_CERT_DIR` name, as httpx does (tests/test_engine.py).
    return EngineTransport(_with_proxy(builder, httpx.URL(base_url)))


def _with_proxy(builder: ClientBuilder, url: httpx.URL) -> ClientBuilder:
    """The proxy `HTTPS_PROXY`/`HTTP_PROXY` name for the API, unless `NO_PROXY` exempts
    its host; looked up once, for the run. One the engine cannot use stops the run before
    anything is sent (shown without its credentials)."""
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or urllib.request.proxy_bypass(url.host):
        return builder.no_proxy()
    try:
        return builder.proxy(ProxyBuilder.all(proxy))
    except ValueError as exc:
        variable = f"{url.scheme.upper()}_PROXY"
        raise SetupError(
            f"{variable} {public(proxy)!r}: not a proxy URL ({exc}); expected http://host:port"
        ) from None


class EngineTransport(LeanTransport):
    """httpx's transport interface over a pyreqwest client, built on the first request
    with that request's headers as every request's (a request with other headers sends
    them itself)."""

    def __init__(self, builder: ClientBuilder) -> None:
        self._builder = builder
        self._client: Client | None = None
        self._headers: list[tuple[bytes, bytes]] = []

    def _engine(self, request: httpx.Request) -> Client:
        if self._client is None:
            self._headers = _own_headers(request)
            shown = {k.decode("latin-1"): v.decode("latin-1") for k, v in self._headers}
            self._client = self._builder.default_headers(shown).build()
        return self._client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        client = self._engine(request)
        builder = client.request(request.method, str(request.url))
        if (headers := _own_headers(request)) != self._headers:
            builder = builder.headers(
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
            )
        sending = builder.body_bytes(request.read()).build_streamed()
        try:
            answer = await _kept_cancel(sending.__aenter__())
        except engine.PyreqwestError as exc:
            raise _as_httpx(exc, request) from exc
        return httpx.Response(
            answer.status,
            headers=_headers(answer.headers),
            stream=_Body(answer.body_reader, sending, request),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def _own_headers(request: httpx.Request) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in request.headers.raw if k.lower() not in _OWN]


def _headers(headers: Any) -> list[tuple[str, str]]:
    """An answer's headers. The engine cannot give a value that is not ASCII (`²` as
    UTF-8, say) as text: such a header is left out, as a malformed field is ignored."""
    try:
        return list(headers.items())
    except ValueError:
        found = []
        for name in set(headers.keys()):
            try:
                found += [(name, value) for value in headers.getall(name)]
            except ValueError:
                continue
        return found


class _Body(Body):
    """An answer's body as the engine holds it (up to 64 KB read with the headers)."""

    def __init__(self, reader: Any, sending: Any, request: httpx.Request) -> None:
        self._reader = reader
        self._sending = sending
        self._request = request

    async def read_at_most(self, limit: int) -> tuple[bytes, bool]:
        # The engine's read returns as much as asked, unless the body ends first: an
        # answer shorter than a block is one hand-off. (Asked in blocks: without a
        # Content-Length the engine sets aside all that is asked for.)
        parts: list[bytes] = []
        size = 0
        try:
            while size <= limit:
                asked = min(limit + 1 - size, READ_BLOCK)
                if (chunk := await _kept_cancel(self._reader.read(asked))) is None:
                    break
                parts.append(bytes(chunk))
                size += len(parts[-1])
                if len(parts[-1]) < asked:
                    break
        except engine.PyreqwestError as exc:
            raise _as_httpx(exc, self._request) from exc
        data = b"".join(parts)
        return data[:limit], size <= limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while (chunk := await _kept_cancel(self._reader.read())) is not None:
                yield bytes(chunk)
        except engine.PyreqwestError as exc:
            raise _as_httpx(exc, self._request) from exc

    async def aclose(self) -> None:
        await _kept_cancel(self._sending.__aexit__(None, None, None))


T = TypeVar("T")


async def _kept_cancel(step: Awaitable[T]) -> T:
    """`await step`, an engine's, with no cancellation lost. The engine's awaitables may
    end normally although their task was cancelled meanwhile (pyreqwest 0.15: 63 of
    3,000 cancels timed around an answer's arrival, in closing the answer). A worker
    whose cancellation is lost goes on waiting for rows that never come, and the run
    never ends: so a cancellation the step swallowed, or turned into an error of its
    own, is raised here, as it would have been. (A timeout's own cancellation too:
    `asyncio.timeout` then says TimeoutError.)"""
    task = asyncio.current_task()
    cancels = 0 if task is None else task.cancelling()
    try:
        done = await step
    except Exception as exc:  # an engine's error for its own cancellation, say
        if task is not None and task.cancelling() > cancels:
            raise asyncio.CancelledError from exc
        raise
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError
    return done


def _as_httpx(exc: engine.PyreqwestError, request: httpx.Request) -> httpx.TransportError:
    if isinstance(exc, engine.ConnectError) and _CONNECTING not in _causes(exc):
        # Sent, then the connection closed before the answer: not a failure to connect.
        return httpx.RemoteProtocolError(str(exc), request=request)
    for theirs, ours in _AS_HTTPX:
        if isinstance(exc, theirs):
            return ours(str(exc), request=request)
    return httpx.RemoteProtocolError(str(exc), request=request)


def _causes(exc: engine.PyreqwestError) -> list[str]:
    details = getattr(exc, "details", None) or {}
    return [str(cause.get("message", "")) for cause in details.get("causes") or []]


def never_reached(exc: httpx.TransportError) -> bool:
    """Whether the request cannot have reached the API (no connection was made).

    The engine calls `ConnectError` any failure to send, a connection closed after the
    request was written included ("client error (SendRequest)"): only one whose causes
    say the connection itself failed ("client error (Connect)") never left."""
    cause = exc.__cause__
    if isinstance(cause, engine.ConnectTimeoutError | engine.PoolTimeoutError):
        return True
    if isinstance(cause, engine.ConnectError):
        return _CONNECTING in _causes(cause)
    if isinstance(cause, engine.PyreqwestError):
        return False
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def describe(exc: httpx.TransportError) -> str:
    """A failed attempt in a few words: timed out, could not connect, connection lost."""
    cause = exc.__cause__ if isinstance(exc.__cause__, engine.PyreqwestError) else exc
    if isinstance(cause, engine.RequestTimeoutError | engine.ReadTimeoutError):
        return "timed out"
    if isinstance(cause, httpx.TimeoutException | engine.ConnectTimeoutError):
        return "timed out"
    if isinstance(cause, engine.ConnectError) and _CONNECTING not in _causes(cause):
        return "connection lost (closed before the answer)"
    if isinstance(cause, engine.ConnectError | httpx.ConnectError):
        return "could not connect"
    return f"connection lost ({type(cause).__name__})"


def tls_refused(exc: BaseException) -> str:
    """Why the server's certificate was not trusted, or "" when that is not the problem."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason)
        if isinstance(seen, engine.ConnectError) and "certificate" in str(seen).lower():
            return _certificate_problem(str(seen))
        seen = seen.__cause__ or seen.__context__
    return ""


def _certificate_problem(message: str) -> str:
    """The engine's words for a certificate it refused, as short as they can be."""
    for line in message.splitlines():
        if "certificate" in line.lower():
            return line.strip()
    return message.strip()
