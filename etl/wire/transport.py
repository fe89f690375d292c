"""aiohttp under httpx's API: the transport, and what its errors mean.

Kept apart from `submit` so that a dry run, which sends nothing, does not import aiohttp.
"""

from __future__ import annotations

import ssl
import urllib.request

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def aiohttp_transport(*, base_url: str, concurrency: int) -> httpx.AsyncBaseTransport:
    """aiohttp under httpx: stock httpx's pool collapses past a few dozen connections.

    Certificates are checked as httpx checks them (`SSL_CERT_FILE` and `SSL_CERT_DIR`
    honoured). A proxy from `HTTPS_PROXY`/`HTTP_PROXY` (unless `NO_PROXY` exempts the
    host) is looked up once here: aiohttp's own `trust_env` looks it up, and `.netrc`,
    in a thread for every request.
    """
    url = httpx.URL(base_url)
    # Built only for https: loading the CA bundle takes 23 ms before the first request.
    ssl_context = httpx.create_ssl_context(trust_env=True) if url.scheme == "https" else None
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and urllib.request.proxy_bypass(url.host):
        proxy = None

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=concurrency, ssl=ssl_context or True)
        return aiohttp.ClientSession(connector=connector)

    return AiohttpTransport(client=session, proxy=httpx.Proxy(proxy) if proxy else None)


def original(exc: BaseException) -> BaseException:
    """The transport's own error behind an httpx one (httpx-aiohttp maps them coarsely)."""
    return exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc


def never_reached(exc: httpx.TransportError) -> bool:
    """Whether the request cannot have reached the API (no connection was made)."""
    cause = original(exc)
    if cause is not exc:
        return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def describe(exc: httpx.TransportError) -> str:
    cause = original(exc)
    if isinstance(cause, httpx.TimeoutException | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(cause, httpx.ConnectError | aiohttp.ClientConnectorError):
        return "could not connect"
    return f"connection lost ({type(cause).__name__})"


def tls_refused(exc: BaseException) -> str:
    """Why the server's certificate was not trusted, or "" when that is not the problem."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientConnectorCertificateError):
            seen = seen.certificate_error  # aiohttp's wrapper of the ssl module's error
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason)
        seen = seen.__cause__ or seen.__context__
    return ""
