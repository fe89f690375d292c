"""The front door for Python callers: `Importer(config).run(csv)` -> `RunResult`.

    from affelios_import import Importer, ImportConfig

    importer = Importer(ImportConfig(api_key=key, brand="casino-x"))
    result = importer.run("customers.csv")
    if result.stopped is not None: ...   # a StopReason: retry later, or page someone

`run` makes an event loop of its own; `await importer.arun(...)` runs in the caller's.
`importer.stop()` (from any thread) does what Ctrl-C does. The core installs no signal
handlers; `RunResult.exit_code` is the command's code for the run (one function,
`outcome.exit_code`, says it for the CLI, the JSON summary and the report).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import httpx

from affelios_import import pipeline
from affelios_import.config import ImportConfig
from affelios_import.input.sheet import READ_SUFFIXES
from affelios_import.outcome import Status, StopReason, exit_code
from affelios_import.output.summary import Summary
from affelios_import.output.workbook import WRITE_SUFFIX
from affelios_import.settings import Settings
from affelios_import.stopper import Stopper

PathArg = str | PathLike[str]


def default_output(input_path: Path, what: str, *, dry_run: bool = False) -> Path:
    """`customers.csv` -> `customers.<what>.csv` beside it (`customers.dry-run.<what>.csv`
    for a dry run, which so never overwrites a real run's); `-` -> ./stdin.<what>.csv.
    A workbook's are workbooks: `customers.xlsx` (or `.ods`) -> `customers.<what>.xlsx`.
    `what`: "results" or "errors"."""
    if dry_run:
        what = f"dry-run.{what}"
    if str(input_path) == "-":
        return Path(f"stdin.{what}.csv")
    name, extension = input_path.name, ".csv"
    for suffix in (".csv.gz", ".csv", ".txt", ".tsv", ".gz", *READ_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            if suffix in READ_SUFFIXES:
                extension = WRITE_SUFFIX
            break
    return input_path.with_name(f"{name}.{what}{extension}")


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """How a run went: counts per status, why it stopped (if it did), what it wrote."""

    counts: Mapping[str, int]  # status -> rows, every status present
    rows: int  # data rows with a results line
    rows_missing: int  # data rows without one (never read, or never written)
    stopped: StopReason | None  # None: the run ended by itself
    stop_detail: str  # why, in words (for people: the words may change)
    dry_run: bool
    seconds: float
    retries: int
    results: Path
    errors_file: Path | None
    summary_json: Path | None
    report_html: Path | None
    _summary: Summary = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Every row created, found existing or skipped (valid, in a dry run)."""
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        """The command's exit code for this run (the README's table): 0, 1 or 3."""
        return exit_code(stopped=self.stopped is not None, counts=self.counts)

    @property
    def rows_to_fix(self) -> int:
        """Rows a person must fix: invalid, or refused by the API as they are."""
        return self._summary.to_fix

    @property
    def rows_to_retry(self) -> int:
        """Rows that need only another try (the next run sends them again)."""
        return self._summary.to_retry

    @property
    def rows_to_check(self) -> int:
        """Rows in doubt, to look up in Affelios (unconfirmed transactions)."""
        return self._summary.to_check

    @property
    def throttled(self) -> int:
        """Answers that were 429s."""
        return self._summary.throttled

    @property
    def paused_seconds(self) -> float:
        """Seconds the whole run waited, as the API asked."""
        return self._summary.paused_seconds

    def to_text(self) -> str:
        """The summary as the CLI prints it."""
        return self._summary.to_text()

    def to_json(self) -> str:
        """The summary as `--summary-json` writes it."""
        return json.dumps(self._summary.to_dict(), indent=2) + "\n"


class Importer:
    """Imports CSV files of customers into Affelios with one `ImportConfig`.

    `transport` replaces the HTTP transport (tests pass `httpx.MockTransport`);
    `progress(state)`, if given, is told how far a run is (a `Progress`): once when the
    checks are done, then every quarter second, and at the end, on the run's event loop.
    One run at a time per Importer.
    """

    def __init__(
        self,
        config: ImportConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        progress: Callable[[pipeline.Progress], None] | None = None,
    ) -> None:
        self.config = config
        self._transport = transport
        self._progress = progress
        # Guards the two below; re-entrant, for stop() may be called from a signal
        # handler in the very thread that holds it.
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopper: Stopper | None = None

    def run(
        self,
        input: PathArg,
        *,
        out: PathArg | None = None,
        errors_out: PathArg | None = None,
        summary_json: PathArg | None = None,
        report_html: PathArg | None = None,
    ) -> RunResult:
        """Import `input` (a CSV path, or "-" for standard input) in an event loop of its
        own. `out` defaults to `<input>.results.csv` beside it; the others are written
        only when given. Raises a SetupError (nothing sent) when something checked
        before the first request is wrong; anything after is in the result. Inside a
        running event loop (a notebook, an async service), `await arun(...)` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # none: the usual case
        else:  # checked before the coroutine exists: no "never awaited" warning either
            raise RuntimeError(
                "Importer.run() was called inside a running event loop, which it cannot "
                "start its own in: use `await importer.arun(...)` there"
            )
        return pipeline.in_own_loop(
            self.arun(
                input,
                out=out,
                errors_out=errors_out,
                summary_json=summary_json,
                report_html=report_html,
            )
        )

    async def arun(
        self,
        input: PathArg,
        *,
        out: PathArg | None = None,
        errors_out: PathArg | None = None,
        summary_json: PathArg | None = None,
        report_html: PathArg | None = None,
    ) -> RunResult:
        """`run`, in the running event loop (for callers that have one)."""
        source = Path(input)
        settings = Settings.of(
            self.config,
            input=source,
            out=Path(out)
            if out is not None
            else default_output(source, "results", dry_run=self.config.dry_run),
            errors_out=_path(errors_out),
            summary_json=_path(summary_json),
            report_html=_path(report_html),
        )
        stopper = Stopper()
        with self._lock:
            if self._stopper is not None:
                raise RuntimeError("this Importer is already running; one run at a time")
            self._loop, self._stopper = asyncio.get_running_loop(), stopper
        try:
            summary = await pipeline.arun(
                settings, transport=self._transport, progress=self._progress, stopper=stopper
            )
        finally:
            with self._lock:
                self._loop = self._stopper = None
        return RunResult(
            counts={status.value: summary.counts[status.value] for status in Status},
            rows=summary.rows,
            rows_missing=summary.rows_missing,
            stopped=summary.stopped,
            stop_detail=summary.stop_reason,
            dry_run=summary.dry_run,
            seconds=summary.seconds or 0.0,
            retries=summary.retries,
            results=settings.out,
            errors_file=settings.errors_out,
            summary_json=settings.summary_json,
            report_html=settings.report_html,
            _summary=summary,
        )

    def stop(self, at_once: bool = False, *, why: str = "stopped by the caller") -> None:
        """Stop the run in progress, from any thread (a signal handler too): the first
        call lets the requests in flight finish, a second one (or `at_once`) abandons
        them. Every row read still gets its results line. No run: nothing happens."""
        with self._lock:
            loop, stopper = self._loop, self._stopper
        if loop is not None and stopper is not None:
            loop.call_soon_threadsafe(lambda: stopper.stop(at_once=at_once, why=why))


def _path(value: PathArg | None) -> Path | None:
    return None if value is None else Path(value)
