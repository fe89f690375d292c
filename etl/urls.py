"""The base URL of the API: which ones are allowed, how it is shown, what identifies it.

A base URL may not carry credentials (`https://user:pass@host`): the API key is the only
credential, and those would go out as HTTP Basic authentication from the command line
(`check` refuses them). `public` is the URL as every message, log line and summary shows
it (without credentials, as a journal's database URL may hold them); `identity` is the
API as the journal knows it, the same for every spelling of one URL
(`http://LOCALHOST:80/` and `http://localhost`).
"""

from __future__ import annotations

import ipaddress
import posixpath
from urllib.parse import parse_qs, urlsplit, urlunsplit

from affelios_import.errors import SetupError

DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(url: str) -> tuple[str, str, str, str]:
    """(scheme, host as written in a URL, ":port" or "", path), lower-cased where it may be."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    try:
        port = parts.port
    except ValueError:
        port = None
    shown_port = "" if port is None or port == DEFAULT_PORTS.get(scheme) else f":{port}"
    return scheme, host, shown_port, parts.path


DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database(location: object) -> bool:
    """Whether a journal's location is a PostgreSQL database's URL (not a file's path)."""
    return isinstance(location, str) and location.strip().lower().startswith(DATABASE_SCHEMES)


def shown_journal(location: object) -> str:
    """A journal's location as messages show it: a database's URL without credentials."""
    if not is_database(location):
        return str(location)
    try:
        return public(str(location))
    except ValueError:
        return "postgresql://…"


def has_password(url: str) -> bool:
    """Whether a URL carries a password: in its user part, or (libpq's) in its query."""
    try:
        parts = urlsplit(url.strip())
        return bool(parts.password) or "password" in parse_qs(parts.query)
    except ValueError:
        return True  # cannot be told apart: taken as one


def public(url: str) -> str:
    """The URL without its credentials (and without a query, which may hold a token)."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def identity(url: str) -> str:
    """The API as the journal knows it: scheme and host lower-cased, no default port, no
    credentials, no trailing `/`, `.` and `..` segments resolved."""
    scheme, host, port, path = _host_port(url)
    path = posixpath.normpath(path) if path not in ("", "/") else ""
    path = "" if path in (".", "/", "//") else path.rstrip("/")
    return f"{scheme}://{host}{port}{path}"


def _loopback(host: str) -> bool:
    """Whether `host` is this machine: a loopback address (an IPv4 one mapped into IPv6,
    `::ffff:127.0.0.1`, too), or `localhost` (with or without its final dot)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower() in ("localhost", "localhost.")
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def check(
    url: str,
    *,
    allow_insecure_http: bool,
    option: str = "--base-url",
    allow: str = "--allow-insecure-http",
) -> str:
    """The base URL to use (without a trailing slash); plain http only to loopback, unless
    allowed. Raises SetupError naming `option` (and `allow`, the way to allow plain
    http: the CLI's flags, or the library's arguments), whose message never shows the
    URL's credentials (nor any of a URL that cannot be split: they could not be told
    apart)."""
    try:
        parts = urlsplit(url.strip())
        shown = public(url)
    except ValueError as exc:  # "Invalid IPv6 URL": an unclosed bracket, say
        raise SetupError(f"{option}: not a URL ({exc}); expected https://host") from exc
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise SetupError(f"{option} {shown!r}: the port is not a number") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SetupError(f"{option} {shown!r}: expected https://host")
    if parts.username is not None or parts.password is not None:
        raise SetupError(
            f"{option} {shown!r}: remove the user and password from the URL: they would be "
            "sent as HTTP Basic authentication, and the API key is the only credential"
        )
    if parts.scheme.lower() == "http" and not allow_insecure_http and not _loopback(parts.hostname):
        raise SetupError(
            f"{option} {shown!r}: plain http would send the API key unencrypted; "
            f"use https, or {allow} if you must"
        )
    return url.strip().rstrip("/")
