"""What a person at the terminal sees while a run goes (`affelios-import` without -q)."""

from __future__ import annotations

import sys
from typing import Any

import click

from affelios_import import Progress


class Watch:
    """What a person at the terminal sees while the run goes: how the columns map (once,
    before the first request), then, on a terminal, a bar with the total, percentage,
    rate, ETA and live counts, redrawn at every report (four times a second)."""

    def __init__(self, *, bar: bool) -> None:
        self._want_bar = bar
        self._bar: Any = None
        self._told = False

    def __call__(self, state: Progress) -> None:
        if not self._told:
            self._told = True
            click.echo(state.columns, err=True)
        if not self._want_bar:
            return
        if self._bar is None:
            from tqdm import tqdm  # 35 ms to import, for runs that show progress only

            self._bar = tqdm(
                total=state.rows_total, unit=" rows", file=sys.stderr, dynamic_ncols=True
            )
        counts = state.counts
        self._bar.set_postfix_str(
            f"created={counts.get('created', 0)} failed={counts.get('failed', 0)} "
            f"retries={state.retries}",
            refresh=False,
        )
        self._bar.update(state.rows_done - self._bar.n)
        self._bar.refresh()  # the clock and rate move even when no row finished

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
