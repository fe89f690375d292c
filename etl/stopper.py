"""Stopping a run from outside, as Ctrl-C does (`Importer.stop`, the CLI's signals)."""

from __future__ import annotations

import asyncio

from affelios_import.outcome import StopReason
from affelios_import.send.submit import Submitter


class Stopper:
    """Stops a run from outside, as Ctrl-C does: the first `stop` sends nothing more,
    gives the requests in flight `grace` seconds, then writes every row (the rest
    `not_sent`); a second one (or `at_once`) abandons the requests in flight and stops
    reading at once; the rows read so far are still written.

    Called on the run's event loop only (`Importer.stop` hands calls from other threads
    over to it); a stop asked before the run can act is carried out as soon as it can.
    The core installs no signal handlers: the CLI's call this.
    """

    def __init__(self) -> None:
        self.at_once = False
        self._submitter: Submitter | None = None
        self._grace = 0.0
        self._asked: list[tuple[bool, str]] = []

    def attach(self, submitter: Submitter, *, grace: float) -> None:
        self._submitter, self._grace = submitter, grace
        asked, self._asked = self._asked, []
        for at_once, why in asked:
            self.stop(at_once=at_once, why=why)

    def detach(self) -> None:
        self._submitter = None

    def stop(self, *, at_once: bool = False, why: str = "stopped") -> None:
        submitter = self._submitter
        if submitter is None:
            self._asked.append((at_once, why))
            return
        if not at_once and not submitter.stop.is_set():
            submitter.stop_run(
                StopReason.INTERRUPTED, f"{why}; start the same command again to resume"
            )
            asyncio.get_running_loop().call_later(self._grace, submitter.interrupt_in_flight)
        else:
            self.at_once = True
            submitter.stop_run(StopReason.INTERRUPTED, why)
            submitter.interrupt_in_flight()
