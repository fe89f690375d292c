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
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pandas as pd

from etl import __version__, report, workbook
from etl.columns import ColumnMap, resolve
from etl.errors import AffeliosImportError, InputError, OutputFailed, SetupError
from etl.journal import Journal
from etl.keys import Entry, Key
from etl.logs import RUN_ID, event
from etl.outcome import Outcome, Status, StopReason
from etl.outputs import check as check_outputs
from etl.plan import PlannedChunk, Planner, Send
from etl.read import (
    DEFAULT_CHUNK_SIZE,
    DRY_RUN_CHUNK_SIZE,
    FIRST_CHUNK_SIZE,
    Source,
    inspect,
    read_chunks,
    spool_folder,
    spool_stdin,
)
from etl.records import KINDS
from etl.redact import Redactor, check_api_key
from etl.report import Trace
from etl.results import ErrorsWriter, ResultsWriter
from etl.settings import Settings
from etl.submit import Endpoint, Sending, Submitter
from etl.summary import Summary
from etl.urls import public

T = TypeVar("T")

CHUNKS_AHEAD = 2
RETRYING_PER_SLOT = 2  # rows waiting out a backoff, per request in flight
NOT_SENT = Outcome(status=Status.NOT_SENT)
# Outcomes the journal keeps: each means the record is never sent again (an unconfirmed
# transaction, until a person releases it).
TAKEN = frozenset({Status.CREATED, Status.EXISTS, Status.ACCEPTED, Status.UNCONFIRMED})

PROGRESS_EVERY = 0.25  # seconds between two reports of progress (and trace samples)


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


ProgressCallback = Callable[[Progress], None]


@dataclass
class _Prepared:
    source: Source
    columns: ColumnMap
    journal: Journal
    results: ResultsWriter | workbook.ResultsWorkbook
    errors: ErrorsWriter | workbook.ErrorsWorkbook | None
    sheet: str | None  # the sheet read, when the input is a workbook


def prepare(settings: Settings, stack: ExitStack) -> _Prepared:
    """Every check that can be made before the first request; raises SetupError."""
    if not settings.dry_run and not settings.api_key:
        raise SetupError(
            "no API key: set AFFELIOS_API_KEY or give --api-key-file (or use --dry-run)"
        )
    if settings.api_key:
        check_api_key(settings.api_key, source="the API key")
    check_outputs(settings)
    kind = KINDS[settings.kind]
    path, name = settings.input, str(settings.input)
    if name == "-":
        path, name = spool_stdin(stack), "standard input"
    encoding, delimiter, sheet = settings.encoding, settings.delimiter, None
    if workbook.is_workbook(path):
        # Read as a CSV copy of the sheet's text: UTF-8 and commas, whatever was said of CSV.
        folder = spool_folder(stack)
        path, sheet = workbook.spool_sheet(path, name=name, sheet=settings.sheet, folder=folder)
        encoding = delimiter = None
    elif settings.sheet is not None:
        raise SetupError(f"--sheet {settings.sheet}: {name} is not a workbook")
    source = inspect(path, name=name, encoding=encoding, delimiter=delimiter)
    header = list(source.header)
    columns = ColumnMap(header=(), to_field={})  # an empty file: nothing to map
    if not source.empty:
        columns = resolve(
            header, brand=settings.brand, source=name, mapping=settings.mapping, kind=kind
        )
    rows = source.rows if settings.limit is None else min(settings.limit, source.rows)
    for option, output in (("--out", settings.out), ("--errors-out", settings.errors_out)):
        if output is not None and workbook.is_workbook_name(output):
            workbook.check_rows(option, output, rows)
    journal = Journal.open(
        settings.journal, base_url=settings.base_url, read_only=settings.dry_run, table=kind.name
    )
    stack.callback(journal.close)
    results: ResultsWriter | workbook.ResultsWorkbook
    if workbook.is_workbook_name(settings.out):
        results = workbook.ResultsWorkbook(settings.out, header=header)
    else:
        results = ResultsWriter(settings.out, header=header, bom=settings.bom)
    stack.callback(results.close)
    errors: ErrorsWriter | workbook.ErrorsWorkbook | None = None
    if settings.errors_out is not None and workbook.is_workbook_name(settings.errors_out):
        errors = workbook.ErrorsWorkbook(settings.errors_out, header=header)
    elif settings.errors_out is not None:
        errors = ErrorsWriter(
            settings.errors_out, header=header, delimiter=source.delimiter, bom=settings.bom
        )
    if errors is not None:
        stack.callback(errors.close)
    return _Prepared(
        source=source,
        columns=columns,
        journal=journal,
        results=results,
        errors=errors,
        sheet=sheet,
    )


class _Unused(httpx.AsyncBaseTransport):
    """The transport of a dry run, which sends nothing (and so imports no HTTP client)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("a dry run sends nothing")


def make_endpoint(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Endpoint:
    if transport is None and settings.dry_run:
        transport = _Unused()
    elif transport is None:
        from etl.transport import aiohttp_transport  # aiohttp: 0.15 s to import

        transport = aiohttp_transport(base_url=settings.base_url, concurrency=settings.concurrency)
    return Endpoint(
        transport,
        base_url=settings.base_url,
        headers={
            "X-Api-Key": settings.api_key or "",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"affelios-import/{__version__}",
        },
        timeout=settings.timeout,
        path=KINDS[settings.kind].path,
    )


def run(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: ProgressCallback | None = None,
    stopper: Stopper | None = None,
) -> Summary:
    """Import `settings.input` in an event loop of its own (see `arun`)."""
    return in_own_loop(arun(settings, transport=transport, progress=progress, stopper=stopper))


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
    run = _Run(settings, progress or (lambda state: None), stopper or Stopper())
    summary, now = run.summary, datetime.now(UTC)
    summary.run_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    summary.started_at, summary.input = _utc(now), str(settings.input)
    named = RUN_ID.set(summary.run_id)
    try:
        await run.whole(transport)
    finally:
        RUN_ID.reset(named)
    return summary


def _utc(moment: datetime) -> str:
    """`2026-11-25T19:40:12.345Z`"""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _log_start(settings: Settings, prepared: _Prepared | None) -> None:
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
        journal=str(settings.journal),
        encoding=settings.encoding,
        delimiter=settings.delimiter,
        limit=settings.limit,
        version=__version__,
    )  # the key is not a field here, and never will be


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

    def __init__(self, settings: Settings, progress: ProgressCallback, stopper: Stopper) -> None:
        self.settings = settings
        self.progress = progress
        self.stopper = stopper
        self.summary = Summary(
            results_path=str(settings.out),
            errors_path=str(settings.errors_out or ""),
            dry_run=settings.dry_run,
        )
        self.trace = Trace()
        # One worker per request in flight. A row whose attempt failed in a way worth
        # repeating goes to a retrier, which waits out its backoff while the worker
        # goes on. Rows released to the workers at a time, their intents committed
        # together first. A run killed may leave `sending` the rows of the workers,
        # the retriers, their queues and the batch being released: at most
        # (RETRYING_PER_SLOT + 4) x concurrency.
        self.workers = settings.concurrency
        self.retriers = settings.concurrency * RETRYING_PER_SLOT
        self.release = settings.concurrency
        self.done_rows = 0  # rows with an outcome, for the report's timeline
        self.live: Counter[str] = Counter()  # status -> rows with that outcome so far
        self.columns = ""
        self.read_error: InputError | None = None
        self.started = time.monotonic()

    async def whole(self, transport: httpx.AsyncBaseTransport | None) -> None:
        """The run from its checks to its last output, and its end in the log."""
        settings, summary, trace = self.settings, self.summary, self.trace
        with ExitStack() as stack:
            try:
                prepared = await asyncio.to_thread(prepare, settings, stack)
            except AffeliosImportError as exc:
                _log_start(settings, None)
                event("stop", logging.ERROR, reason=str(exc), exit_code=exc.exit_code)
                raise
            self.columns = prepared.columns.describe(brand=settings.brand)
            summary.sheet = prepared.sheet
            _log_start(settings, prepared)
            await self.execute(prepared, transport)
        summary.seconds = time.monotonic() - self.started
        summary.finished_at = _utc(datetime.now(UTC))
        if settings.report_html is not None:
            self._write_last(
                "--report-html",
                settings.report_html,
                lambda path: report.write(path, summary, trace, title=str(settings.input)),
            )
        if settings.summary_json is not None:
            self._write_last(
                "--summary-json",
                settings.summary_json,
                lambda path: path.write_text(
                    json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8"
                ),
            )
        if summary.stop_reason:
            event("stop", logging.WARNING, reason=summary.stop_reason)
        event(
            "end",
            rows=summary.rows,
            counts={k: v for k, v in summary.counts.items() if v},
            retries=summary.retries,
            seconds=round(summary.seconds, 3),
            exit_code=summary.exit_code,
        )

    def _write_last(self, option: str, path: Path, write: Callable[[Path], object]) -> None:
        """Write an output made at the end of the run (checked writable before it
        started); should it fail even so (a disk that filled meanwhile, or a bug), the
        run says so and exits 3: its rows are written by then."""
        summary = self.summary
        try:
            write(path)
        except OSError as exc:
            kind, reason = StopReason.OUTPUT_FAILED, f"cannot be written ({exc.strerror or exc})"
        except Exception as exc:
            kind, reason = _failure(exc, Redactor([self.settings.api_key]))
            reason = f"not written: {reason}"
        else:
            return
        reason = f"{option} {path}: {reason}"
        summary.stop_reason = "; ".join(filter(None, (summary.stop_reason, reason)))
        summary.stop_kind = summary.stop_kind or kind

    async def execute(
        self, prepared: _Prepared, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        settings, source = self.settings, prepared.source
        self.prepared, self.journal = prepared, prepared.journal
        self.planner = Planner(
            prepared.columns,
            brand=settings.brand,
            broken=source.broken,
            journal_empty=self.journal.was_empty,
            kind=KINDS[settings.kind],
        )
        size = settings.chunk_size or (
            DRY_RUN_CHUNK_SIZE if settings.dry_run else DEFAULT_CHUNK_SIZE
        )
        self.chunks = read_chunks(
            source,
            chunk_size=size,
            limit=settings.limit,
            first_size=None if settings.dry_run else FIRST_CHUNK_SIZE,
        )
        endpoint = make_endpoint(settings, transport)
        try:
            self.submitter = Submitter(endpoint, settings)
            self.stopper.attach(self.submitter, grace=settings.grace_seconds)
            try:
                await self._stream()
            finally:
                self.stopper.detach()
        finally:
            await endpoint.aclose()
        for output in (prepared.results, prepared.errors):
            if output is not None:
                try:  # a workbook is put together now; a CSV was flushed chunk by chunk
                    await asyncio.to_thread(output.finish)
                except OutputFailed as exc:
                    self.submitter.stop_run(StopReason.OUTPUT_FAILED, str(exc))
        self._account_for_every_row()
        self.summary.stop_reason = self.submitter.stop_reason
        self.summary.stop_kind = self.submitter.stop_kind
        self.summary.retries = self.submitter.retries_spent
        self.summary.rate_limit = self.submitter.throttle.described

    async def _stream(self) -> None:
        self.rows: asyncio.Queue[tuple[_InFlight, Send] | None] = asyncio.Queue(
            maxsize=self.release
        )
        self.retries: asyncio.Queue[tuple[_InFlight, Send, Sending] | None] = asyncio.Queue(
            maxsize=self.release
        )
        self.working = self.workers
        self.in_order: asyncio.Queue[_InFlight | None] = asyncio.Queue(maxsize=CHUNKS_AHEAD)
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
        customers: set[Key] = set()
        if planned.customer_keys:  # transactions: which of their customers it knows
            customers = set(await journal.alookup(planned.customer_keys, table="customers"))
        settled = await asyncio.to_thread(self._finish, planned, known, customers)
        if self.settings.accept_changes and not self.settings.dry_run:
            self._accept(planned)  # on the loop: the journal's pending list is the loop's
        flight = _InFlight(planned)
        self.done_rows += len(raw) - len(planned.sends)
        self.live.update(settled)
        self.live[Status.NOT_SENT.value] -= len(planned.sends)  # theirs are to come
        await self.in_order.put(flight)
        sends = planned.sends
        for start in range(0, len(sends), self.release):
            batch = sends[start : start + self.release]
            if not self.submitter.stop.is_set():
                # Committed before any of them is released: off the workers' path.
                await journal.intend(send.key for send in batch)
            for send in batch:
                if self.submitter.stop.is_set():
                    flight.settle(send.position, self._not_sent(send))
                    self.done_rows += 1
                    self.live[Status.NOT_SENT.value] += 1
                else:
                    await self.rows.put((flight, send))

    def _not_sent(self, send: Send) -> Outcome:
        """The outcome of a row released but not sent (the run stopped first), its
        intent dropped; a resent row's entry is an earlier run's, and stays."""
        if send.resent:
            return _resent(NOT_SENT)
        self.journal.forget(send.key)
        return NOT_SENT

    def _finish(
        self, planned: PlannedChunk, known: dict[Key, Entry], customers: set[Key]
    ) -> Counter[str]:
        """Settle what the plan can (in a thread: CPU work), and count it by status."""
        self.planner.finish(planned, known, dry_run=self.settings.dry_run, customers=customers)
        return Counter(planned.status.tolist())

    def _accept(self, planned: PlannedChunk) -> None:
        """Let the journal take today's values of the chunk's changed customers (committed
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
        """Write a finished chunk's lines and count them (in a thread: it is CPU work)."""
        self.prepared.results.write_chunk(planned)
        if self.prepared.errors is not None:
            self.prepared.errors.write_chunk(planned)
        rows = planned.rows
        self.summary.add_chunk(rows, planned.status, planned.error_kind, planned.http_status)
        if planned.amounts:
            self.summary.add_amounts(planned.status, planned.amounts)
        self.trace.note_chunk(rows, planned.status, planned.error)

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
