"""`affelios-journal`: what the journal holds, and releasing customers from it.

    affelios-journal stats                      # customers per API, brand and status
    affelios-journal show C1 --brand casino-x   # one customer's entries
    affelios-journal export -o journal.csv      # every customer, as CSV
    affelios-journal forget C1 C2 --brand casino-x --yes

Every command but `forget` opens the journal read-only (it may run beside an import).
`forget` takes the journal's run lock, so it is refused while an import runs.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from affelios_import import kinds
from affelios_import.cli.config_file import load_journal_config, with_kind_section
from affelios_import.cli.key_file import journal_location
from affelios_import.config import default_journal
from affelios_import.errors import AffeliosImportError, InputError, SetupError, reason
from affelios_import.input.columns import fields_of, normalise, parse_mapping
from affelios_import.journal import Journal, open_journal, queries, store
from affelios_import.journal.queries import EXPORT_COLUMNS
from affelios_import.kinds.base import Kind
from affelios_import.output.check import same_file
from affelios_import.urls import check as check_base_url
from affelios_import.urls import identity, is_database, shown_journal
from affelios_import.version import __version__

JOURNAL_OPTION = click.option(
    "--journal",
    envvar="AFFELIOS_JOURNAL",
    callback=journal_location,
    metavar="PATH|URL",
    help="The journal: a SQLite file, or a postgresql:// URL (or AFFELIOS_JOURNAL).  "
    "[default: the one affelios-import uses, in the user data directory]",
)
KIND_OPTION = click.option(
    "--kind",
    type=click.Choice(kinds.NAMES),
    default="customers",
    show_default=True,
    help="Which records: the journal keeps customers and transactions apart.",
)
EXIT_CODES = "Exit codes: 0 done; 1 nothing matched, or forget without --yes; 2 usage error."


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES,
)
@click.version_option(__version__, prog_name="affelios-journal")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=load_journal_config,
    help="The import job's config file: its journal, kind, brand and base_url are the "
    "commands' defaults (their options override it).",
)
def main() -> None:
    """Look into affelios-import's journal: the customers it created or found, their
    Affelios ids, what was sent for them and when; and release customers from it, so
    that the next import sends them again.

    \b
    Example:
      affelios-journal stats
      affelios-journal export -o journal.csv
    """


@contextmanager
def _opened(
    path: Path | str | None, *, kind: str, read_only: bool = True, new: bool = False
) -> Iterator[Journal]:
    """The journal (`new`: made if it does not exist), or one line and exit 2."""
    path = path or default_journal()
    try:
        if isinstance(path, Path) and not path.exists() and not new:
            raise SetupError(f"journal {path}: no such file (no import has written it yet)")
        journal = open_journal(path, base_url="", read_only=read_only, kind=kind)
    except AffeliosImportError as exc:
        click.echo(f"affelios-journal: {exc}", err=True)
        sys.exit(exc.exit_code)
    try:
        yield journal
    except journal.errors as exc:  # the database failed after it opened (connection lost)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"affelios-journal: journal {journal.path}: {first}", err=True)
        sys.exit(2)
    finally:
        journal.close()


@main.command()
@JOURNAL_OPTION
@KIND_OPTION
@with_kind_section
def stats(journal: Path | str | None, kind: str) -> None:
    """Customers (or transactions) per API, brand and status."""
    with _opened(journal, kind=kind) as opened:
        rows = queries.stats(opened)
    if not rows:
        click.echo(f"the journal holds no {kind}")
        return
    total = sum(n for *_, n in rows)
    click.echo(f"{total:,} {kind} in {opened.path}")
    for base_url, brand, status, n in rows:
        click.echo(f"  {n:>10,}  {status:<8} {brand}  {base_url}")


@main.command()
@click.argument("external_id")
@click.option("--brand", help="Only this externalBrandId.")
@JOURNAL_OPTION
@KIND_OPTION
@click.option("--json", "as_json", is_flag=True, help="As JSON lines.")
@with_kind_section
def show(
    external_id: str, brand: str | None, journal: Path | str | None, kind: str, as_json: bool
) -> None:
    """The journal's entries of one customer (or transaction: EXTERNAL_ID, of every
    brand and API unless --brand says which). Exit 1 if it holds none."""
    with _opened(journal, kind=kind) as opened:
        found = list(queries.entries(opened, external_id=external_id, brand=brand))
    if not found:
        click.echo(f"no {kind[:-1]} {external_id!r} in the journal", err=True)
        sys.exit(1)
    for entry in found:
        if as_json:
            click.echo(json.dumps(entry, ensure_ascii=False))
            continue
        for name in EXPORT_COLUMNS:
            click.echo(f"{name + ':':<19} {'' if entry[name] is None else entry[name]}")
        click.echo("")


@main.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default="-",
    help="Write here.  [default: standard output]",
)
@JOURNAL_OPTION
@KIND_OPTION
@with_kind_section
def export(out: Path, journal: Path | str | None, kind: str) -> None:
    """Every customer (or transaction) as CSV: externalBrandId, externalId, affelios_id,
    status, first_recorded_at, last_recorded_at, base_url (no credentials), sent (the
    JSON body sent; empty for entries from before the journal kept it)."""
    with _opened(journal, kind=kind) as opened:
        if str(out) == "-":
            _write_csv(sys.stdout, opened)
            return
        if (refused := _not_an_export(out, Path(opened.path))) is not None:
            click.echo(f"affelios-journal: -o {out}: {refused}", err=True)
            sys.exit(2)
        try:
            with out.open("w", newline="", encoding="utf-8") as file:
                count = _write_csv(file, opened)
        except OSError as exc:
            click.echo(f"affelios-journal: -o {out}: cannot be written ({reason(exc)})", err=True)
            sys.exit(2)
    click.echo(f"{count:,} {kind} written to {out}", err=True)


def _not_an_export(out: Path, journal: Path) -> str | None:
    """Why `out` may not be written over: the journal, one of its own files, or a file
    that is not an export (the input of an import, say); None if it may."""
    if str(journal) != ":memory:":
        if same_file(out, journal):
            return "that is the journal; choose another path"
        if any(same_file(out, own) for own in store.own_files(journal)):
            return "that is one of the journal's own files; choose another path"
    if not out.exists():
        return None
    try:
        with out.open(encoding="utf-8", newline="") as file:
            first = file.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        first = ""
    if first != ",".join(EXPORT_COLUMNS):
        return "the file exists and is not an export of a journal; choose a new path"
    return None


def _write_csv(file: IO[str], journal: Journal) -> int:
    writer = csv.DictWriter(file, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for entry in queries.entries(journal):
        writer.writerow(entry)
        count += 1
    return count


@main.command("same-api")
@click.argument("other")
@click.argument("this")
@click.option("--yes", is_flag=True, help="Do it; without it, only say what would change.")
@JOURNAL_OPTION
@KIND_OPTION
@with_kind_section
def same_api(other: str, this: str, yes: bool, journal: Path | str | None, kind: str) -> None:
    """Tell the journal that OTHER and THIS are one API under two URLs: its entries under
    OTHER become THIS's (where both hold a record, THIS's stays), so a run on THIS skips
    what was sent to OTHER. An import says when it found rows sent to another URL.

    \b
    Example:
      affelios-journal same-api http://127.0.0.1:8080 http://localhost:8080 --yes
    """
    other, this = _api(other, "OTHER"), _api(this, "THIS")
    with _opened(journal, read_only=not yes, kind=kind) as opened:
        held = dict(queries.count_by_api(opened))
        if not held.get(other):
            click.echo(f"the journal holds no {kind} sent to {other}: nothing to do", err=True)
            sys.exit(1)
        if not yes:
            click.echo(
                f"would take {held[other]:,} {kind} sent to {other} as sent to {this}; "
                "nothing was changed: add --yes to do it",
                err=True,
            )
            sys.exit(1)
        moved = queries.same_api(opened, other, this)
    click.echo(f"{moved:,} {kind} sent to {other} are now {this}'s", err=True)


@main.command()
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@JOURNAL_OPTION
def backup(target: Path, journal: Path | str | None) -> None:
    """A consistent copy of the journal at TARGET (a new file): every customer and
    transaction, the answers still in its write-ahead log too. Safe while an import
    runs (a copy of the journal file alone then lacks the latest answers: their rows
    are in doubt in a run on it).

    \b
    Example:
      affelios-journal backup /backups/journal-2026-12-05.sqlite3
    """
    with _opened(journal, kind=kinds.NAMES[0]) as opened:
        shared = is_database(journal)
        refused = None if shared else _not_an_export(target, Path(opened.path))
        if target.exists() or refused:
            why = "the file exists; give a new path" if target.exists() else refused
            click.echo(f"affelios-journal: {target}: {why}", err=True)
            sys.exit(2)
        try:
            if shared:  # a SQLite journal of one moment of it (`copy` takes it back)
                with _opened(target, kind=kinds.NAMES[0], read_only=False, new=True) as copy:
                    queries.copy(opened, copy)
            else:
                store.backup(opened.db, target)
        except (OSError, sqlite3.Error) as exc:
            click.echo(f"affelios-journal: {target}: cannot be written ({exc})", err=True)
            sys.exit(2)
    click.echo(f"journal {opened.path} copied to {target}", err=True)


@main.command()
@click.argument("source", callback=journal_location)
@click.argument("target", callback=journal_location)
def copy(source: Path | str, target: Path | str) -> None:
    """Copy every customer and transaction of the journal SOURCE into TARGET: to move a
    SQLite journal to a shared PostgreSQL one (or one back: a PostgreSQL journal's
    `backup`). Where TARGET holds a record already, its entry stays (unless it is
    `sending` and SOURCE knows how that ended). A SQLite SOURCE is locked against
    imports meanwhile. Afterwards, import with --journal TARGET only.

    \b
    Example:
      affelios-journal copy ~/.local/share/affelios-import/journal.sqlite3 \\
          postgresql://ledger.internal/affelios
    """
    if shown_journal(source) == shown_journal(target) or (
        isinstance(source, Path) and isinstance(target, Path) and same_file(source, target)
    ):
        raise click.UsageError("SOURCE and TARGET are the same journal")
    kind = kinds.NAMES[0]
    with (
        _opened(source, kind=kind, read_only=is_database(source)) as read,
        _opened(target, kind=kind, read_only=False, new=True) as written,
    ):
        failures: tuple[type[Exception], ...] = (sqlite3.Error, *written.errors, *read.errors)
        try:
            done = queries.copy(read, written)
        except failures as exc:
            click.echo(
                f"affelios-journal: copy stopped ({exc}); the kind it was copying was not "
                "written: run it again",
                err=True,
            )
            sys.exit(2)
    for name, (entries, before) in done.items():
        click.echo(
            f"{name}: {entries:,} copied from {read.path} to {written.path} (it held "
            f"{before:,} before)",
            err=True,
        )
    click.echo(
        f"from now on, import with --journal {written.path} only: two journals cannot "
        "know what the other sent",
        err=True,
    )


@main.command()
@click.argument("external_ids", nargs=-1)
@click.option("--brand", help="The externalBrandId of the ids given (needed with ids).")
@click.option(
    "--keys",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A CSV of the records to forget: an export of this journal, or an import's "
    "results or errors file (its columns read as the import read them: names, aliases, "
    "--map).",
)
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Read this column of the --keys file as this field, as the import's --map did "
    "(or the config file's [map]).",
)
@click.option("--base-url", help="Only the entries of this API.  [default: every API]")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    help="Only entries of this status (repeat for more).  [default: transactions: "
    "unconfirmed and sending only; customers: any]",
)
@click.option("--yes", is_flag=True, help="Forget them; without it, only say what would go.")
@JOURNAL_OPTION
@KIND_OPTION
@with_kind_section
def forget(
    base_url: str | None, yes: bool, journal: Path | str | None, kind: str, **asked: Any
) -> None:
    """Release customers (or transactions) from the journal, so that the next import
    sends them again: after checking in Affelios that one it could not confirm was not
    created (a transaction `unconfirmed`: that it did not arrive), or to create one
    again on purpose (deleted in Affelios, say).

    \b
    Example:
      affelios-journal forget C1 C2 --brand casino-x --yes
      affelios-journal forget --keys to-send-again.csv --yes
      affelios-journal forget T17 --brand casino-x --kind transactions --yes

    A transaction the API took (`accepted`, `created`) is forgotten only when --status
    names its status: forgotten, it would be sent, and counted, again. A results file
    given to --keys releases only its rows in doubt (`unconfirmed` or `failed`).
    """
    wanted = sorted(_wanted(asked, kind=kinds.get(kind)))
    api = None if base_url is None else _api(base_url, "--base-url")
    statuses = set(asked["statuses"]) or kinds.get(kind).released_by_default
    with _opened(journal, read_only=not yes, kind=kind) as opened:
        held = [
            entry
            for entry in queries.entries_of(opened, wanted)
            if api is None or entry["base_url"] == api
        ]
        found = [
            (entry["base_url"] or "", entry["externalBrandId"] or "", entry["externalId"] or "")
            for entry in held
            if statuses is None or entry["status"] in statuses
        ]
        if kept := len(held) - len(found):
            shown = ", ".join(sorted(statuses or ()))
            click.echo(
                f"{kept:,} {kind} in the journal are not {shown}: kept (name their status "
                "with --status to forget them)",
                err=True,
            )
        if not found:
            click.echo(f"no such {kind[:-1]} in the journal: nothing to forget", err=True)
            sys.exit(1)
        for held_by, brand_id, external_id in found[:10]:
            click.echo(f"  {brand_id} {external_id}  ({held_by})", err=True)
        more = f" (and {len(found) - 10:,} more)" if len(found) > 10 else ""
        if not yes:
            click.echo(
                f"would forget {_records(len(found), kind)}{more}; nothing was changed: "
                "add --yes to forget them",
                err=True,
            )
            sys.exit(1)
        gone = queries.forget_entries(opened, found)
    them = "it" if gone == 1 else "them"
    click.echo(f"forgot {_records(gone, kind)}{more}: the next import sends {them} again", err=True)


def _records(n: int, kind: str) -> str:
    """`1 customer`, `2,000 transactions`."""
    return f"{n:,} {kind if n != 1 else kind.removesuffix('s')}"


def _api(url: str, option: str) -> str:
    """An API's URL as the journal keys it, or a usage error naming `option`."""
    try:
        return identity(check_base_url(url, allow_insecure_http=True, option=option))
    except SetupError as exc:
        raise click.UsageError(str(exc)) from None


def _wanted(asked: dict[str, Any], *, kind: Kind) -> set[tuple[str, str]]:
    """The (brand, id) keys asked for, from the arguments or the --keys file."""
    ids, brand, keys = asked["external_ids"], asked["brand"], asked["keys"]
    if ids and keys is not None:
        raise click.UsageError("give ids or --keys, not both")
    if ids:
        if brand is None:
            raise click.UsageError("give --brand with the ids (the journal keys by brand too)")
        return {(brand, external_id) for external_id in ids}
    if keys is None:
        raise click.UsageError("give the ids (with --brand), or --keys FILE")
    try:
        return _keys_file(keys, brand, kind=kind, mapping=parse_mapping(asked["mappings"]))
    except InputError as exc:
        click.echo(f"affelios-journal: {exc}", err=True)
        sys.exit(2)


def _keys_file(
    path: Path, brand: str | None, *, kind: Kind, mapping: dict[str, str]
) -> set[tuple[str, str]]:
    """The keys a CSV names, its columns read as the import read them (`fields_of`)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            sample = file.read(64 * 1024)
            file.seek(0)
            try:
                dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
            except csv.Error:  # one column: no delimiter to find
                dialect = csv.excel
            rows = list(csv.reader(file, dialect))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"--keys {path}: cannot be read as CSV ({exc})") from exc
    if not rows:
        raise InputError(f"--keys {path}: the file is empty")
    header = [normalise(name) for name in rows[0]]
    places = fields_of(rows[0], kind=kind, mapping=mapping)
    at_id, at_brand = places.get("externalId"), places.get("externalBrandId")
    if at_id is None or (at_brand is None and brand is None):
        raise InputError(
            f"--keys {path}: expected columns externalBrandId and externalId (or externalId "
            f"and --brand; or --map, as the import had it); found {', '.join(rows[0])}"
        )
    # A results file (it has the status of each row): only its rows in doubt.
    results = {normalise(name) for name in ("row", "status", "affelios_id")} <= set(header)
    at_status = header.index("status") if results else None
    wanted = set()
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise InputError(
                f"--keys {path}: row {number} has {len(row)} fields, the header {len(header)}"
            )
        if at_status is not None and row[at_status] not in IN_DOUBT:
            continue
        row_brand = row[at_brand] if at_brand is not None else ""
        wanted.add((row_brand or brand or "", row[at_id]))
    return wanted


# The statuses of a results file's rows that a person may release after checking: the
# rest were taken by the API (or never reached the journal).
IN_DOUBT = frozenset({"unconfirmed", "failed"})


if __name__ == "__main__":
    main()
