"""Before the first request: every check that can be made, and what the run reads and
writes, opened (`prepare`); the endpoint the rows are sent to (`make_endpoint`).

Nothing is sent here, and a failure is a SetupError naming what to fix.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pandas as pd

from affelios_import import kinds
from affelios_import.errors import SetupError
from affelios_import.input import sheet as sheets
from affelios_import.input.acknowledged import Acknowledged
from affelios_import.input.columns import ColumnMap, resolve
from affelios_import.input.keycheck import KeyChecks
from affelios_import.input.read import (
    Source,
    column_names,
    inspect,
    read_chunks,
    spool_folder,
    spool_stdin,
)
from affelios_import.journal import Ledger, open_ledger
from affelios_import.output import workbook
from affelios_import.output.check import check as check_outputs
from affelios_import.output.results import RESULT_COLUMNS, ErrorsWriter, ResultsWriter
from affelios_import.settings import Settings
from affelios_import.urls import public
from affelios_import.version import __version__
from affelios_import.wire.endpoint import CONNECT_SHARE, Endpoint


@dataclass
class Prepared:
    settings: Settings
    source: Source
    columns: ColumnMap
    journal: Ledger
    results: ResultsWriter | workbook.ResultsWorkbook
    errors: ErrorsWriter | workbook.ErrorsWorkbook | None
    sheet: str | None  # the sheet read, when the input is a workbook
    acknowledged: Acknowledged | None = None  # --acknowledged: rows not to send, and why


def prepare(settings: Settings, stack: ExitStack) -> Prepared:
    """Every check that can be made before the first request; raises SetupError. What
    is opened is closed by `stack`."""
    if not settings.dry_run and not settings.api_key:
        raise SetupError(
            "no API key: set AFFELIOS_API_KEY or give --api-key-file (or use --dry-run)"
        )
    check_outputs(settings)
    kind = kinds.get(settings.kind)
    source, spooled = _source(settings, stack)
    columns = ColumnMap(header=(), to_field={})  # an empty file: nothing to map
    if not source.empty:
        mapping, brand = settings.mapping, settings.brand
        columns = resolve(
            list(source.header), brand=brand, source=source.name, mapping=mapping, kind=kind
        )
    _refuse_a_results_file(source)
    if spooled is not None and spooled.faults:
        faults = sheets.broken_rows(spooled.faults, columns)
        source = replace(source, broken=faults | source.broken)
    # An empty input (a quiet night's export) has no columns to name rows by, nor rows.
    acknowledged = None if source.empty else _acknowledged(settings, columns, stack)
    rows = source.rows if settings.limit is None else min(settings.limit, source.rows)
    for option, output in (("--out", settings.out), ("--errors-out", settings.errors_out)):
        if output is not None and workbook.is_workbook_name(output):
            workbook.check_rows(option, output, rows)
    journal = open_ledger(
        settings.journal, base_url=settings.base_url, read_only=settings.dry_run, kind=kind.name
    )
    stack.callback(journal.close)
    if kind.needs_history and not settings.new_journal:
        _refuse_a_blind_run(journal, settings)
    results, errors = _outputs(settings, source, columns, stack)
    return Prepared(
        settings=settings,
        source=source,
        columns=columns,
        journal=journal,
        results=results,
        errors=errors,
        sheet=spooled.sheet if spooled is not None else None,
        acknowledged=acknowledged,
    )


def _refuse_a_results_file(source: Source) -> None:
    """A results file is a report: its rows carry no check of their keys (an errors
    file's do: see `keycheck`), so one changed by a spreadsheet could create customers
    under mangled ids. Refuse it as an input (SetupError), saying what to import."""
    if source.header[: len(RESULT_COLUMNS)] == RESULT_COLUMNS:
        raise SetupError(
            f"{source.name}: this is a results file of affelios-import, a report; import "
            "its rows to fix from the errors file (--errors-out), or the original export"
        )


def _acknowledged(settings: Settings, columns: ColumnMap, stack: ExitStack) -> Acknowledged | None:
    """The rows of the --acknowledged file (a CSV or a workbook's first sheet), checked
    against the input's columns; raises SetupError or InputError naming what is wrong."""
    if settings.acknowledged is None:
        return None
    path = Path(settings.acknowledged)
    name, read = str(path), path
    if path.exists() and not path.is_file():
        # Read before the first request, a FIFO nobody writes would hold the run for ever.
        raise SetupError(f"{name}: not a regular file; the acknowledged rows are a file's")
    if sheets.is_workbook(path):
        read = sheets.spool_sheet(path, name=name, sheet=None, folder=spool_folder(stack)).path
    source = inspect(read, name=name, encoding=None, delimiter=None)
    if source.broken:
        number, (_, why) = min(source.broken.items())
        raise SetupError(f"{name}: row {number + 1}: {why}")
    chunks = list(read_chunks(source))
    rows = pd.concat(chunks) if chunks else pd.DataFrame(columns=column_names(source.header))
    return Acknowledged.of(name, rows, source.header, input=columns, kind=kinds.get(settings.kind))


def _refuse_a_blind_run(journal: Ledger, settings: Settings) -> None:
    """A journal that never recorded a record of this kind sent to this API (and brand)
    cannot tell what was sent before (a fresh worker, another journal, another spelling
    of the URL): refuse, unless this is the first import from anywhere."""
    if journal.holds(brand=settings.brand):
        return
    brand = f" for brand {settings.brand!r}" if settings.brand is not None else ""
    raise SetupError(
        f"journal {journal.path}: it has never recorded {settings.kind} sent to "
        f"{public(settings.base_url)}{brand}, so it cannot tell which of these were sent "
        "before and would send them all again; run on the journal of the earlier imports "
        "(--journal), or, if this is the first import of them from anywhere, add "
        "--new-journal"
    )


def _source(settings: Settings, stack: ExitStack) -> tuple[Source, sheets.Spooled | None]:
    """The input, checked (standard input and a workbook's sheet as a CSV copy), and,
    if it is a workbook, the sheet read."""
    path, name = settings.input, str(settings.input)
    if name == "-":
        path, name = spool_stdin(stack), "standard input"
    encoding, delimiter, spooled = settings.encoding, settings.delimiter, None
    if sheets.is_workbook(path):
        # Read as a CSV copy of the sheet's text: UTF-8 and commas, whatever was said of CSV.
        folder = spool_folder(stack)
        spooled = sheets.spool_sheet(path, name=name, sheet=settings.sheet, folder=folder)
        path, encoding, delimiter = spooled.path, None, None
    elif settings.sheet is not None:
        raise SetupError(f"--sheet {settings.sheet}: {name} is not a workbook")
    return inspect(path, name=name, encoding=encoding, delimiter=delimiter), spooled


def _outputs(
    settings: Settings, source: Source, columns: ColumnMap, stack: ExitStack
) -> tuple[ResultsWriter | workbook.ResultsWorkbook, ErrorsWriter | workbook.ErrorsWorkbook | None]:
    """The results file and the errors file (if asked for, with its rows' key checks),
    opened: CSV or workbook."""
    header = list(source.header)
    kind = kinds.get(settings.kind)
    keys = KeyChecks(columns, brand=settings.brand, kind=kind)
    results: ResultsWriter | workbook.ResultsWorkbook
    if workbook.is_workbook_name(settings.out):
        names = column_names(source.header)
        amounts = [i for i, n in enumerate(names) if columns.to_field.get(n) in kind.amounts]
        results = workbook.ResultsWorkbook(settings.out, header=header, amounts=amounts)
    else:
        results = ResultsWriter(settings.out, header=header, bom=settings.bom)
    stack.callback(results.close)
    errors: ErrorsWriter | workbook.ErrorsWorkbook | None = None
    if settings.errors_out is not None and workbook.is_workbook_name(settings.errors_out):
        errors = workbook.ErrorsWorkbook(settings.errors_out, header=header, keys=keys)
    elif settings.errors_out is not None:
        errors = ErrorsWriter(
            settings.errors_out,
            header=header,
            delimiter=source.delimiter,
            bom=settings.bom,
            keys=keys,
        )
    if errors is not None:
        stack.callback(errors.close)
    return results, errors


class _Unused(httpx.AsyncBaseTransport):
    """The transport of a dry run, which sends nothing (and so imports no HTTP client)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("a dry run sends nothing")


def make_endpoint(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> Endpoint:
    if transport is None and settings.dry_run:
        transport = _Unused()
    elif transport is None:
        from affelios_import.wire.transport import engine_transport  # not for a dry run

        transport = engine_transport(
            base_url=settings.base_url,
            concurrency=settings.concurrency,
            connect_timeout=CONNECT_SHARE * settings.timeout,
        )
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
        path=kinds.get(settings.kind).path,
    )
