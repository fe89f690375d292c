"""Shared pacing of requests: `--rate`, and slowing the whole run down when the API throttles.

Every worker waits for its turn here before each request, so the run has one clock, not
one per worker. The pace starts unlimited (or at `--rate`). Each period, the share of
answers that were 429 is measured:

- above `HIGH_429_SHARE`, the pace is set to the rate at which the API accepted requests
  during the period (what gets through is what the API allows);
- otherwise, a pace is raised: by `SLOW_RAISE` a period soon after a cut, by `FAST_RAISE`
  once the API has been calm for `CALM` seconds (a careful return to speed), and dropped
  altogether once it is well above what the run achieves.

A scattering of 429s (below the threshold) only delays the throttled rows themselves,
each by its `Retry-After`. When the API refused nearly everything during a period and
said how long to wait, the whole run waits that long.

An API that states its limit in its answers (see `etl.ratelimit`) is taken at its word
from its first answer: the pace never exceeds `STATED_SHARE` of the stated quota, and
when it says nothing is left of the window, the whole run waits for the window's reset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from etl.logs import event
from etl.ratelimit import Stated

PERIOD = 0.5  # seconds between adjustments
MIN_ANSWERS = 20  # fewer answers in a period say too little (one 429 in 8 is 12%)
HIGH_429_SHARE = 0.10
REFUSING_SHARE = 0.90
FAST_RAISE = 1.10  # per period, when the API has not throttled for CALM seconds
SLOW_RAISE = 1.03  # per period, soon after it did
CALM = 2.0
MIN_RATE = 0.5  # requests per second
STATED_SHARE = 0.95  # of a stated limit: room for the API's clock and ours to differ


class Throttle:
    def __init__(self, *, cap: float | None = None, clock: Callable[[], float] = time.monotonic):
        self._cap = cap
        self._clock = clock
        self.rate: float | None = cap  # the current pace; None: unpaced
        self._last_cut = float("-inf")
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._period_start: float | None = None  # the first turn starts the first period
        self._accepted = 0
        self._throttled = 0
        self._retry_after: float | None = None
        self.cuts = 0  # how often the pace was cut, for the summary and tests
        self._stated_pace: float | None = None
        self.stated = ""  # the limit the API stated, in words ("" if it stated none)

    async def turn(self) -> None:
        """Wait until this worker may send its next request."""
        now = self._clock()
        if self._period_start is None:
            self._period_start = now
        start = max(now, self._paused_until)
        rate = self.rate
        if self._stated_pace is not None:
            rate = self._stated_pace if rate is None else min(rate, self._stated_pace)
        if rate is not None:
            start = max(start, self._next_slot)
            self._next_slot = start + 1 / rate
        if start > now:
            await asyncio.sleep(start - now)

    def heed(self, limit: Stated) -> None:
        """Pace by the limit an answer stated (one without a Retry-After: that wins)."""
        if (pace := limit.pace) is not None:
            self._stated_pace = pace * STATED_SHARE
        if limit.remaining == 0 and limit.reset:
            self._paused_until = max(self._paused_until, self._clock() + limit.reset)
        if limit.quota and (said := limit.describe()) != self.stated:
            self.stated = said
            event("rate_limit", stated=said)

    def answered(self, *, throttled: bool, retry_after: float | None = None) -> None:
        """Tell the pace how the API answered (any answer at all, not a dropped one)."""
        if throttled:
            self._throttled += 1
            self._retry_after = retry_after or self._retry_after
        else:
            self._accepted += 1
        now = self._clock()
        elapsed = now - (self._period_start or now)
        answers = self._accepted + self._throttled
        if elapsed < PERIOD or answers < MIN_ANSWERS:
            return
        share = self._throttled / answers
        if share >= REFUSING_SHARE and self._retry_after:
            self._paused_until = max(self._paused_until, now + self._retry_after)
        if share > HIGH_429_SHARE:
            self.rate = max(MIN_RATE, self._accepted / elapsed)
            self._last_cut = now
            self.cuts += 1
            event("throttle", share_429=round(share, 3), pace_per_s=round(self.rate, 1))
        elif self.rate is not None:
            calm = now - self._last_cut >= CALM
            raised = self.rate * (FAST_RAISE if calm else SLOW_RAISE)
            if self._cap is None and raised > 2 * answers / elapsed:
                self.rate = None  # the pace no longer binds: let the workers run
                event("throttle", pace_per_s=None)
            else:
                self.rate = raised
        if self._cap is not None and self.rate is not None:
            self.rate = min(self.rate, self._cap)
        self._period_start, self._accepted, self._throttled = now, 0, 0
        self._retry_after = None
