"""pyreqwest (Rust's reqwest and hyper) under httpx's transport interface: a lean
adapter, measured as a candidate engine for the importer (issue 26, item 1; see
bench/README.md). Not the importer's engine: behind the whole importer it measured no
faster than aiohttp's. To try it as the engine, build it in `prepare.make_endpoint` and
import this module as `transport_errors` in `send.submit`.

Per request it does only what must be done per request: the body handed over as bytes,
the answer's status, headers and body stream handed back. What is the same for every
request of a run is set once on the engine: the headers (the run's requests all carry
the same), the pool size, the connect timeout, no redirects (the key must not travel),
gzip, the certificates and the proxy that httpx would use.

Its errors are told apart as httpx's are (`httpx.ConnectError` and `ConnectTimeout`:
the request never left the machine), with the engine's error kept as the cause.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pyreqwest import exceptions as engine
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.proxy import ProxyBuilder

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


def reqwest_transport(
    *, base_url: str, concurrency: int, connect_timeout: float
) -> httpx.AsyncBaseTransport:
    """The engine for one run's API: `concurrency` connections at most, never a redirect
    followed, gzip answers unpacked, certificates and proxy as httpx would take them."""
    builder = (
        ClientBuilder()
        .max_connections(concurrency)
        .pool_max_idle_per_host(concurrency)
        .follow_redirects(False)
        .gzip(True)
        .connect_timeout(timedelta(seconds=connect_timeout))
        .http1_only()
    )
    url = httpx.URL(base_url)
    if url.scheme == "https":
        for pem in _trusted():
            builder = builder.add_root_certificate_pem(pem)
    builder = _with_proxy(builder, url)
    return ReqwestTransport(builder)


def _trusted() -> list[bytes]:
    """The certificates httpx trusts beside the engine's own: `SSL_CERT_FILE`, and the
    files of `SSL_CERT_DIR` (as `httpx.create_ssl_context(trust_env=True)` reads them)."""
    found = []
    if (file := os.environ.get("SSL_CERT_FILE")) and Path(file).is_file():
        found.append(Path(file).read_bytes())
    if (folder := os.environ.get("SSL_CERT_DIR")) and Path(folder).is_dir():
        found += [p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()]
    return [pem for pem in found if b"-----BEGIN CERTIFICATE-----" in pem]


def _with_proxy(builder: ClientBuilder, url: httpx.URL) -> ClientBuilder:
    """The proxy `HTTPS_PROXY`/`HTTP_PROXY` name for the API, unless `NO_PROXY` exempts
    its host; looked up once, as for the aiohttp engine."""
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or urllib.request.proxy_bypass(url.host):
        return builder.no_proxy()
    return builder.proxy(ProxyBuilder.all(proxy))


class ReqwestTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over a pyreqwest client built on the first request,
    with that request's headers as every request's (a request with other headers sends
    them itself)."""

    def __init__(self, builder: ClientBuilder) -> None:
        self._builder = builder
        self._client: Client | None = None
        self._headers: list[tuple[bytes, bytes]] = []

    def _engine(self, request: httpx.Request) -> Client:
        if self._client is None:
            self._headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _OWN]
            shown = {k.decode("latin-1"): v.decode("latin-1") for k, v in self._headers}
            self._client = self._builder.default_headers(shown).build()
        return self._client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        client = self._engine(request)
        builder = client.request(request.method, str(request.url))
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _OWN]
        if headers != self._headers:
            builder = builder.headers(
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
            )
        builder = builder.body_bytes(request.content)
        stack = AsyncExitStack()
        try:
            answer = await stack.enter_async_context(builder.build_streamed())
        except engine.PyreqwestError as exc:
            await stack.aclose()
            raise _as_httpx(exc, request) from exc
        except BaseException:
            await stack.aclose()
            raise
        return httpx.Response(
            answer.status,
            headers=_headers(answer.headers),
            stream=_Body(answer.body_reader, stack, request),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


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


class _Body(httpx.AsyncByteStream):
    def __init__(self, reader: object, stack: AsyncExitStack, request: httpx.Request) -> None:
        self._reader = reader
        self._stack = stack
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while (chunk := await self._reader.read()) is not None:  # type: ignore[attr-defined]
                yield bytes(chunk)
        except engine.PyreqwestError as exc:
            raise _as_httpx(exc, self._request) from exc

    async def aclose(self) -> None:
        await self._stack.aclose()


def _as_httpx(exc: engine.PyreqwestError, request: httpx.Request) -> httpx.TransportError:
    if isinstance(exc, engine.ConnectError) and _CONNECTING not in _causes(exc):
        # Sent, then the connection closed before the answer: not a failure to connect.
        return httpx.RemoteProtocolError(str(exc), request=request)
    for theirs, ours in _AS_HTTPX:
        if isinstance(exc, theirs):
            return ours(str(exc), request=request)
    return httpx.RemoteProtocolError(str(exc), request=request)


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


_CONNECTING = "client error (Connect)"  # hyper's words for a connection that failed


def _causes(exc: engine.PyreqwestError) -> list[str]:
    details = getattr(exc, "details", None) or {}
    return [str(cause.get("message", "")) for cause in details.get("causes") or []]


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


def describe(exc: httpx.TransportError) -> str:
    """A failed attempt in a few words: timed out, could not connect, connection lost."""
    cause = exc.__cause__ if isinstance(exc.__cause__, engine.PyreqwestError) else exc
    if isinstance(cause, engine.RequestTimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(cause, engine.ConnectError) and _CONNECTING not in _causes(cause):
        return "connection lost (closed before the answer)"
    if isinstance(cause, engine.ConnectError | httpx.ConnectError):
        return "could not connect"
    return f"connection lost ({type(cause).__name__})"
