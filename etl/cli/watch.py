"""What a person at the terminal sees while a run goes (`affelios-import` without -q)."""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

import click

from affelios_import import Progress
from affelios_import.outcome import SENT

RATE_WINDOW = 10.0  # seconds of sending the rate is taken over
# The bar without tqdm's own rate and time left (they would count every row alike): the
# run's own, and the counts, follow as text (`tail`). What matters most comes first, so
# that a narrow terminal, which cuts the line, cuts the counts, not the time left.
BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}"


class Watch:
    """What a person at the terminal sees while the run goes: how the columns map (once,
    before the first request), then, on a terminal, a bar with the total, percentage,
    the rate of rows sent and the time left at that rate, and the live counts of the
    kind's statuses (`Kind.watched`, and any other once a row has it), redrawn at every
    report (four times a second). A stopped run's bar ends where its rows ended: rows
    never sent (`not_sent`) do not fill it."""

    def __init__(self, *, bar: bool) -> None:
        self._want_bar = bar
        self._bar: Any = None
        self._told = False
        self._sent: deque[tuple[float, int]] = deque()  # (time, rows sent so far)

    def __call__(self, state: Progress) -> None:
        if not self._told:
            self._told = True
            click.echo(state.columns, err=True)
        if not self._want_bar:
            return
        if self._bar is None:
            from tqdm import tqdm  # 35 ms to import, for runs that show progress only

            self._bar = tqdm(
                total=state.rows_total,
                unit=" rows",
                file=sys.stderr,
                dynamic_ncols=True,
                bar_format=BAR_FORMAT,
            )
        counts = state.counts
        if state.stopping:
            self._bar.set_description_str("stopping ", refresh=False)
        self._bar.bar_format = BAR_FORMAT + tail(state, self._pace(state))
        done = state.rows_done - counts.get("not_sent", 0)
        self._bar.update(done - self._bar.n)
        self._bar.refresh()  # the clock moves even when no row finished

    def _pace(self, state: Progress) -> str:
        """`412 rows/s sent, ~0:25 left` over the last RATE_WINDOW seconds of sending."""
        now, sent = time.monotonic(), sum(state.counts.get(s, 0) for s in SENT)
        self._sent.append((now, sent))
        while len(self._sent) > 2 and now - self._sent[1][0] >= RATE_WINDOW:
            self._sent.popleft()
        then, before = self._sent[0]
        if now - then < 0.5 or sent <= before:
            return ""
        rate = (sent - before) / (now - then)
        to_go = max(0, state.rows_total - state.rows_done)
        left = "" if state.stopping else f", ~{_clock(to_go / rate)} left"
        shown = f"{rate:,.1f}" if rate < 10 else f"{rate:,.0f}"
        return f"{shown} rows/s sent{left}"

    def say(self, line: str) -> None:
        """Print a line above the bar (or alone, without one)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def tail(state: Progress, pace: str) -> str:
    """What follows the bar's clock, as a literal of its format: `, 412 rows/s sent, ~0:25
    left] created=1,204 exists=3 skipped=0 invalid=2 failed=0 retries=5`."""
    text = f"{', ' + pace if pace else ''}] {counts(state)}"
    return text.replace("{", "{{").replace("}", "}}")


def counts(state: Progress) -> str:
    """`created=1,204 exists=3 skipped=0 invalid=2 failed=0 retries=5`: the kind's own
    statuses, and any other once a row has it."""
    seen = state.counts
    shown = [*state.watched, *(s for s in seen if s not in state.watched and seen[s])]
    words = [f"{status}={seen.get(status, 0):,}" for status in shown]
    words.append(f"retries={state.retries:,}")
    return " ".join(words)


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
