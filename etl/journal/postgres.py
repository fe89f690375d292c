"""The journal on PostgreSQL: one ledger for runs on several machines (psycopg 3).

The same tables as the SQLite journal (one per kind, the same columns) and `run_id`: the
run that wrote an entry `sending`. A run that writes registers in `affelios_runs` and
holds a session advisory lock on its id for as long as it is connected; a run that dies
(killed, or its machine gone) loses the lock when PostgreSQL drops its connection. So
whether a `sending` entry's run is alive is asked of `pg_locks`, never guessed from a time.

Claiming a row is one statement: `INSERT ... ON CONFLICT DO NOTHING RETURNING`. Of two
runs claiming one key at once, PostgreSQL lets exactly one insert it; the other learns it
holds nothing, and leaves the row to that run (`claimed`). An entry an earlier run left
`sending` is taken over only for a row the kind sends again (`Held.RESEND`: customers,
whose repeat the API's 409 tells), and only while no live run holds it.

Nothing here prints the URL as given: `path` is the URL without its credentials (and
without its query), and libpq's own messages are blanked of the password.
"""

from __future__ import annotations

import os
import re
import socket
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import conninfo

from affelios_import import kinds
from affelios_import.errors import SetupError
from affelios_import.journal.ledger import Journal
from affelios_import.journal.store import SCHEMA, SCHEMA_VERSION, TABLES, NotAJournal
from affelios_import.keys import CLAIMED, SENDING, Entry, Key
from affelios_import.redact import BLANKED, Redactor
from affelios_import.urls import shown_journal

T = TypeVar("T")

APPLICATION_ID = 0x41464C49  # "AFLI": the advisory locks of runs are (APPLICATION_ID, run)
META = "affelios_journal"  # (name, value): application, schema
RUNS = "affelios_runs"
_COLUMNS = [
    "base_url", "external_brand_id", "external_id", "affelios_id", "status",
    "recorded_at", "first_recorded_at", "sent", "run_id",
]  # fmt: skip
# The runs alive now: those whose advisory lock is held, in this database.
_LIVE = (
    "SELECT l.objid::bigint FROM pg_locks l WHERE l.locktype = 'advisory'"
    f" AND l.classid::bigint = {APPLICATION_ID} AND l.objsubid = 2 AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_CLAIM = """
INSERT INTO {table} AS c
SELECT ?, k.b, k.e, NULL, 'sending', {now}, {now}, NULL, ?
FROM unnest(?::text[], ?::text[]) AS k(b, e)
ON CONFLICT (base_url, external_brand_id, external_id) DO {then}
RETURNING c.external_brand_id, c.external_id
"""
_FRESH = "NOTHING"
_TAKE_OVER = f"""UPDATE SET run_id = excluded.run_id, recorded_at = excluded.recorded_at
WHERE c.status = 'sending' AND c.run_id IS DISTINCT FROM excluded.run_id
AND (c.run_id IS NULL OR c.run_id NOT IN ({_LIVE}))"""
_FORGET = (
    "DELETE FROM {table} WHERE base_url = ? AND external_brand_id = ? AND external_id = ?"
    " AND status = 'sending' AND run_id = ?"
)


@lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """The journal's SQL (`?` placeholders, as sqlite3 takes) as psycopg takes it."""
    assert "%" not in sql, sql
    return sql.replace("?", "%s")


class Connection:
    """A psycopg connection that takes the SQL sqlite3 takes: `?` placeholders, and
    `with connection:` for a transaction (committed at its end, rolled back on error)."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self._transactions: list[Any] = []  # the context managers of those open

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self.connection.execute(_pg(sql), parameters or None)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        cursor = self.connection.cursor()
        cursor.executemany(_pg(sql), parameters)
        return cursor

    def __enter__(self) -> Connection:
        transaction = self.connection.transaction()
        transaction.__enter__()
        self._transactions.append(transaction)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._transactions.pop().__exit__(*exc)

    def close(self) -> None:
        self.connection.close()


_FOLD_FROM, _FOLD_TO = string.ascii_uppercase, string.ascii_lowercase


@dataclass
class Database:
    """An open PostgreSQL journal: as `store.File` is for SQLite (the ledger asks both
    the same), and the run registered in it (`run_id`; 0 for a reader)."""

    db: Connection
    path: str  # the URL as shown
    run_id: int = 0
    errors: ClassVar[tuple[type[Exception], ...]] = (psycopg.Error,)
    # As SQLite's: UTC to the millisecond, at the transaction's start.
    now: ClassVar[str] = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

    def has_table(self, table: str) -> bool:
        return bool(_one(self.db.execute("SELECT to_regclass(?) IS NOT NULL", (table,))))

    def schema_version(self) -> int:
        return SCHEMA_VERSION

    @staticmethod
    def folded(column: str) -> str:
        """`column` folded as `store.fold` folds it: spaces trimmed, ASCII letters lowered
        (PostgreSQL's lower() folds more, by the database's locale)."""
        return f"translate(btrim({column}, ' '), '{_FOLD_FROM}', '{_FOLD_TO}')"

    def checkpoint(self) -> None:
        """Nothing to do: what PostgreSQL committed is in the database, not beside it."""

    def snapshot(self) -> None:
        """The rest of this transaction reads the database as it is now."""
        self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def close(self) -> None:
        try:
            if self.run_id:
                self.db.execute(f"DELETE FROM {RUNS} WHERE id = ?", (self.run_id,))
        except psycopg.Error:
            pass  # the run's lock goes with the connection either way
        finally:
            self.db.close()

    def live_runs(self) -> dict[int, str]:
        """The runs alive now, each as its results line describes it."""
        rows = self.db.execute(
            f"SELECT id, host, pid, started_at FROM {RUNS} WHERE id IN ({_LIVE})"
        ).fetchall()
        return {
            run: f"run {run}, pid {pid} on {host}, since {started[:19].replace('T', ' ')} UTC"
            for run, host, pid, started in rows
        }


class SharedJournal(Journal):
    """The ledger on PostgreSQL: `Journal`'s, but a claim may find a key another live
    run holds, and a lookup says which entries `sending` are such runs' (`CLAIMED`)."""

    FORGET = _FORGET
    _file: Database

    @classmethod
    def open(cls, path: Any, *, base_url: str, kind: str, read_only: bool = False) -> SharedJournal:
        return open_database(
            path,
            read_only=read_only,
            make=lambda db: cls(db, base_url=base_url, kind=kind, read_only=read_only),
        )

    def __init__(
        self, file: Database, *, base_url: str, kind: str, read_only: bool = False
    ) -> None:
        super().__init__(file, base_url=base_url, kind=kind, read_only=read_only)
        # Other runs write meanwhile: every chunk's keys are looked up, so that a row
        # another worker sent is `skipped` here, not lost to a claim.
        self.was_empty = False
        self._fresh, self._take_over = (
            _CLAIM.format(table=self.table, now=file.now, then=then)
            for then in (_FRESH, _TAKE_OVER)
        )

    def _entries(
        self, keys: list[Key], base_url: str, *, table: str, folded: bool = False
    ) -> Iterator[tuple[Key, Entry]]:
        """As `Journal._entries`, but an entry `sending` that another live run holds is
        `CLAIMED`, naming that run."""
        rows = self._rows(keys, base_url, table=table, folded=folded, more=", c.run_id")
        live: dict[int, str] | None = None
        for brand_id, external_id, status, affelios_id, first, sent, run in rows:
            by = ""
            if status == SENDING and run is not None and run != self._file.run_id:
                live = self._file.live_runs() if live is None else live
                if run in live:
                    status, by = CLAIMED, live[run]
            yield (brand_id, external_id), Entry(status, affelios_id, first, sent, by)

    def _claim(self, keys: list[Key], resent: set[Key]) -> frozenset[Key]:
        """Claim `keys` in one order for every run (two runs claiming at once never wait
        on each other in a circle); those another run holds."""
        claimed: set[Key] = set()
        ordered = sorted(keys)
        for statement, batch in (
            (self._fresh, [key for key in ordered if key not in resent]),
            (self._take_over, [key for key in ordered if key in resent]),
        ):
            if batch:
                rows = self.db.execute(
                    statement,
                    (
                        self._base_url, self._file.run_id,
                        [brand for brand, _ in batch], [ext for _, ext in batch],
                    ),
                )  # fmt: skip
                claimed.update((brand, ext) for brand, ext in rows)
        return frozenset(key for key in keys if key not in claimed)

    def forget(self, key: Key) -> None:
        """Drop this run's intent of a row known not to have created anything."""
        row = (self._base_url, key[0], key[1], str(self._file.run_id))
        self._pending.append((self._forget, row))


def open_database(url: str, *, read_only: bool, make: Callable[[Database], T]) -> T:
    """`make(database)` of the journal in the PostgreSQL database at `url`: created (or
    migrated) unless `read_only`, and this run registered. Whatever fails is a
    SetupError whose message holds no credential."""
    where = shown_journal(url)  # no user, no password, no query
    blank = _blanker([_password(url), os.environ.get("PGPASSWORD")])
    try:
        connection = psycopg.connect(
            url, autocommit=True, connect_timeout=10, application_name="affelios-import"
        )
    except psycopg.Error as exc:
        raise SetupError(
            f"journal {where}: cannot connect ({blank(_first_line(exc))}); check the URL, "
            "and the password in ~/.pgpass or PGPASSWORD"
        ) from None
    db = Connection(connection)
    try:
        check(db)
        run_id = 0 if read_only else _register(db)
        return make(Database(db, where, run_id))
    except NotAJournal as exc:
        db.close()
        raise SetupError(f"journal {where}: {exc}; give another --journal") from None
    except psycopg.Error as exc:
        db.close()
        raise SetupError(f"journal {where}: cannot be used ({blank(_first_line(exc))})") from None
    except BaseException:
        db.close()
        raise


def _blanker(secrets: list[str | None]) -> Callable[[str], str]:
    """Blank the passwords out of libpq's messages (which are not known to show them):
    in any encoding, as the API key is; a password of under 4 characters only where it
    stands as a word, or every `r` of "permission" would go with a password `r`."""
    kept = [s for s in secrets if s]
    redact = Redactor(s for s in kept if len(s) >= 4)
    short = [re.escape(s) for s in kept if len(s) < 4]
    words = re.compile(rf"(?<!\w)(?:{'|'.join(short)})(?!\w)") if short else None
    return lambda text: redact(words.sub(BLANKED, text) if words else text)


def _one(cursor: psycopg.Cursor[Any]) -> Any:
    """The first column of the one row a statement returns."""
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def _password(url: str) -> str | None:
    try:
        return conninfo.conninfo_to_dict(url).get("password")  # type: ignore[return-value]
    except psycopg.ProgrammingError:
        return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check(db: Connection) -> None:
    """Refuse a database whose tables are not a journal's (another program's
    `customers`), or a journal of a newer schema."""
    if _one(db.execute("SELECT to_regclass(?) IS NOT NULL", (META,))):
        meta = dict(db.execute(f"SELECT name, value FROM {META}").fetchall())
        if meta.get("application") != "affelios-import":
            raise NotAJournal(f"its {META} table is not affelios-import's")
        version = int(meta.get("schema", "0"))
        if version > SCHEMA_VERSION:
            raise NotAJournal(
                f"it was written by a newer affelios-import (journal schema {version}; this "
                f"version reads up to {SCHEMA_VERSION}): upgrade affelios-import"
            )
    for table in TABLES:
        columns = [
            name
            for (name,) in db.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?)"
                " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (table,),
            )
        ]
        if columns and columns != _COLUMNS:
            raise NotAJournal(f"it holds a {table} table that is not a journal's")


def _register(db: Connection) -> int:
    """Create (or migrate) the tables, register this run, and take its lock."""
    with db:
        # One run at a time creates the tables (two at once would both try to).
        db.execute(f"SELECT pg_advisory_xact_lock({APPLICATION_ID}, 0)")
        db.execute(f"CREATE TABLE IF NOT EXISTS {META} (name TEXT PRIMARY KEY, value TEXT)")
        db.execute(
            f"INSERT INTO {META} VALUES ('application', 'affelios-import'), ('schema', ?)"
            " ON CONFLICT DO NOTHING",
            (str(SCHEMA_VERSION),),
        )
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {RUNS} (id SERIAL PRIMARY KEY, host TEXT NOT NULL,"
            " pid INTEGER NOT NULL, started_at TEXT NOT NULL)"
        )
        for table in TABLES:
            schema = SCHEMA.format(table=table).replace(") WITHOUT ROWID", ")")
            db.execute(schema.replace("    PRIMARY KEY", "    run_id INTEGER,\n    PRIMARY KEY"))
            if kinds.get(table).folded_keys:
                brand, ext = (Database.folded(c) for c in ("external_brand_id", "external_id"))
                db.execute(
                    f"CREATE INDEX IF NOT EXISTS {table}_folded"
                    f" ON {table} (base_url, {brand}, {ext})"
                )
        run_id = int(
            _one(
                db.execute(
                    f"INSERT INTO {RUNS} (host, pid, started_at) VALUES (?, ?, {Database.now})"
                    " RETURNING id",
                    (socket.gethostname(), os.getpid()),
                )
            )
        )
    db.execute(f"SELECT pg_advisory_lock({APPLICATION_ID}, ?)", (run_id,))
    return run_id
