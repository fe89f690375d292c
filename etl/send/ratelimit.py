"""The API's own statement of its rate limit, read from the header fields of its answers.

Three spellings are read, the first one present winning:
- the IETF draft's (draft-ietf-httpapi-ratelimit-headers-10): `RateLimit-Policy:
  "default";q=100;w=60` (a quota of 100 requests a 60-second window) and `RateLimit:
  "default";r=50;t=30` (50 left, the window resets in 30 s), parsed as HTTP Structured
  Fields (`http-sf`);
- the earlier drafts' `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`;
- the common `X-RateLimit-Limit`, `-Remaining`, `-Reset` (a reset that is a Unix time,
  as GitHub sends, is taken as one).

A malformed field is ignored, never an error: the pace then learns from the answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import http_sf

from affelios_import.wire.endpoint import whole_number

UNIX_TIME = 1_000_000_000  # a reset above this is a moment, not a number of seconds


@dataclass(frozen=True, slots=True)
class Stated:
    """What the API said of its limit in one answer."""

    quota: int | None = None  # requests a window
    window: float | None = None  # seconds
    remaining: int | None = None  # requests left in the current window
    reset: float | None = None  # seconds until the window starts again

    @property
    def pace(self) -> float | None:
        """The requests a second that stay within the limit: the quota over its window,
        or else what is left over the time left."""
        if self.quota and self.window:
            return self.quota / self.window
        if self.remaining and self.reset:
            return self.remaining / self.reset
        return None

    def describe(self) -> str:
        if self.quota and self.window:
            return f"{self.quota} requests per {self.window:g} s"
        if self.quota:
            return f"{self.quota} requests a window"
        return f"{self.remaining} requests left for {self.reset:g} s"


def read(headers: Mapping[str, str], *, now: float | None = None) -> Stated | None:
    """The limit the answer states, or None when it states none (or only nonsense)."""
    raw = getattr(headers, "raw", None)  # httpx's: one pass over the names, not six lookups
    if raw is not None and not any(b"ratelimit" in name.lower() for name, _ in raw):
        return None
    if "RateLimit" in headers or "RateLimit-Policy" in headers:
        found = _ietf(headers.get("RateLimit-Policy"), headers.get("RateLimit"))
        if found is not None:
            return found
    for prefix in ("RateLimit-", "X-RateLimit-"):
        if prefix + "Limit" in headers or prefix + "Remaining" in headers:
            found = _plain(headers, prefix, now=time.time() if now is None else now)
            if found is not None:
                return found
    return None


def _ietf(policy: str | None, current: str | None) -> Stated | None:
    """The most restrictive of the policies, and what is left of the window that ends
    soonest; None when neither field can be read."""
    quotas = _pairs(policy, "q", "w")
    lefts = _pairs(current, "r", "t")
    if not quotas and not lefts:
        return None
    quota, window = min(quotas, key=lambda qw: qw[0] / max(qw[1], 1)) if quotas else (None, None)
    remaining, reset = min(lefts) if lefts else (None, None)
    return Stated(quota=quota, window=window, remaining=remaining, reset=reset)


def _pairs(value: str | None, first: str, second: str) -> list[tuple[int, int]]:
    """The (first, second) parameters of each member of a List field that has both as
    whole numbers (a window of 0 s means nothing: left out)."""
    found = []
    for params in _items(value):
        a, b = params.get(first), params.get(second)
        if _whole(a) and _whole(b) and (second != "w" or b):
            found.append((cast(int, a), cast(int, b)))
    return found


def _items(value: str | None) -> list[dict[str, object]]:
    if not value:
        return []
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="list")
    except (http_sf.StructuredFieldError, UnicodeEncodeError, ValueError, TypeError):
        return []
    if not isinstance(parsed, list):
        return []
    members = cast(list[tuple[object, object]], parsed)  # a List: (item, parameters) pairs
    return [params for _, params in members if isinstance(params, dict)]


def _plain(headers: Mapping[str, str], prefix: str, *, now: float) -> Stated | None:
    numbers = {}
    for name in ("Limit", "Remaining", "Reset"):
        text = headers.get(prefix + name, "").split(",")[0].split(";")[0].strip()
        if (number := whole_number(text)) is not None:
            numbers[name] = number
    if "Limit" not in numbers and "Remaining" not in numbers:
        return None
    reset = numbers.get("Reset")
    if reset is not None and reset > UNIX_TIME:
        reset = max(0, round(reset - now))
    return Stated(quota=numbers.get("Limit"), remaining=numbers.get("Remaining"), reset=reset)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
