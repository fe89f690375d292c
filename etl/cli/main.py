"""The `affelios-import` command: parse options into an ImportConfig, run, report, exit.

No business logic here: the core is `affelios_import.Importer`. The CLI owns what a program owns:
the signals, the progress bar, the printed summary and the exit code.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from affelios_import import (
    AffeliosImportError,
    ConfigError,
    ImportConfig,
    Importer,
    RunResult,
    SetupError,
    kinds,
    urls,
)
from affelios_import.cli import process
from affelios_import.cli.config_file import load_config, with_kind_section
from affelios_import.cli.key_file import ApiKey, journal_location, read_api_key
from affelios_import.cli.watch import Watch
from affelios_import.config import CONCURRENCY_MAX, DEFAULT_BASE_URL, RETRIES_MAX, default_journal
from affelios_import.errors import reason
from affelios_import.importer import default_output
from affelios_import.input.columns import parse_mapping
from affelios_import.logs import setup as setup_logs
from affelios_import.output.check import check as check_outputs
from affelios_import.settings import Settings
from affelios_import.version import __version__


def expand(path: Path, *, now: datetime | None = None) -> Path:
    """`results/{date}.csv` -> `results/2026-11-25.csv`: placeholders for dated names.

    `{date}` is the local date (YYYY-MM-DD), `{time}` the local time (HHMMSS).
    """
    now = now or datetime.now()
    try:
        return Path(str(path).format(date=f"{now:%Y-%m-%d}", time=f"{now:%H%M%S}"))
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise SetupError(
            f"{path}: not a placeholder this tool knows ({exc}); the placeholders are "
            "{date} and {time}"
        ) from exc


EPILOG = """\b
Examples, by group of options:
  export AFFELIOS_API_KEY=...            # the key: never on the command line
\b
  # the first try: every check, nothing sent; or a sandbox API on this machine
  affelios-import customers.csv --brand casino-x --dry-run --limit 100
  affelios-import customers.csv --brand casino-x --sandbox
\b
  # input: encoding, delimiter, column names, a config file, a sheet of a workbook
  affelios-import export.csv --encoding cp1252 --delimiter ';' --map 'Brand=externalBrandId'
  affelios-import export.csv.gz --config nightly.toml
  gunzip -c export.csv.gz | affelios-import - --brand casino-x -o results.csv
  affelios-import export.xlsx --sheet Customers --brand casino-x
\b
  # the API, its pace and its faults
  affelios-import customers.csv --brand casino-x --base-url https://api.affelios.com
  affelios-import customers.csv --brand casino-x --concurrency 32 --rate 50 --retries 8
\b
  # what is written: results, errors to fix (CSV or .xlsx), summary, logs, report
  affelios-import customers.csv --brand casino-x -o 'results/{date}.csv' --errors-out fix.csv
  affelios-import customers.csv --brand casino-x --summary-json s.json --report-html run.html
  affelios-import customers.csv --brand casino-x --log-file run.log --log-format json -v
  affelios-import customers.csv --brand casino-x -q --metrics-file textfile/affelios.prom
  affelios-import customers.csv --brand casino-x -o results.xlsx --errors-out fix.xlsx
  affelios-import customers.csv --brand casino-x --bom
\b
  # transactions (deposits, revenue): each sent at most once; the first time, say so
  affelios-import deposits.csv --kind transactions --brand casino-x --new-journal
  affelios-import deposits.csv --kind transactions --brand casino-x
  affelios-import deposits.csv --kind transactions --not-the-same-api https://staging.test
\b
  # customers reported `changed`, once changed in Affelios by hand: report them no more
  affelios-import customers.csv --brand casino-x --accept-changes
\b
  # rows that will never be importable, each with a reason: not sent, not to fix
  affelios-import customers.csv --brand casino-x --acknowledged known.csv
\b
  # last night's run, from its results file
  affelios-summary customers.results.csv

\b
Exit codes: 0 every row created, exists or skipped (valid, in a dry run);
1 some rows invalid or failed; 2 usage error, unreadable input or no key;
3 the run was stopped (API key refused, API down, interrupted).
"""


class FiniteFloat(click.FloatRange):
    """A float in range that is a real number: `inf` and `nan` are refused."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


def parse_delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    value = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(
        value.lower(), value
    )
    if len(value) != 1:
        raise click.BadParameter("one character, or tab, comma, semicolon or pipe")
    if value in '"\r\n\x00' or value.isalnum():
        raise click.BadParameter(f"{value!r} cannot separate fields; use , ; | or tab")
    return value


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument(
    "csv_path", metavar="CSV", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True)
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=load_config,
    help="A TOML file of settings (brand, base_url, map, encoding, ...); options override it.",
)
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Read this column as this API field (repeatable); FIELD - leaves it out.",
)
@click.option(
    "--acknowledged",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Rows that will never be importable, each with a reason (a CSV or workbook of "
    "the input's columns and 'reason'): not sent, and not rows to fix.",
)
@click.option(
    "--encoding", help="The file's encoding (utf-8, utf-16, cp1252, ...).  [default: detected]"
)
@click.option(
    "--delimiter",
    callback=parse_delimiter,
    help="The field delimiter: , ; | or tab.  [default: sniffed]",
)
@click.option(
    "--kind",
    type=click.Choice(kinds.NAMES),
    default="customers",
    show_default=True,
    help="What the rows are. Transactions are sent at most once: one that may have "
    "reached the API is never sent again (see the README).",
)
@click.option(
    "--sheet",
    metavar="NAME",
    help="A workbook's sheet to read (.xlsx, .xlsm, .xlsb, .xls, .ods).  [default: the first]",
)
@click.option(
    "--bom",
    is_flag=True,
    help="Start the CSV results and errors files with a UTF-8 byte-order mark, so that "
    "Excel reads them as UTF-8 when they are double-clicked.",
)
@click.option(
    "--brand",
    help="externalBrandId for rows that leave it empty; rows naming another brand are invalid.",
)
@click.option(
    "--base-url",
    envvar="AFFELIOS_BASE_URL",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="The Affelios API (or AFFELIOS_BASE_URL).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Results CSV, or workbook if it ends in .xlsx.  [default: <CSV>.results.csv; "
    "for a workbook, <input>.results.xlsx]",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, CONCURRENCY_MAX),
    default=16,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--rate",
    type=FiniteFloat(min=0, min_open=True),
    help="At most this many requests per second, across all workers.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, RETRIES_MAX),
    default=5,
    show_default=True,
    help="Retries of a request after 429, 5xx, a timeout or a dropped connection.",
)
@click.option(
    "--timeout",
    type=FiniteFloat(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds one attempt may take, to the last byte of the answer.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check every row and write the results; send nothing (no key needed).",
)
@click.option(
    "--journal",
    envvar="AFFELIOS_JOURNAL",
    callback=journal_location,
    metavar="PATH|URL",
    help="The journal: a SQLite file, or a postgresql:// URL shared by several workers (or "
    "AFFELIOS_JOURNAL).  [default: a file in the user data directory]",
)
@click.option(
    "--api-key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the API key from this file instead of AFFELIOS_API_KEY.",
)
@click.option(
    "--allow-insecure-http",
    is_flag=True,
    help="Allow a plain http:// base URL that is not loopback.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Import into a local sandbox API started for this run (no account needed).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress bar; print the summary only if something needs attention.",
)
@click.option(
    "--report-html",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a one-page picture of the run (counts, errors, rows over time) here.",
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append one line per notable event (start, retries, throttling, stop, end) here.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as key=value text or as JSON objects.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Log every request too (to stderr without --log-file)."
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Only the first N data rows (to try a file out).",
)
@click.option(
    "--errors-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The rows to fix (invalid, failed, unconfirmed), to import again; a workbook if "
    "it ends in .xlsx.  [default: <CSV>.errors.csv; for a workbook, <input>.errors.xlsx]",
)
@click.option(
    "--summary-json",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the summary as JSON here.",
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="After the run, write Prometheus metrics of it here (node_exporter's textfile "
    "collector: a .prom file in its folder).",
)
@click.option(
    "--new-journal",
    is_flag=True,
    help="Transactions: this is the first import of them from anywhere, so a journal that "
    "never recorded one for this API (and brand) is not refused.",
)
@click.option(
    "--not-the-same-api",
    "not_the_same_api",
    multiple=True,
    metavar="URL",
    help="Transactions: another base URL the journal holds records for is not this API "
    "(a staging host, say), so what was sent there is sent here too. Repeat for more.",
)
@click.option(
    "--accept-changes",
    is_flag=True,
    help="Customers changed since they were imported (and since changed in Affelios by "
    "hand): the journal takes today's values, so they are reported this once more.",
)
@click.version_option(__version__, prog_name="affelios-import")
@with_kind_section
def main(**options: Any) -> None:
    """Register the customers in CSV with Affelios, one request per row.

    Writes one results line per row (status, Affelios id or error, then the row's own
    columns) to <CSV>.results.csv, prints a summary, and exits with a code that says
    how it went. The API key comes from AFFELIOS_API_KEY or --api-key-file, never from
    the command line.
    """
    sys.exit(run(Options(**options)))


@dataclass(frozen=True)
class Options:
    """The command's options as click parsed them (and the config file filled in)."""

    csv_path: Path
    mappings: tuple[str, ...]
    acknowledged: Path | None
    encoding: str | None
    delimiter: str | None
    kind: str
    sheet: str | None
    bom: bool
    brand: str | None
    base_url: str
    out: Path | None
    concurrency: int
    rate: float | None
    retries: int
    timeout: float
    dry_run: bool
    journal: Path | str | None
    api_key_file: Path | None
    allow_insecure_http: bool
    sandbox: bool
    quiet: bool
    report_html: Path | None
    log_file: Path | None
    log_format: str
    verbose: bool
    limit: int | None
    errors_out: Path | None
    summary_json: Path | None
    metrics_file: Path | None
    accept_changes: bool
    new_journal: bool
    not_the_same_api: tuple[str, ...]


def run(opts: Options) -> int:
    """One import as the command runs it, and its metrics; the exit code."""
    started = time.time()
    result: RunResult | None = None
    # The metrics file once the output checks passed: it is never written otherwise
    # (it might be the journal, by another name).
    checked: dict[str, Path] = {}
    try:
        result = _import(opts, checked)
        code = result.exit_code
    except AffeliosImportError as exc:
        click.echo(f"affelios-import: {exc}", err=True)
        code = exc.exit_code
    if result is not None and (not opts.quiet or code != 0):
        click.echo(result.to_text(), err=True)
    if "metrics_file" in checked:
        code = _write_metrics(checked["metrics_file"], started, result, code, kind=opts.kind)
    return code


def _write_metrics(
    path: Path, started: float, result: RunResult | None, code: int, *, kind: str
) -> int:
    """Write the metrics of the run; a failure is one line and exit 3."""
    from affelios_import.output import (
        metrics,  # prometheus_client: for runs that write metrics only
    )

    try:
        metrics.write(
            path,
            metrics.LastRun(
                started=started,
                finished=time.time(),
                exit_code=code,
                kind=kind,
                counts=result.counts if result is not None else {},
                retries=result.retries if result is not None else 0,
                rows_to_fix=result.rows_to_fix if result is not None else 0,
                rows_to_retry=result.rows_to_retry if result is not None else 0,
                rows_to_check=result.rows_to_check if result is not None else 0,
                throttled=result.throttled if result is not None else 0,
                paused_seconds=result.paused_seconds if result is not None else 0.0,
            ),
        )
    except OSError as exc:
        click.echo(
            f"affelios-import: --metrics-file {path}: cannot be written ({reason(exc)})",
            err=True,
        )
        return 3
    return code


def _config(opts: Options, url: str, key: ApiKey, memory: bool) -> ImportConfig:
    """The options as an `ImportConfig` (which checks them); the URLs are checked first
    in the CLI's words (`--base-url`, not the library's `base_url`), and a refused key
    is named by where it came from."""
    urls.check(url, allow_insecure_http=opts.allow_insecure_http)
    for other in opts.not_the_same_api:
        urls.check(other, allow_insecure_http=True, option="--not-the-same-api")
    try:
        return ImportConfig(
            base_url=url,
            api_key=key.text,
            allow_insecure_http=opts.allow_insecure_http,
            journal=opts.journal or (":memory:" if memory else default_journal()),
            brand=opts.brand,
            concurrency=opts.concurrency,
            rate=opts.rate,
            retries=opts.retries,
            timeout=opts.timeout,
            dry_run=opts.dry_run,
            accept_changes=opts.accept_changes,
            new_journal=opts.new_journal,
            not_the_same_api=opts.not_the_same_api,
            limit=opts.limit,
            encoding=opts.encoding,
            delimiter=opts.delimiter,
            kind=opts.kind,
            sheet=opts.sheet,
            bom=opts.bom,
            mapping=parse_mapping(opts.mappings),
            acknowledged=opts.acknowledged,
        )
    except ConfigError as exc:
        if exc.setting == "api_key":
            raise SetupError(f"{key.source}: {exc.problem}") from None
        raise


def _import(opts: Options, checked: dict[str, Path]) -> RunResult:
    """Check, import, and return how it went; raises what stops it before it starts.
    `checked` gets the metrics file, once it is known not to be any other file."""
    with _api(opts) as (url, key, memory):
        config = _config(opts, url, key, memory)
        files = _files(opts)
        log_file = expand(opts.log_file) if opts.log_file else None
        metrics_file = expand(opts.metrics_file) if opts.metrics_file else None
        # Before the log file is opened: it must not be the input, the journal, or another
        # output (the run checks its own outputs when it starts).
        check_outputs(
            Settings.of(
                config,
                input=opts.csv_path,
                log_file=log_file,
                metrics_file=metrics_file,
                **files,
            ),
            only=("--log-file", "--metrics-file"),
        )
        if metrics_file is not None and not opts.dry_run:
            # A dry run is not an import: its exit 0 must not hide a nightly job that
            # stopped (the metrics file often comes with the job's config file).
            checked["metrics_file"] = metrics_file
        setup_logs(path=log_file, format=opts.log_format, verbose=opts.verbose)
        watch = Watch(bar=sys.stderr.isatty()) if not opts.quiet else None
        importer = Importer(config, progress=watch)
        try:
            say = watch.say if watch is not None else None
            with stop_on_signals(importer, say=say, grace=config.grace_seconds):
                return importer.run(opts.csv_path, **files)
        finally:
            if watch is not None:
                watch.close()


def _files(opts: Options) -> dict[str, Path | None]:
    """What the run writes: results and errors beside the input unless told otherwise."""
    source, dry = opts.csv_path, opts.dry_run
    return {
        "out": expand(opts.out) if opts.out else default_output(source, "results", dry_run=dry),
        "errors_out": expand(opts.errors_out)
        if opts.errors_out
        else default_output(source, "errors", dry_run=dry),
        "summary_json": expand(opts.summary_json) if opts.summary_json else None,
        "report_html": expand(opts.report_html) if opts.report_html else None,
    }


# What a stop says at once (see `stop_on_signals`), for the first and a second one.
STOPPING = {
    1: (
        "stopping: nothing more is sent; the requests in flight get up to {grace:g} s to "
        "finish, then every row is written (the rest not_sent). Ctrl-C again abandons them."
    ),
    2: (
        "stopping now: the requests in flight are abandoned (their rows stay in the journal "
        "as perhaps sent); every row read is written."
    ),
}


@contextmanager
def stop_on_signals(
    importer: Importer, *, say: Callable[[str], None] | None = None, grace: float = 0.0
) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the import as `Importer.stop` does: the first lets the
    requests in flight finish (for `grace` seconds at most), a second abandons them;
    each is acknowledged at once with `say` (if given), so that nobody waits on a
    screen that seems frozen. The handlers that were there before are put back after."""
    count = 0

    def handle(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        importer.stop(at_once=count > 1, why=f"interrupted by {signal.Signals(signum).name}")
        if say is not None:
            say(STOPPING[min(count, 2)].format(grace=grace))

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _api(opts: Options) -> Iterator[tuple[str, ApiKey, bool]]:
    """(base URL, key, whether the journal should live only for this run)."""
    if not opts.sandbox:
        yield (
            opts.base_url,
            read_api_key(opts.api_key_file, os.environ.get("AFFELIOS_API_KEY")),
            False,
        )
        return
    # Imported here: the sandbox's server and contract checker cost 0.1 s to import.
    from affelios_import.sandbox import Sandbox, serve_in_thread

    key = secrets.token_urlsafe(24)
    with serve_in_thread(Sandbox(api_key=key)) as url:
        click.echo(f"sandbox: importing into a local Affelios sandbox at {url}", err=True)
        yield url, ApiKey(key, "the sandbox's key"), True


def program() -> None:
    """The `affelios-import` program: `main`, then an exit without the interpreter's
    teardown, which spends 0.2 s freeing pandas, pyarrow and aiohttp object by object.

    By then every file the run wrote is closed and its journal committed; standard
    streams and log files are flushed here first.
    """
    process.tune()
    # pandera imports hypothesis, where it is installed (a shared or development
    # environment), the first time it validates, for data-synthesis strategies that
    # this program never uses: 0.14 s before the first request. Blocked for this
    # process only; pandera does without it.
    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]
    try:
        main()
    except SystemExit as done:
        code = done.code
        if code is not None and not isinstance(code, int):
            raise
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):  # a closed pipe, say
                stream.flush()
        os._exit(code or 0)
