"""One import run, start to end, without the CLI: check, then stream chunks through.

    read -> plan (columns, validate, dedupe, journal) -> workers (submit) -> results

Everything that can be checked before the first request is checked in `prepare`. Then a
producer plans chunk after chunk (CPU work in a thread, so requests in flight are never
starved) and feeds the rows to send into a bounded queue served by a fixed pool of
workers. A writer takes chunks in input order, waits until all their rows have an
outcome, commits the journal, then writes their results lines. At most
`CHUNKS_AHEAD` chunks are held at once, so memory does not grow with the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shlex
import time
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd

from affelios_import import codes, errors, kinds
from affelios_import.errors import AffeliosImportError, InputError, OutputFailed
from affelios_import.input.columns import to_contract
from affelios_import.input.read import (
    DEFAULT_CHUNK_SIZE,
    DRY_RUN_CHUNK_SIZE,
    FIRST_CHUNK_SIZE,
    read_chunks,
)
from affelios_import.input.sheet import CELL_CHARS_MAX
from affelios_import.keys import Entry, Key, api_did
from affelios_import.logs import RUN_ID, event
from affelios_import.outcome import Outcome, Status, StopReason, tally
from affelios_import.output import report
from affelios_import.output.report import Trace
from affelios_import.output.summary import Summary
from affelios_import.output.workbook import ErrorsWorkbook, ResultsWorkbook
from affelios_import.plan import PlannedChunk, Planner, Refusals, Send, claimed
from affelios_import.prepare import Prepared, make_endpoint, prepare
from affelios_import.redact import Redactor
from affelios_import.send.submit import Sending, Submitter
from affelios_import.settings import Settings
from affelios_import.stopper import Stopper
from affelios_import.urls import public, shown_journal
from affelios_import.version import __version__
from affelios_import.wire.endpoint import Endpoint

T = TypeVar("T")

CHUNKS_AHEAD = 2
RETRYING_PER_SLOT = 2  # rows waiting out a backoff, per request in flight
NOT_SENT = Outcome(status=Status.NOT_SENT)
CLAIMED = claimed()
# Outcomes the journal keeps: each means the record is never sent again (an unconfirmed
# one, until a person releases it).
TAKEN = frozenset({Status.CREATED, Status.EXISTS, Status.ACCEPTED, Status.UNCONFIRMED})

PROGRESS_EVERY = 0.25  # seconds between two reports of progress (and trace samples)


def _cell_max(prepared: Prepared) -> int | None:
    """The most characters an input cell may have: a workbook output's cell holds no
    more (see `plan.Refusals`)."""
    books = isinstance(prepared.results, ResultsWorkbook) or isinstance(
        prepared.errors, ErrorsWorkbook
    )
    return CELL_CHARS_MAX if books else None


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a run is, as `Importer(progress=...)` is told: once when every check
    is done and before the first request (`rows_done` 0), then every quarter second,
    and once at the end. Called on the run's event loop: keep it quick."""

    rows_total: int  # the data rows the run goes through (from the pre-scan; --limit)
    rows_done: int  # rows with an outcome so far
    counts: Mapping[str, int]  # status -> rows with that outcome so far
    retries: int
    columns: str  # how the input's columns map to API fields, in one line
    watched: tuple[str, ...] = ()  # the statuses the kind's rows mostly get (`Kind.watched`)
    stopping: bool = False  # a stop was asked for: nothing more is sent


ProgressCallback = Callable[[Progress], None]


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` in a new event loop: uvloop's where it is installed (a dependency on
    Linux and macOS), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # Windows
        return asyncio.run(work)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


async def arun(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: ProgressCallback | None = None,
    stopper: Stopper | None = None,
) -> Summary:
    """Import `settings.input` in the running event loop. The checks before the first
    request (reading the whole file among them) run in a thread, so a caller's loop is
    never held up; `stopper` stops the run from outside.
    """
    now, started = datetime.now(UTC), time.monotonic()
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    named = RUN_ID.set(run_id)
    try:
        with ExitStack() as stack:
            prepared, endpoint = await _prepared(settings, stack, transport)
            try:
                submitter = Submitter(endpoint, kind=kinds.get(settings.kind), config=settings)
                run = _Run(prepared, submitter, progress=progress, stopper=stopper, started=started)
                run.summary.run_id, run.summary.started_at = run_id, _utc(now)
                await run.execute()
            finally:
                await endpoint.aclose()
            await run.finish()
        summary = run.summary
        summary.seconds = time.monotonic() - started
        summary.finished_at = _utc(datetime.now(UTC))
        _write_last(settings, summary, run.trace)
        _log_end(summary)
    finally:
        RUN_ID.reset(named)
    return summary


def _summary(settings: Settings, prepared: Prepared) -> Summary:
    return Summary(
        input=str(settings.input),
        kind=settings.kind,
        brand=settings.brand,
        api=public(settings.base_url),
        journal=shown_journal(settings.journal),
        changes_accepted=settings.accept_changes and not settings.dry_run,
        acknowledged_file=str(settings.acknowledged or ""),
        columns=prepared.columns.labels,
        sheet=prepared.sheet,
        results_path=str(settings.out),
        errors_path=str(settings.errors_out or ""),
        dry_run=settings.dry_run,
    )


async def _prepared(
    settings: Settings, stack: ExitStack, transport: httpx.AsyncBaseTransport | None
) -> tuple[Prepared, Endpoint]:
    """The endpoint (first: a proxy it cannot use stops the run before any output is
    opened; nothing connects until the first request), then `prepare`, in a thread;
    logged as the run's start (and stop, should either fail)."""
    try:
        endpoint = make_endpoint(settings, transport)
        prepared = await asyncio.to_thread(prepare, settings, stack)
    except AffeliosImportError as exc:
        _log_start(settings, None)
        event("stop", logging.ERROR, reason=str(exc), exit_code=exc.exit_code)
        raise
    _log_start(settings, prepared)
    return prepared, endpoint


def _utc(moment: datetime) -> str:
    """`2026-11-25T19:40:12.345Z`"""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _log_start(settings: Settings, prepared: Prepared | None) -> None:
    """The `start` event: the settings and, once the input is checked, its rows and how
    its columns map (None: the checks failed; a `stop` follows)."""
    found: dict[str, Any] = {}
    if prepared is not None:
        found = {
            **({"sheet": prepared.sheet} if prepared.sheet is not None else {}),
            "rows": prepared.source.rows,
            "columns": prepared.columns.describe(brand=settings.brand),
        }
    event(
        "start",
        input=str(settings.input),
        **found,
        results=str(settings.out),
        base_url=public(settings.base_url),
        brand=settings.brand,
        dry_run=settings.dry_run,
        concurrency=settings.concurrency,
        rate=settings.rate,
        retries=settings.retries,
        timeout=settings.timeout,
        journal=shown_journal(settings.journal),  # a database's URL without credentials
        encoding=settings.encoding,
        delimiter=settings.delimiter,
        limit=settings.limit,
        version=__version__,
    )  # the key is not a field here, and never will be


def _log_end(summary: Summary) -> None:
    if summary.stop_reason:
        event("stop", logging.WARNING, reason=summary.stop_reason)
    event(
        "end",
        rows=summary.rows,
        counts={k: v for k, v in summary.counts.items() if v},
        retries=summary.retries,
        seconds=round(summary.seconds or 0.0, 3),
        exit_code=summary.exit_code,
    )


def _write_last(settings: Settings, summary: Summary, trace: Trace) -> None:
    """The outputs made at the end of the run: the report and the JSON summary."""
    if settings.report_html is not None:
        _write_one(
            "--report-html",
            settings.report_html,
            lambda path: report.write(path, summary, trace, title=str(settings.input)),
            summary=summary,
            key=settings.api_key,
        )
    if settings.summary_json is not None:
        _write_one(
            "--summary-json",
            settings.summary_json,
            lambda path: path.write_text(
                json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8"
            ),
            summary=summary,
            key=settings.api_key,
        )


def _write_one(
    option: str, path: Path, write: Callable[[Path], object], *, summary: Summary, key: str | None
) -> None:
    """Write an output made at the end of the run (checked writable before it started);
    should it fail even so (a disk that filled meanwhile, or a bug), the run says so and
    exits 3: its rows are written by then."""
    try:
        write(path)
    except OSError as exc:
        why, reason = StopReason.OUTPUT_FAILED, f"cannot be written ({errors.reason(exc)})"
    except Exception as exc:
        why, reason = _failure(exc, Redactor([key]))
        reason = f"not written: {reason}"
    else:
        return
    reason = f"{option} {path}: {reason}"
    summary.stop_reason = "; ".join(filter(None, (summary.stop_reason, reason)))
    summary.stopped = summary.stopped or why


class _InFlight:
    """A planned chunk whose rows are being sent; `done` once every row has an outcome."""

    def __init__(self, planned: PlannedChunk) -> None:
        self.planned = planned
        self.remaining = len(planned.sends)
        self.done = asyncio.Event()
        if self.remaining == 0:
            self.done.set()

    def settle(self, position: int, outcome: Outcome) -> None:
        self.planned.settle(position, outcome)
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class _Run:
    """One run, from its first request to its last results line.

    A producer plans chunk after chunk (CPU work in a thread, so requests in flight are
    never starved) and feeds the rows to send into a bounded queue served by a fixed
    pool of workers. A writer takes chunks in input order, waits until all their rows
    have an outcome, commits the journal, then writes their results lines. Should any of
    them fail, the others are cancelled and the run stops with the cause in one line.
    """

    def __init__(
        self,
        prepared: Prepared,
        submitter: Submitter,
        *,
        progress: ProgressCallback | None,
        stopper: Stopper | None,
        started: float,
    ) -> None:
        settings = prepared.settings
        self.settings, self.prepared, self.submitter = settings, prepared, submitter
        self.summary, self.started = _summary(settings, prepared), started
        self.progress: ProgressCallback = progress or (lambda state: None)
        self.stopper = stopper or Stopper()
        self.journal = prepared.journal
        self.trace = Trace()
        # A record sent to another URL the journal holds may have been sent to this API
        # under another spelling: for a kind whose repeat may be counted, asked too.
        others = set(self.journal.other_apis) - set(settings.not_the_same_api)
        self.look_elsewhere = submitter.kind.needs_history and bool(others)
        self.look_apart = self.look_elsewhere or submitter.kind.folded_keys
        self.elsewhere: set[str] = set()  # the other URLs found holding today's records
        self.planner = Planner(
            prepared.columns,
            brand=settings.brand,
            kind=submitter.kind,
            refusals=Refusals(
                broken=prepared.source.broken,
                cell_max=_cell_max(prepared),
                acknowledged=prepared.acknowledged,
            ),
            journal_empty=self.journal.was_empty and not self.look_elsewhere,
        )
        self.chunks = _chunks(settings, prepared)
        # One worker per request in flight. A row whose attempt failed in a way worth
        # repeating goes to a retrier, which waits out its backoff while the worker
        # goes on. Rows are released to the workers `release` at a time, their intents
        # committed together first; or (`Kind.intent_per_request`) a worker commits a
        # row's intent as it takes it up. A run killed may leave `sending` the rows of
        # the workers, the retriers and their queues: at most (RETRYING_PER_SLOT + 2) x
        # concurrency, and, released in batches, the rows queued and being released.
        self.workers = self.working = settings.concurrency
        self.retriers = settings.concurrency * RETRYING_PER_SLOT
        self.release = settings.concurrency
        self.per_request = submitter.kind.intent_per_request
        self.rows: asyncio.Queue[tuple[_InFlight, Send] | None] = asyncio.Queue(self.workers)
        self.retries: asyncio.Queue[tuple[_InFlight, Send, Sending] | None] = asyncio.Queue(
            self.workers
        )
        self.in_order: asyncio.Queue[_InFlight | None] = asyncio.Queue(CHUNKS_AHEAD)
        self.done_rows = 0  # rows with an outcome, for the report's timeline
        self.live: Counter[str] = Counter()  # status -> rows with that outcome so far
        self.columns = prepared.columns.describe(brand=settings.brand)
        self.id_column = next(  # the input's column of externalId, for the report
            (name for name, to in prepared.columns.to_field.items() if to == "externalId"), None
        )
        self.read_error: InputError | None = None

    async def execute(self) -> None:
        """Send every row, the stopper able to stop the run from outside meanwhile."""
        self.stopper.attach(self.submitter, grace=self.settings.grace_seconds)
        try:
            await self._stream()
        finally:
            self.stopper.detach()

    async def finish(self) -> None:
        """Put the outputs together, account for every row, and note how the run went."""
        for output in (self.prepared.results, self.prepared.errors):
            if output is not None:
                try:  # a workbook is put together now; a CSV was flushed chunk by chunk
                    await asyncio.to_thread(output.finish)
                except OutputFailed as exc:
                    self.submitter.stop_run(StopReason.OUTPUT_FAILED, str(exc))
        self._account_for_every_row()
        self.summary.stop_reason = self.submitter.stop_reason
        self.summary.stopped = self.submitter.stopped
        self.summary.retries = self.submitter.retries_spent
        self.summary.rate_limit = self.submitter.throttle.described
        self.summary.throttled = self.submitter.throttle.throttled
        self.summary.paused_seconds = self.submitter.throttle.paused
        acknowledged = self.prepared.acknowledged
        if acknowledged is not None and not self.summary.rows_missing and not self.settings.limit:
            # Only once every row was read can a line of the file be said to match none.
            self.summary.acknowledged_unmatched = acknowledged.unmatched
        if self.elsewhere:
            self.summary.elsewhere_advice = _elsewhere_advice(
                sorted(self.elsewhere), public(self.settings.base_url), self.settings.kind
            )

    async def _stream(self) -> None:
        self._sample()  # the first report: before the first request
        sampling = asyncio.create_task(self._sampler())
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.workers):
                    group.create_task(self._work())
                for _ in range(self.retriers):
                    group.create_task(self._retry())
                group.create_task(self._write())
                group.create_task(self._produce())
        except BaseExceptionGroup as failed:
            # One task failed (an output on a full disk, the journal, a bug): the group
            # has cancelled the others; the run stops here, with the cause in one line.
            first = failed.exceptions[0]
            if not isinstance(first, Exception):
                raise first from None
            self.submitter.stop_run(*_failure(first, self.submitter.redact))
        finally:
            sampling.cancel()
            self._sample()
            try:
                await self.journal.aflush()
            except OutputFailed as exc:
                self.submitter.stop_run(StopReason.OUTPUT_FAILED, str(exc))

    @property
    def rows_total(self) -> int:
        """The data rows this run goes through: the pre-scan's count, or --limit."""
        rows, limit = self.prepared.source.rows, self.settings.limit
        return rows if limit is None else min(limit, rows)

    def _sample(self) -> None:
        """Note the trace's point of now, and tell the caller how far the run is."""
        elapsed, retries = time.monotonic() - self.started, self.submitter.retries_spent
        self.trace.timeline.append((elapsed, self.done_rows, retries))
        state = Progress(
            rows_total=self.rows_total,
            rows_done=self.done_rows,
            counts=dict(self.live),
            retries=retries,
            columns=self.columns,
            watched=self.submitter.kind.watched,
            stopping=self.submitter.stop.is_set(),
        )
        try:
            self.progress(state)
        except Exception as exc:  # the caller's: it must not stop the import
            event("progress_failed", logging.WARNING, error=repr(exc))
            self.progress = lambda state: None

    async def _sampler(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            self._sample()

    async def _produce(self) -> None:
        try:
            while (
                not self.stopper.at_once
                and (raw := await asyncio.to_thread(next, self.chunks, None)) is not None
            ):
                await self._plan(raw)
        except InputError as exc:
            # Unreadable from here on: finish and write what was read, then say so.
            self.read_error = exc
        # Only when it ended by itself: cancelled (another task failed), it puts nothing,
        # for the queues may be full with nobody left to take from them.
        for _ in range(self.workers):
            await self.rows.put(None)
        await self.in_order.put(None)

    async def _plan(self, raw: pd.DataFrame) -> None:
        """Plan a chunk, hand it to the writer, and its rows to send to the workers."""
        journal = self.journal
        planned = await asyncio.to_thread(self.planner.check, raw)
        known = {} if journal.was_empty else await journal.alookup(planned.keys)
        referenced: set[Key] = set()
        if (reference := self.planner.kind.references) is not None and planned.reference_keys:
            held = await journal.alookup(planned.reference_keys, kind=reference.kind)
            referenced = set(held)
        apart = await self._held_apart(planned.keys, known) if self.look_apart else {}
        settled = await asyncio.to_thread(self._finish, planned, known, referenced, apart)
        if self.settings.accept_changes and not self.settings.dry_run:
            self._accept(planned)  # on the loop: the journal's pending list is the loop's
        flight = _InFlight(planned)
        self.done_rows += len(raw) - len(planned.sends)
        self.live.update(settled)
        self.live[Status.NOT_SENT.value] -= len(planned.sends)  # theirs are to come
        await self.in_order.put(flight)
        sends, batch = planned.sends, self.release
        for start in range(0, len(sends), batch):
            await self._release(flight, sends[start : start + batch])

    async def _release(self, flight: _InFlight, batch: list[Send]) -> None:
        """Hand `batch` to the workers; their intents first, unless each is committed as a
        worker takes the row up (`Kind.intent_per_request`). Rows another run holds, or
        that the run stopped before releasing, are settled here."""
        taken: Collection[Key] = ()
        intended = not self.per_request and not self.submitter.stop.is_set()
        if intended:  # committed before any of them is released: off the workers' path
            taken = await self.journal.intend(
                (send.key for send in batch), resent=[send.key for send in batch if send.resent]
            )
        for send in batch:
            if taken and send.key in taken:  # another run's to send (and report)
                flight.settle(send.position, CLAIMED)
                self.done_rows += 1
                self.live[Status.CLAIMED.value] += 1
            elif self.submitter.stop.is_set():
                flight.settle(send.position, self._not_sent(send, intended=intended))
                self.done_rows += 1
                self.live[Status.NOT_SENT.value] += 1
            else:
                await self.rows.put((flight, send))

    async def _claimed(self, send: Send) -> bool:
        """With `Kind.intent_per_request`, claim the row a worker is about to send: its
        intent is committed first (with those of the workers about to send at the same
        moment). Whether another run holds it instead (a shared journal). (Without it,
        the row was claimed as it was released.)"""
        taken = await self.journal.intend((send.key,), resent=(send.key,) if send.resent else ())
        return bool(taken)

    def _not_sent(self, send: Send, *, intended: bool = True) -> Outcome:
        """The outcome of a row not sent (the run stopped first), its intent (if it was
        `intended`) dropped; a resent row's entry is an earlier run's, and stays."""
        if send.resent:
            return _resent(NOT_SENT)
        if intended:
            self.journal.forget(send.key)
        return NOT_SENT

    async def _held_apart(self, keys: list[Key], known: dict[Key, Entry]) -> dict[Key, Outcome]:
        """Of `keys` the journal does not hold as they are, those it holds apart: under
        another API's URL, or (`Kind.folded_keys`) a key that differs by case or spaces.
        Not sent: what each row says."""
        unknown = [key for key in keys if key not in known]
        apart: dict[Key, Outcome] = {}
        if self.planner.kind.folded_keys and not self.journal.was_empty:
            for key, (held, entry) in (await self.journal.alookup_folded(unknown)).items():
                apart[key] = _folded(held, entry)
        if self.look_elsewhere:
            found = await self.journal.alookup_elsewhere(
                (key for key in unknown if key not in apart),
                ignoring=self.settings.not_the_same_api,
            )
            this = public(self.settings.base_url)
            for key, (url, entry) in found.items():
                self.elsewhere.add(url)
                apart[key] = _elsewhere(url, entry, this)
        return apart

    def _finish(
        self,
        planned: PlannedChunk,
        known: dict[Key, Entry],
        referenced: set[Key],
        apart: dict[Key, Outcome],
    ) -> Counter[str]:
        """Settle what the plan can (in a thread: CPU work), and count it by status."""
        self.planner.finish(
            planned,
            known,
            dry_run=self.settings.dry_run,
            referenced=referenced,
            apart=apart,
        )
        return tally(planned.status)

    def _accept(self, planned: PlannedChunk) -> None:
        """Let the journal take today's values of the chunk's changed records (committed
        before their results lines are written), and say so in the results."""
        for key, body in planned.changes:
            self.journal.accept(key, sent=body)
        at = planned.status == Status.CHANGED.value
        planned.error[at] = [f"{error}; {ACCEPTED}" for error in planned.error[at].tolist()]

    async def _work(self) -> None:
        submitter = self.submitter
        while (item := await self.rows.get()) is not None:
            flight, send = item
            if submitter.stop.is_set():
                self._settle(flight, send, self._not_sent(send, intended=not self.per_request))
            elif self.per_request and await self._claimed(send):  # another run's to send
                self._settle(flight, send, CLAIMED)
            elif submitter.stop.is_set():
                self._settle(flight, send, self._not_sent(send))
            elif isinstance(first := await submitter.send_once(send.body), Outcome):
                self._settle(flight, send, self._recorded(send, first))
            else:
                await self.retries.put((flight, send, first))
        self.working -= 1
        if not self.working:  # the last worker: no more rows will need retrying
            for _ in range(self.retriers):
                await self.retries.put(None)

    async def _retry(self) -> None:
        while (item := await self.retries.get()) is not None:
            flight, send, sending = item
            outcome = await self.submitter.send_again(sending)
            self._settle(flight, send, self._recorded(send, outcome))

    def _settle(self, flight: _InFlight, send: Send, outcome: Outcome) -> None:
        flight.settle(send.position, outcome)
        self.done_rows += 1
        self.live[outcome.status.value] += 1

    def _recorded(self, send: Send, outcome: Outcome) -> Outcome:
        """Journal what the row's sending did (its intent was committed in `_plan`)."""
        journal = self.journal
        if outcome.status in TAKEN:
            journal.record(
                send.key,
                affelios_id=outcome.affelios_id or None,
                status=outcome.status,
                sent=send.body,
            )
        elif not outcome.maybe_created and not send.resent:
            # Nothing was created by this run. (For a resent row, the entry is the earlier
            # run's and says that run may have created it: it stays until an answer says.)
            journal.forget(send.key)
        if send.resent:
            outcome = _resent(outcome)
        if send.note:
            outcome = replace(outcome, error="; ".join(filter(None, (outcome.error, send.note))))
        return outcome

    def _report(self, planned: PlannedChunk) -> None:
        """Write a finished chunk's lines and count them (in a thread: it is CPU work).
        The rows counted are those with a results line: a results file that fails (a
        full disk) holds none of the chunk's (see `results._append`), and the summary
        counts none; an errors file that fails after it stops the run, its rows counted."""
        self._release_commands(planned)
        self.prepared.results.write_chunk(planned)
        rows = planned.rows
        self.summary.add_chunk(rows, planned.status, planned.error_kind, planned.http_status)
        if planned.amounts:
            self.summary.add_amounts(planned.status, planned.amounts)
        self.summary.unknown_references += planned.unknown_references
        self.summary.sent_elsewhere += planned.sent_elsewhere
        ids = planned.raw[self.id_column] if self.id_column is not None else None
        self.trace.note_chunk(planned, ids)
        if self.prepared.errors is not None:
            self.prepared.errors.write_chunk(planned)

    def _release_commands(self, planned: PlannedChunk) -> None:
        """Each row in doubt (`unconfirmed`) ends with the command that releases it, as it
        pastes: its id, brand, kind and this run's journal."""
        at = np.flatnonzero(planned.status == Status.UNCONFIRMED.value)
        if not len(at):
            return
        keys = to_contract(planned.raw.iloc[at], self.prepared.columns, brand=self.settings.brand)
        journal = shown_journal(self.settings.journal)
        for i, brand, external_id in zip(
            at.tolist(), keys["externalBrandId"], keys["externalId"], strict=True
        ):
            words = ["affelios-journal", "forget", external_id, "--brand", brand]
            words += ["--kind", self.settings.kind, "--journal", journal, "--yes"]
            planned.error[i] = f"{planned.error[i]}; to release it: {shlex.join(words)}"

    async def _write(self) -> None:
        while (flight := await self.in_order.get()) is not None:
            await flight.done.wait()
            await self.journal.aflush()  # what the results report as done is journaled first
            await asyncio.to_thread(self._report, flight.planned)

    def _account_for_every_row(self) -> None:
        """Say which rows have no results line: those never read (the input failed
        part-way, or ended early), or never written (an output failed, a second stop)."""
        source, summary, submitter = self.prepared.source, self.summary, self.submitter
        expected = self.rows_total
        summary.rows_missing = max(0, expected - summary.rows)
        first = summary.rows + 1
        if self.read_error is not None:
            submitter.stop_run(
                StopReason.INPUT_FAILED, f"{self.read_error}; rows from {first} on were not read"
            )
        elif summary.rows_missing and not submitter.stop.is_set():
            submitter.stop_run(
                StopReason.INPUT_FAILED,
                f"{source.name}: rows from {first} on were not read: the file ended before "
                f"the {expected:,} rows it had when checked (was it changed while it was read?)",
            )
        elif summary.rows_missing:
            submitter.stop_reason += f"; rows from {first} on have no results line"


def _failure(exc: Exception, redact: Callable[[str], str]) -> tuple[StopReason, str]:
    """Why the run stopped, in one line (its traceback goes to the log, for an error
    nobody foresaw), with the key blanked out of whatever the error says."""
    if isinstance(exc, OutputFailed):
        return StopReason.OUTPUT_FAILED, redact(str(exc))
    if isinstance(exc, InputError):
        return StopReason.INPUT_FAILED, redact(str(exc))
    if isinstance(exc, AffeliosImportError):
        return StopReason.INTERNAL_ERROR, redact(str(exc))
    event(
        "failure",
        logging.ERROR,
        error=redact(repr(exc)),
        traceback=redact("".join(traceback.format_exception(exc))),
    )
    return StopReason.INTERNAL_ERROR, redact(
        f"an unexpected error stopped the run ({type(exc).__name__}: {exc}); please report it"
    )


ACCEPTED = "accepted (--accept-changes): the journal now holds today's values"
RESENT = "an earlier run was sending this row and never learned whether it was created"


def _resent(outcome: Outcome) -> Outcome:
    """Say, in the result, that an earlier run died while sending this row."""
    if outcome.status is Status.EXISTS:
        note = f"{RESENT}; the API already had it, so that run created it (id not known)"
    elif outcome.status is Status.CREATED:
        note = f"{RESENT}; the API did not have it, so it was created now"
    else:
        note = RESENT
    return replace(outcome, error="; ".join(filter(None, (note, outcome.error))))


def _when(entry: Entry) -> str:
    return f" on {entry.first_recorded_at[:10]}" if entry.first_recorded_at else ""


def _elsewhere(url: str, entry: Entry, this: str) -> Outcome:
    return Outcome(
        status=Status.NOT_SENT,
        error=f"sent to {url}{_when(entry)} ({api_did(entry.status)}), not to {this}: not "
        "sent, for that may be this API under another URL; see the summary",
        code=codes.item("sent_to_other_api"),
    )


def _folded(held: Key, entry: Entry) -> Outcome:
    return Outcome(
        status=Status.INVALID,
        error=f"the journal holds externalBrandId {held[0]!r} and externalId {held[1]!r} "
        f"({api_did(entry.status)}{_when(entry)}), which differ from this row's only by "
        "case or surrounding spaces, which an API may not tell apart; not sent",
        code=codes.item("near_duplicate_row"),
    )


def _elsewhere_advice(others: list[str], this: str, kind: str) -> str:
    """What to do about rows sent before to other URLs: one API, or not."""
    same = "; ".join(
        f"affelios-journal same-api {other} {this} --kind {kind} --yes" for other in others
    )
    differ = " ".join(f"--not-the-same-api {other}" for other in others)
    return (
        f"sent before to {', '.join(others)}, not to {this}: if that is this API under "
        f"another URL, tell the journal ({same}) and they are skipped; if not, run again "
        f"with {differ} and they are sent"
    )


def _chunks(settings: Settings, prepared: Prepared) -> Iterator[pd.DataFrame]:
    size = settings.chunk_size or (DRY_RUN_CHUNK_SIZE if settings.dry_run else DEFAULT_CHUNK_SIZE)
    return read_chunks(
        prepared.source,
        chunk_size=size,
        limit=settings.limit,
        first_size=None if settings.dry_run else FIRST_CHUNK_SIZE,
    )
