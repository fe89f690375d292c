"""Shared pacing of requests: `--rate`, and learning how fast the API lets the run go.

Every request waits for its turn here, so the run has one clock, not one per worker. The
pace starts unlimited (or at `--rate`) and is judged only by the answers to requests sent
under it (a ticket from `turn`), so a change is never judged by what the pace before did:

- **Cut** as soon as its 429s are clearly more than a background of random ones
  (`BACKGROUND`, by two standard deviations): to a little under the rate the API
  accepted over its window (the `Retry-After` it gave, or 1 s) or, too soon to measure
  that, of this pace's requests; never by more than half; never below `BEST_FLOOR` of
  the best rate accepted over a whole window (so a share of random 429s cannot take the
  pace down to nothing), nor below `MIN_RATE`.
- **Raise** after half a window of clean answers: halfway back toward the least pace
  seen refused (doubling while none is known), then, once there, probing above it a
  window at a time by `PROBE`, growing (every `CONFIRMED_PROBE_EVERY` windows once the
  rate learned is confirmed as the API's limit); and drop the pace once the run cannot
  even reach it (the workers, not the pace, bound it then).
- **Pause** the whole run once for the first `Retry-After` (honoured once for the run,
  not once per row: refused rows go back through the pace without sleeping), and again
  whenever the API refuses nearly everything (`REFUSING_SHARE`), for its `Retry-After`
  or, without one, for a window that doubles each time in a row (up to `PAUSE_MAX`).
- **A spent window.** A token bucket refused keeps taking requests at its rate; a
  window (sliding, or fixed to the clock) that has been spent takes none until it moves
  on. So when every answer has been a 429 for longer than `STREAK_SPAN` intervals of the
  rate the API accepted over the last window (and `STREAK` answers in a row), the pace
  goes to what the API accepted over that window, a pause included (a window's quota),
  or, if more, the rate that got through while it refused (a bucket's); that is the
  pace known refused above; and the whole run waits until the oldest request accepted
  in the window is a window old, when a window gives back. A streak counts the answers
  to requests sent since the last pause, or since the pace was first set (not those to
  the unpaced start's burst, already judged), whatever pace they went under. Too soon
  after a pause or the start to measure over a window, a cut takes the same estimate
  instead of only halving.

An API that states its limit in its answers (see `send.ratelimit`) is taken at its word
from its first answer: the pace never exceeds `STATED_SHARE` of the stated quota, and
when it says nothing is left of the window, the whole run waits for the window's reset.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from math import sqrt

from affelios_import.logs import event
from affelios_import.send.ratelimit import Stated
from affelios_import.wire.endpoint import RETRY_AFTER_MAX

# A pace is cut when its 429s are clearly more than a background of random ones: more
# than BACKGROUND of its answers, by two standard deviations (so 10 refusals in 50
# answers cut it, 3 in 20 do not); it is raised when at most HIGH_SHARE were 429.
BACKGROUND = 0.03
HIGH_SHARE = 0.05
MIN_REFUSED = 3
BEST_FLOOR = 0.5  # of the best rate accepted over a whole window: the least a cut goes to
MIN_ANSWERS = 20  # clean answers that can raise a pace
REFUSING_SHARE = 0.90  # refused nearly everything: the run pauses
STREAK = 10  # 429s in a row, at the least, that can show a spent window
STREAK_SPAN = 2.0  # ...lasting this many intervals of the rate accepted over the window
FAST_RAISE = 2.0  # per judgement, while no pace is known to be refused
MIN_RATE = 0.5  # requests a second: the least pace (the pauses slow the run further)
PROBE = 0.02  # the first raise above the learned rate, after a clean window; it grows
PROBE_GROWTH = 1.5  # by this each clean window in a row,
PROBE_MAX = 0.25  # up to this
CONFIRMED_PROBE_EVERY = 5  # windows between probes, once the learned rate is the limit
BELOW_LEARNED = 0.97  # a cut goes a little under the accepted rate, so jitter fits in
WINDOW = 1.0  # seconds over which the accepted rate is measured, without a Retry-After
PAUSE_MAX = 60.0  # seconds: the longest pause without a Retry-After
MIN_PAUSE = 0.01  # seconds: the least wait for a spent window to give back
# A learned rate is the API's limit (and so claimed) only once paces under it drew, over
# this many answers, at most this share of the run's share of 429s: random 429s come at
# any pace.
CONFIRMING_ANSWERS = 100
CONFIRMING_SHARE = 0.5
STATED_SHARE = 0.98  # of a stated limit: room for the API's clock and ours to differ


class Throttle:
    def __init__(
        self,
        *,
        cap: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`sleep` waits for a turn: the run's own cuts it short when the run stops, so a
        stop is not kept waiting by a pause."""
        self._cap = cap
        self._clock = clock
        self._sleep = sleep
        self.rate: float | None = cap  # the current pace; None: unpaced
        self.learned: float | None = None  # the rate the API accepted, learned at a cut
        self.confirmed = False  # a pace under `learned` drew few 429s: it is a limit
        self._under = self._under_refused = 0  # answers under the rate it learned; 429s
        self._answered = 0  # answers, all told (of which `throttled` were 429)
        self.cuts = 0  # how often the pace was cut, for the summary and tests
        self.throttled = 0  # answers that were 429s, all told (for the metrics)
        self.paused = 0.0  # seconds the whole run sent nothing, waiting as the API asked
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._window = WINDOW
        self._accepted: deque[float] = deque()  # when answers were accepted, over a window
        self._started: float | None = None  # the first turn
        self._ceiling: float | None = None  # the least pace the API was seen to refuse
        self._honoured = False  # a Retry-After was waited out by the whole run
        self._quiet_pauses = 0  # pauses in a row without a Retry-After
        self._probe = PROBE
        self._best = 0.0  # the highest rate the API was seen to accept, over a whole window
        self._judgement = 0  # counts the paces set: which one a request went out under
        self._since: float | None = None  # when the current pace was set
        self._released = 0  # requests sent under it
        self._answers = 0  # answers to those requests
        self._refused = 0  # of which 429
        self._stated_pace: float | None = None
        self._refused_at: deque[float] = deque()  # when answers were 429, over a window
        self._streak = 0  # 429s in a row, whatever pace they were sent under
        self._streak_since = 0.0  # when the first of them came
        self._streak_from = 0  # the first pace whose requests a streak counts
        self.stated = ""  # the limit the API stated, in words ("" if it stated none)

    async def turn(self) -> int:
        """Wait until this worker may send its next request; returns which pace it went
        out under, for `answered`."""
        while True:
            start, ticket = self.reserve()
            if (wait := start - self._clock()) > 0:
                await self._sleep(wait)
                if ticket != self._judgement:
                    continue  # the pace changed meanwhile: queue again under the new one
            return ticket

    def reserve(self) -> tuple[float, int]:
        """The moment the next request may go, and which pace it goes under: `turn`'s
        arithmetic, without its waiting."""
        now = self._clock()
        if self._since is None:
            self._since = self._started = now  # the first turn starts the first judgement
        start = max(now, self._paused_until)
        rate = self.rate
        if self._stated_pace is not None:
            rate = self._stated_pace if rate is None else min(rate, self._stated_pace)
        if rate is not None:
            start = max(start, self._next_slot)
            self._next_slot = start + 1 / rate
        self._released += 1
        return start, self._judgement

    def heed(self, limit: Stated) -> None:
        """Pace by the limit an answer stated (one without a Retry-After: that wins)."""
        if (pace := limit.pace) is not None:
            # Never below the least pace: a quota of one a day would hold the run for
            # days; going on, it meets the API's 429s, which pause it or stop it.
            self._stated_pace = max(pace * STATED_SHARE, MIN_RATE)
        if limit.remaining == 0 and limit.reset:
            # Waited out as a Retry-After is: at most RETRY_AFTER_MAX, logged.
            self._pause(self._clock(), min(limit.reset, RETRY_AFTER_MAX))
        if limit.quota and (said := limit.describe()) != self.stated:
            self.stated = said
            event("rate_limit", stated=said)

    @property
    def described(self) -> str:
        """The limit the API stated, or the one the run learned, in words ("" if none)."""
        if self.stated:
            return f"{self.stated}, as its answers state"
        if self.learned is not None and self.confirmed:
            return f"about {self.learned:.0f} requests per 1 s, learned from its 429s"
        return ""

    def answered(self, ticket: int, *, throttled: bool, retry_after: float | None = None) -> None:
        """Tell the pace how the API answered a request sent on `ticket` (as `turn`
        returned it): any answer at all, not a dropped connection."""
        now = self._clock()
        self.throttled += throttled
        self._answered += 1
        if retry_after:
            self._window = min(max(retry_after, WINDOW), PAUSE_MAX)
        if throttled:
            self._count_refused(now, counts=ticket >= self._streak_from)
        else:
            self._streak = 0
            accepted = self._accepted
            accepted.append(now)
            while accepted[0] < now - self._window:
                accepted.popleft()
            if now - (self._started or now) >= self._window:  # a whole window to go by
                self._best = max(self._best, len(accepted) / self._window)
        if self._spent(now):
            return
        if ticket != self._judgement or self._since is None:
            return  # sent under an earlier pace: it says nothing of this one
        self._answers += 1
        self._refused += throttled
        share = self._refused / self._answers
        self._confirm(throttled)
        if throttled and retry_after and not self._honoured:
            self._honoured = True  # once for the run: the whole run waits, then paces
            self._cut(now, share, pause=retry_after)
        elif self._evident(share):
            refusing = share >= REFUSING_SHARE and self._answers >= MIN_ANSWERS
            self._cut(now, share, pause=self._refusing_pause(retry_after) if refusing else None)
        elif self._clean(now, share):
            self._raise(now)

    def _count_refused(self, now: float, *, counts: bool) -> None:
        refused = self._refused_at
        refused.append(now)
        while refused[0] < now - self._window:
            refused.popleft()
        if not counts:
            return
        if not self._streak:
            self._streak_since = now
        self._streak += 1

    def _spent(self, now: float) -> bool:
        """Whether the API's window is spent (see the module's doc): if so, the pace goes to
        the estimate and the run waits for the window to give back."""
        if self._streak < STREAK or now < self._paused_until:
            return False
        window, accepted = self._window, self._accepted
        if now - self._streak_since < STREAK_SPAN / max(self._quota(now), MIN_RATE):
            return False  # no longer than a bucket's refill leaves between acceptances
        self._streak = 0
        if (estimate := self._estimate(now)) is not None:
            pace = max(min(self.rate or estimate, estimate * BELOW_LEARNED), MIN_RATE)
            # Over a whole window, a pause included: a window's quota, not its burst.
            self.rate, self._ceiling, self.learned = pace, estimate, estimate
            self.cuts += 1
            self._probe = PROBE
            event("throttle", share_429=1.0, pace_per_s=round(pace, 1), window_spent=True)
        back = accepted[0] + window - now if accepted else window
        self._pause(now, max(back, MIN_PAUSE))
        return True

    def _estimate(self, now: float) -> float | None:
        """The rate to go at, too soon to measure it over a window: the larger of what got
        through since the API began refusing (a bucket's rate) and what it accepted over
        the last window, a pause included (a window's quota, given back at once)."""
        start = now - self._window
        refused = [at for at in self._refused_at if at >= max(start, self._paused_until)]
        if len(refused) < MIN_REFUSED:
            return None
        first = refused[0]
        through = sum(1 for at in self._accepted if at > first) / max(now - first, 1e-3)
        return max(through, self._quota(now))

    def _quota(self, now: float) -> float:
        """Requests a second the API accepted over the last window, a pause included."""
        start = now - self._window
        return sum(1 for at in self._accepted if at >= start) / self._window

    def _confirm(self, throttled: bool) -> None:
        """Count an answer to a pace at or under the rate learned: once CONFIRMING_ANSWERS
        of them drew at most CONFIRMING_SHARE of the run's share of 429s, that rate is
        the API's limit. (Random 429s come at any pace, under it as much as over it.)"""
        if self.confirmed or self.learned is None or self.rate is None or self.rate > self.learned:
            return
        self._under += 1
        self._under_refused += throttled
        if self._under >= CONFIRMING_ANSWERS:
            share = self.throttled / self._answered
            self.confirmed = self._under_refused <= self._under * share * CONFIRMING_SHARE

    def _evident(self, share: float) -> bool:
        """Whether the current pace has clearly more 429s than a background of random
        ones: more than BACKGROUND of its answers, by two standard deviations."""
        refused = self._refused
        return refused >= MIN_REFUSED and refused - 2 * sqrt(refused) > BACKGROUND * self._answers

    def _clean(self, now: float, share: float) -> bool:
        """Whether the current pace has shown itself clean: few 429s, over half a window
        at least (a burst the API allows is not its rate), in enough answers (or, at a
        slow pace, over two windows)."""
        elapsed = now - (self._since or now)
        if share > HIGH_SHARE or elapsed < self._window / 2:
            return False
        return self._answers >= MIN_ANSWERS or elapsed >= 2 * self._window

    def _refusing_pause(self, retry_after: float | None) -> float:
        """How long the whole run waits when the API refuses nearly everything."""
        if retry_after is not None:
            return retry_after
        self._quiet_pauses += 1
        return min(self._window * 2.0 ** (self._quiet_pauses - 1), PAUSE_MAX)

    def _accepted_rate(self, now: float) -> float | None:
        """Requests a second the API accepted over its last window (called when it refuses:
        the run was going faster than that); None with less than half a window to go by."""
        accepted, start = self._accepted, now - self._window
        # Not over a pause: the API accepted nothing then because nothing was sent.
        since = max(start, self._started or now, self._paused_until)
        if now - since < self._window / 2:
            return None
        return sum(1 for at in reversed(accepted) if at >= since) / (now - since)

    def _cut(self, now: float, share: float, *, pause: float | None) -> None:
        elapsed = max(now - (self._since or now), 1e-3)
        going = self.rate if self.rate is not None else self._released / elapsed
        through = going * (1 - share)  # the rate at which this pace's requests got through
        accepted = self._accepted_rate(now)
        if accepted is not None:
            self.learned = min(accepted, through)
        elif pause is None and (estimate := self._estimate(now)) is not None:
            # Too soon to measure over a window: the estimate paces, but is not learned
            # (a window's burst, answered over more than a window, can look like more).
            accepted = through = estimate
        elif pause is None:
            # Too soon after a pause or the start to measure over a window.
            accepted = max(through, self.learned or 0.0)
        pace = min(going, max(going / 2, min(accepted or 0.0, through) * BELOW_LEARNED))
        self._ceiling = going if accepted is None else accepted or None  # 0: nothing known
        # Never below half the best rate the API accepted over a whole window in this run:
        # random 429s, above the background allowed for, cut the pace as a limit would,
        # but not down to nothing. (Half: a burst the API allowed, or a fixed window's
        # quota spent on both sides of its reset, can show twice its rate in one window.)
        pace = max(pace, MIN_RATE, self._best * BEST_FLOOR)
        if self._cap is not None:
            pace = min(pace, self._cap)
        unpaced = self.rate is None
        self.rate, self.cuts, self._probe = pace, self.cuts + 1, PROBE
        event(
            "throttle",
            share_429=round(share, 3),
            pace_per_s=round(pace, 1),
            learned_per_s=None if self.learned is None else round(self.learned, 1),
        )
        if pause is not None:
            self._pause(now, pause)
        self._judge_anew(max(now, self._paused_until))
        if unpaced:
            self._streak_from = self._judgement  # the unpaced burst's answers say nothing

    @property
    def _probe_every(self) -> float:
        """Windows of clean answers before a probe above the learned rate: one, or, once
        that rate is known to be the API's limit, a few (each probe past a limit costs a
        few 429s; it is there to find a limit that was raised)."""
        return CONFIRMED_PROBE_EVERY if self.confirmed else 1

    def _raise(self, now: float) -> None:
        self._quiet_pauses = 0
        rate, elapsed = self.rate, max(now - (self._since or now), 1e-3)
        if rate is None or rate == self._cap:
            self._answers = self._refused = 0  # the same pace, judged on
            return
        if self._cap is None and self._released < rate * elapsed / 2:
            self.rate = None  # the pace no longer binds: let the workers run
            event("throttle", pace_per_s=None)
        elif self._ceiling is None:
            self.rate = rate * FAST_RAISE
        elif rate < self._ceiling * (1 - PROBE):
            self.rate = (rate + self._ceiling) / 2  # halfway to the pace refused last
        elif now - (self._since or now) >= self._window * self._probe_every:
            self.rate = rate * (1 + self._probe)  # probing for more, ever bolder
            self._probe = min(PROBE_GROWTH * self._probe, PROBE_MAX)
            if self.rate > self._ceiling * (1 + PROBE_MAX):
                self._ceiling = None  # well past what was refused: that limit is gone
        else:
            return  # not a whole window yet: judge on
        if self._cap is not None and self.rate is not None:
            self.rate = min(self.rate, self._cap)
        self._judge_anew(now)

    def _pause(self, now: float, seconds: float) -> None:
        """Send nothing for `seconds` from `now`: the whole run waits."""
        if (until := now + seconds) > self._paused_until:
            event("pause", seconds=round(seconds, 3))
            self.paused += until - max(now, self._paused_until)
            self._paused_until = until
            self._judge_anew(until)
            self._streak_from = self._judgement  # nor do those sent before a pause

    def _judge_anew(self, since: float) -> None:
        """Judge the answers to requests sent from `since` on (after a pause, or under a
        new pace) by themselves; the requests waiting for their turn queue again."""
        self._judgement += 1
        self._since, self._released, self._answers, self._refused = since, 0, 0, 0
        self._next_slot = since
