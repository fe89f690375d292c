"""The journal: a SQLite ledger of every customer this tool created or found existing,
and (in a table of their own) every transaction it sent.

Keyed by base URL, `externalBrandId` and `externalId`, so that a rerun (or the nightly
run on tomorrow's export) never sends a known customer again. Records are committed in
batches, always before the results lines that report them are written. A transaction's
entry is `accepted`, `created` or `unconfirmed`: each keeps it from ever being sent again.

Crash safety: just before a row is sent, its entry is committed as `sending`; the answer
turns it into `created` or `exists` (or removes it, when nothing can have been created).
A run killed at any moment leaves `sending` entries for exactly the rows whose outcome
it never learned; the next run sends those again and relies on the API's 409.

One run at a time: a run holds an exclusive lock on `<journal>.lock` for as long as it
has the journal open, and a second run on the same journal is refused before it sends
anything (two overlapping cron entries would otherwise both send the same customers).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from etl.errors import OutputFailed, SetupError
from etl.keys import Entry, Key
from etl.urls import identity

T = TypeVar("T")

TABLES = ("customers", "transactions")  # one per kind of record (see etl.records)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    base_url          TEXT NOT NULL,
    external_brand_id TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    affelios_id       TEXT,
    status            TEXT NOT NULL,
    recorded_at       TEXT NOT NULL,
    first_recorded_at TEXT,
    sent              TEXT,
    PRIMARY KEY (base_url, external_brand_id, external_id)
) WITHOUT ROWID
"""
# The journal's schema, in SQLite's user_version: 0 had no first_recorded_at and no
# sent (what was sent for the customer: the JSON body); 1 has both.
SCHEMA_VERSION = 1
_MIGRATE_TO_1 = {  # column -> how to add it (a migration cut short is taken up again)
    "first_recorded_at": "ALTER TABLE customers ADD COLUMN first_recorded_at TEXT",
    "sent": "ALTER TABLE customers ADD COLUMN sent TEXT",
}
_LOOKUP_BATCH = 500


# When an entry was written, in UTC to the millisecond ("2026-11-25T14:30:12.345Z"),
# as SQLite states it: formatted in C at commit, not per row on the event loop.
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
_RECORD = f"""
INSERT INTO {{table}} VALUES (?,?,?,?,?,{_NOW},{_NOW},?)
ON CONFLICT DO UPDATE SET
    affelios_id = excluded.affelios_id, status = excluded.status,
    recorded_at = excluded.recorded_at, sent = excluded.sent
WHERE {{table}}.status = 'sending'
"""
_INTEND = (
    f"INSERT INTO {{table}} VALUES (?,?,?,NULL,'sending',{_NOW},{_NOW},NULL) ON CONFLICT DO NOTHING"
)
_ACCEPT = (
    f"UPDATE {{table}} SET sent = ?, recorded_at = {_NOW} WHERE base_url = ?"
    " AND external_brand_id = ? AND external_id = ? AND status != 'sending'"
)
_FORGET = (
    "DELETE FROM {table} WHERE base_url = ? AND external_brand_id = ? AND external_id = ?"
    " AND status = 'sending'"
)


class Journal:
    """The ledger.

    Its `a...` methods are for the run's event loop: they do their SQLite work in the
    journal's own thread, one statement batch at a time and in order, so that a commit
    never holds up the requests in flight. The plain methods work in the caller's thread,
    for use when no loop is running.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        base_url: str,
        lock: int | None = None,
        read_only: bool = False,
        path: Path | str = ":memory:",
        table: str = "customers",
    ) -> None:
        assert table in TABLES, table
        self.path = path
        self.table = table
        self._record, self._intend, self._accept, self._forget = (
            statement.format(table=table) for statement in (_RECORD, _INTEND, _ACCEPT, _FORGET)
        )
        self._db = connection
        self._base_url = identity(base_url)
        self._lock = lock
        self._pending: list[tuple[str, tuple[str | None, ...]]] = []  # (statement, row)
        self._intents: list[tuple[str, str, str]] = []
        self._intents_committed: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._writing: asyncio.Lock | None = None  # one batch in the thread at a time
        # The spellings of this API's URL that the journal holds: journals written before
        # URLs were normalized hold them as given (`http://LOCALHOST:8080/`). A writable
        # journal is rewritten to the normalized ones once; a read-only one is read
        # under each of them.
        # A read-only journal written before this table was holds none of it.
        self._has_table = (
            connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
            ).fetchone()
            is not None
        )
        spellings = _spellings(connection, table) if self._has_table else []
        if not read_only and any(identity(s) != s for s in spellings):
            _normalize(connection, spellings, table)
            spellings = _spellings(connection, table)
        held = [s for s in spellings if identity(s) == self._base_url]
        self._spellings = [self._base_url, *(s for s in held if s != self._base_url)]
        # A read-only journal of schema 0 (a dry run's) is read as it is.
        self._schema = connection.execute("PRAGMA user_version").fetchone()[0]
        # Whether it held nothing for this API when opened: then lookups can be skipped,
        # since what this run adds are keys it has already seen in the file.
        self.was_empty = not held

    @classmethod
    def open(
        cls, path: Path | str, *, base_url: str, read_only: bool = False, table: str = "customers"
    ) -> Journal:
        """Open (or create) the journal at `path`; `:memory:` keeps it for this run only.

        A read-only journal that does not exist yet is an empty one. A writable one is
        created readable by its owner only, and locked against other runs until `close`.
        A file that is damaged, or is not a journal of this tool, is refused (SetupError).
        """
        lock = None
        memory = path == ":memory:" or (read_only and not Path(path).exists())
        if not memory:
            path = Path(path).resolve()  # SQLite's -wal and -shm files go beside the file
        if not memory and not read_only:
            lock = _lock(Path(path))
        try:
            if memory:
                connection = sqlite3.connect(":memory:", check_same_thread=False)
            elif read_only:
                uri = f"{Path(path).as_uri()}?mode=ro"
                connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                # Used by one thread at a time: the journal's while a loop runs, else the
                # caller's (see the class).
                connection = sqlite3.connect(path, check_same_thread=False)
            try:
                _check(connection, read_only=read_only)
                if not read_only:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute("PRAGMA busy_timeout=10000")
                if not read_only or memory:
                    _create_or_migrate(connection)
                return cls(
                    connection,
                    base_url=base_url,
                    lock=lock,
                    read_only=read_only,
                    path=path,
                    table=table,
                )
            except BaseException:
                connection.close()
                raise
        except NotAJournal as exc:
            _release(lock)
            raise SetupError(f"journal {path}: {exc}; give another --journal") from exc
        except sqlite3.DatabaseError as exc:
            _release(lock)
            raise SetupError(
                f"journal {path}: not a readable journal ({exc}); if it is damaged, "
                "recover it with `sqlite3 JOURNAL .recover` or restore a backup, "
                "or give another --journal"
            ) from exc
        except (OSError, sqlite3.Error) as exc:
            _release(lock)
            raise SetupError(
                f"journal {path}: cannot be opened ({exc}); try --journal PATH"
            ) from exc
        except BaseException:
            _release(lock)
            raise

    def lookup(self, keys: Iterable[Key], *, table: str | None = None) -> dict[Key, Entry]:
        """The journal's entries among `keys` (in another of its tables: `table`)."""
        found: dict[Key, Entry] = {}
        if table is None and not self._has_table:
            return found
        for spelling in self._spellings:
            rows = select_keys(
                self._db,
                "SELECT c.external_brand_id, c.external_id, c.status, c.affelios_id,"
                f" {self._first_and_sent('c.')}"
                f" FROM {{keys}} JOIN {table or self.table} c ON c.base_url = ?"
                " AND c.external_brand_id = k.column1 AND c.external_id = k.column2",
                list(keys),
                spelling,
            )
            for brand, ext, status, affelios_id, first, sent in rows:
                entry = Entry(status, affelios_id, first, sent)
                if (brand, ext) not in found or entry.done:
                    found[brand, ext] = entry
        return found

    def _first_and_sent(self, table: str) -> str:
        """The columns of the first record's time and what was sent; a read-only journal
        of schema 0 (a dry run's, or affelios-journal's) has neither."""
        if self._schema >= 1:
            return f"{table}first_recorded_at, {table}sent"
        return f"{table}recorded_at, NULL"

    # For `affelios-journal`: the whole journal, whatever API it was written for.

    def stats(self) -> list[tuple[str, str, str, int]]:
        """(API, brand, status, records), in that order."""
        if not self._has_table:
            return []
        return self._db.execute(
            f"SELECT base_url, external_brand_id, status, COUNT(*) FROM {self.table}"
            " GROUP BY base_url, external_brand_id, status ORDER BY 1, 2, 3"
        ).fetchall()

    def entries(
        self, *, external_id: str | None = None, brand: str | None = None
    ) -> Iterator[dict[str, str | None]]:
        """Every entry (or those of one id, of one brand), as `EXPORT_COLUMNS`."""
        if not self._has_table:
            return
        wheres, params = [], []
        for column, value in (("external_id", external_id), ("external_brand_id", brand)):
            if value is not None:
                wheres.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(wheres)}" if wheres else ""
        first, sent = self._first_and_sent("").split(", ")
        rows = self._db.execute(
            "SELECT external_brand_id, external_id, affelios_id, status,"
            f" {first}, recorded_at, base_url, {sent} FROM {self.table}{where}"
            " ORDER BY base_url, external_brand_id, external_id",
            params,
        )
        for row in rows:
            yield dict(zip(EXPORT_COLUMNS, row, strict=True))

    def entries_of(self, keys: list[Key]) -> Iterator[dict[str, str | None]]:
        """The entries of these customers (brand, id) under every API the journal holds,
        found from the primary key (not by reading the whole journal)."""
        if not self._has_table:
            return
        first, sent = self._first_and_sent("c.").split(", ")
        for base_url in _spellings(self._db, self.table):
            rows = select_keys(
                self._db,
                "SELECT c.external_brand_id, c.external_id, c.affelios_id, c.status,"
                f" {first}, c.recorded_at, c.base_url, {sent}"
                f" FROM {{keys}} JOIN {self.table} c ON c.base_url = ?"
                " AND c.external_brand_id = k.column1 AND c.external_id = k.column2",
                keys,
                base_url,
            )
            for row in rows:
                yield dict(zip(EXPORT_COLUMNS, row, strict=True))

    def forget_entries(self, keys: Iterable[tuple[str, str, str]]) -> int:
        """Delete the entries of these (API, brand, id) keys, whatever their status: the
        customers will be sent again. How many there were."""
        with self._db:
            cursor = self._db.executemany(
                f"DELETE FROM {self.table} WHERE base_url = ? AND external_brand_id = ?"
                " AND external_id = ?",
                list(keys),
            )
        return cursor.rowcount

    def _turn(self) -> asyncio.Lock:
        if self._writing is None:
            self._writing = asyncio.Lock()
        return self._writing

    async def _in_thread(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, work)
        except sqlite3.Error as exc:
            raise OutputFailed(
                f"journal {self.path}: cannot be written ({exc}); nothing more was sent"
            ) from exc

    async def alookup(self, keys: Iterable[Key], *, table: str | None = None) -> dict[Key, Entry]:
        wanted = list(keys)
        async with self._turn():
            return await self._in_thread(lambda: self.lookup(wanted, table=table))

    async def intend(self, keys: Iterable[Key]) -> None:
        """Commit that `keys` are about to be sent, before any of them is.

        Should the process die before their answers are recorded, the next run finds
        their entries still `sending` and says so in its results (and sends them again:
        the API's 409 tells those it has). Callers that intend at the same moment share
        one commit.
        """
        self._intents.extend((self._base_url, key[0], key[1]) for key in keys)
        if self._intents_committed is None:
            commit = asyncio.get_running_loop().create_task(self._commit_intents())
            # Its failure reaches the workers that await it; should they all have been
            # cancelled meanwhile, it is still taken here (not left for asyncio to print).
            commit.add_done_callback(_retrieve)
            self._intents_committed = commit
        await asyncio.shield(self._intents_committed)

    async def _commit_intents(self) -> None:
        await asyncio.sleep(0)  # let every worker about to send add its intent first
        async with self._turn():
            # Taken once the batch before is committed: the workers that intended
            # meanwhile share this commit. (Lists are only swapped on the loop.)
            rows, self._intents, self._intents_committed = self._intents, [], None
            pending, self._pending = self._pending, []

            def commit() -> None:
                with self._db:
                    self._db.executemany(self._intend, rows)
                    # Outcomes recorded since the last commit ride along, so a killed
                    # run loses at most the answers of the last moment, not a chunk's.
                    self._execute(pending)

            await self._in_thread(commit)

    def _execute(self, pending: list[tuple[str, tuple[str | None, ...]]]) -> None:
        for statement, row in pending:
            self._db.execute(statement, row)

    def record(
        self, key: Key, *, affelios_id: str | None, status: str, sent: bytes | None = None
    ) -> None:
        """Remember a customer the API created or already had, and the body sent for it;
        kept until `flush`."""
        row = (
            self._base_url, key[0], key[1], affelios_id, status,
            None if sent is None else sent.decode(),
        )  # fmt: skip
        self._pending.append((self._record, row))

    def accept(self, key: Key, *, sent: bytes) -> None:
        """Take `sent` as what the API holds for a customer it has (changed in Affelios
        by hand); kept until `flush`."""
        self._pending.append((self._accept, (sent.decode(), self._base_url, key[0], key[1])))

    def forget(self, key: Key) -> None:
        """Drop the intent of a row now known not to have created anything."""
        self._pending.append((self._forget, (self._base_url, key[0], key[1])))

    def flush(self) -> None:
        """Commit what `record` and `forget` remembered, in one transaction, in order."""
        pending, self._pending = self._pending, []
        if pending:
            self._commit(pending)

    def _commit(self, pending: list[tuple[str, tuple[str | None, ...]]]) -> None:
        with self._db:
            self._execute(pending)

    async def aflush(self) -> None:
        async with self._turn():
            pending, self._pending = self._pending, []
            if pending:
                await self._in_thread(lambda: self._commit(pending))

    def close(self) -> None:
        """Commit what is pending and let go of the file and its lock. A commit that fails
        here repeats a failure that stopped the run already (or the run never wrote)."""
        try:
            self._thread.shutdown()
            with contextlib.suppress(sqlite3.Error):
                self.flush()
            self._db.close()
        finally:
            if self._lock is not None:
                os.close(self._lock)  # releases the lock
                self._lock = None


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _spellings(db: sqlite3.Connection, table: str = "customers") -> list[str]:
    """Every base URL the table holds, each found from the primary key in a step."""
    found: list[str] = []
    row = db.execute(f"SELECT MIN(base_url) FROM {table}").fetchone()
    while row[0] is not None:
        found.append(row[0])
        row = db.execute(
            f"SELECT MIN(base_url) FROM {table} WHERE base_url > ?", (row[0],)
        ).fetchone()
    return found


def _normalize(db: sqlite3.Connection, spellings: list[str], table: str = "customers") -> None:
    """Rewrite entries kept under a URL as it was given to its normalized form (and so
    without credentials). Where both forms hold a customer, the normalized one stays."""
    with db:
        for spelling in spellings:
            if (normal := identity(spelling)) != spelling:
                db.execute(
                    f"UPDATE OR IGNORE {table} SET base_url = ? WHERE base_url = ?",
                    (normal, spelling),
                )
                db.execute(f"DELETE FROM {table} WHERE base_url = ?", (spelling,))


def select_keys(
    db: sqlite3.Connection, query: str, keys: list[Key], *params: str
) -> Iterator[tuple[Any, ...]]:
    """Run `query` for `keys` in batches; `{keys}` in it stands for a table `k` of them.

    A join on a VALUES list, not `(a, b) IN (VALUES ...)`: SQLite answers the join from
    the primary key, the IN form by scanning the whole table for every batch.
    """
    for start in range(0, len(keys), _LOOKUP_BATCH):
        batch = keys[start : start + _LOOKUP_BATCH]
        values = ",".join("(?,?)" for _ in batch)
        yield from db.execute(
            query.format(keys=f"(VALUES {values}) AS k"),
            [*(part for key in batch for part in key), *params],
        )


# What `affelios-journal export` writes, one line per customer.
EXPORT_COLUMNS = (
    "externalBrandId", "externalId", "affelios_id", "status",
    "first_recorded_at", "last_recorded_at", "base_url", "sent",
)  # fmt: skip

APPLICATION_ID = 0x41464C49  # "AFLI", in the SQLite header of every journal
_COLUMNS = ["base_url", "external_brand_id", "external_id", "affelios_id", "status", "recorded_at"]
_COLUMNS_1 = [*_COLUMNS, "first_recorded_at", "sent"]


def _create_or_migrate(db: sqlite3.Connection) -> None:
    """Create the table, or bring a journal of an older schema up to this one."""
    with db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='customers'"
        ).fetchone()
        if exists and version < 1:
            columns = {row[1] for row in db.execute("PRAGMA table_info(customers)")}
            for column, statement in _MIGRATE_TO_1.items():
                if column not in columns:
                    db.execute(statement)
            db.execute(
                "UPDATE customers SET first_recorded_at = recorded_at"
                " WHERE first_recorded_at IS NULL"
            )
        for table in TABLES:
            db.execute(_SCHEMA.format(table=table))
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")


class NotAJournal(Exception):
    """The SQLite file is another program's."""


def _check(db: sqlite3.Connection, *, read_only: bool) -> None:
    """Refuse a file that is not a journal of this tool, or is damaged (SQLite's quick
    check reads every page: 0.3 s for a journal of a million entries, 114 MB)."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    if application_id not in (0, APPLICATION_ID) or (tables and "customers" not in tables):
        held = f" (it holds the tables {', '.join(tables)})" if tables else ""
        raise NotAJournal(f"this SQLite file is not a journal of affelios-import{held}")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise NotAJournal(
            f"it was written by a newer affelios-import (journal schema {version}; this "
            f"version reads up to {SCHEMA_VERSION}): upgrade affelios-import"
        )
    if "customers" in tables:
        columns = [row[1] for row in db.execute("PRAGMA table_info(customers)")]
        # Schema 0 may hold some of schema 1's columns: a migration cut short.
        partial = version < 1 and columns == _COLUMNS_1[: len(columns)]
        if columns != _COLUMNS_1 and not (partial and len(columns) >= len(_COLUMNS)):
            raise NotAJournal("its customers table is not a journal's")
    if "transactions" in tables:
        columns = [row[1] for row in db.execute("PRAGMA table_info(transactions)")]
        if columns != _COLUMNS_1:
            raise NotAJournal("its transactions table is not a journal's")
    problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"damaged: {'; '.join(problems)}")


def _release(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)


def _lock(path: Path) -> int:
    """Take the journal's run lock, or say which run holds it.

    The lock is on the journal file itself (`flock`, which SQLite's own byte-range locks
    do not touch), so it follows the file, not its name: a symbolic or hard link to the
    journal is the same journal. The holder's pid is noted in `<journal>.lock` beside the
    file, for the message. The journal is created here if it does not exist, readable
    by its owner only (customer ids are nobody else's business).
    """
    note = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SetupError(
            f"journal {path}: cannot be opened ({exc.strerror}); try --journal PATH"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        try:
            holder = note.read_text(errors="replace").strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise SetupError(
            f"journal {path} is in use by another affelios-import run (pid {holder}); "
            "nothing was sent: run again when it has finished"
        ) from None
    with contextlib.suppress(OSError):  # only for the message above
        pid = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(pid, f"{os.getpid()}\n".encode())
        os.close(pid)
    return fd
