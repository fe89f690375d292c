"""The journal's SQLite file: its schema and migrations, the checks that a file is a
journal of this tool (and not damaged), the run lock, and the queries every reader of it
shares. Nothing here knows of a run.

One run at a time: a run holds an exclusive lock on the journal file (`flock`) for as
long as it has the journal open, and a second run on the same journal is refused before
it sends anything (two overlapping cron entries would otherwise both send the same rows).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from affelios_import import kinds
from affelios_import.errors import SetupError, is_disk_full, reason
from affelios_import.keys import Key
from affelios_import.urls import identity

T = TypeVar("T")

TABLES = kinds.NAMES  # one table per kind of record, named as the kind
# The table of schema 0, the first journals': every journal has it (see `check`).
FIRST_TABLE = "customers"
SCHEMA = """
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
LOOKUP_BATCH = 500


class Connection(Protocol):
    """What the ledger asks of a connection: sqlite3's, or `journal.postgres.Connection`
    (which takes the same SQL, `?` placeholders and all)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> Any: ...

    def close(self) -> None: ...


def spellings(db: Connection, table: str) -> list[str]:
    """Every base URL the table holds, each found from the primary key in a step."""
    found: list[str] = []
    row = db.execute(f"SELECT MIN(base_url) FROM {table}").fetchone()
    while row[0] is not None:
        found.append(row[0])
        row = db.execute(
            f"SELECT MIN(base_url) FROM {table} WHERE base_url > ?", (row[0],)
        ).fetchone()
    return found


def normalize(db: Connection, spellings: list[str], table: str) -> None:
    """Rewrite entries kept under a URL as it was given to its normalized form (and so
    without credentials). Where both forms hold a customer, the normalized one stays."""
    with db:
        for spelling in spellings:
            if (normal := identity(spelling)) != spelling:
                move(db, table, spelling, normal)


def move(db: Connection, table: str, old: str, new: str) -> None:
    """Move the entries under base URL `old` to `new`; where both hold a key, `new`'s
    stays and `old`'s goes. (Plain SQL: SQLite's and PostgreSQL's alike.)"""
    db.execute(
        f"UPDATE {table} SET base_url = ? WHERE base_url = ? AND NOT EXISTS (SELECT 1 FROM"
        f" {table} o WHERE o.base_url = ? AND o.external_brand_id = {table}.external_brand_id"
        f" AND o.external_id = {table}.external_id)",
        (new, old, new),
    )
    db.execute(f"DELETE FROM {table} WHERE base_url = ?", (old,))


def select_keys(
    db: Connection, query: str, keys: list[Key], *params: str
) -> Iterator[tuple[Any, ...]]:
    """Run `query` for `keys` in batches; `{keys}` in it stands for a table `k` of them.

    A join on a VALUES list, not `(a, b) IN (VALUES ...)`: SQLite answers the join from
    the primary key, the IN form by scanning the whole table for every batch.
    """
    for start in range(0, len(keys), LOOKUP_BATCH):
        batch = keys[start : start + LOOKUP_BATCH]
        values = ",".join("(?,?)" for _ in batch)
        yield from db.execute(
            query.format(keys=f"(VALUES {values}) AS k"),
            [*(part for key in batch for part in key), *params],
        )


# Keys as an API that trims spaces and folds case may take them (SQLite's lower() and
# trim(): ASCII letters, spaces), for a kind whose keys differ only so are one record.
FOLDED_INDEX = (
    "CREATE INDEX IF NOT EXISTS {table}_folded"
    " ON {table} (base_url, lower(trim(external_brand_id)), lower(trim(external_id)))"
)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(text: str) -> str:
    """`text` as FOLDED_INDEX folds it (Python's own lower() folds more than ASCII)."""
    return text.strip(" ").translate(_ASCII_LOWER)


APPLICATION_ID = 0x41464C49  # "AFLI", in the SQLite header of every journal
_COLUMNS = ["base_url", "external_brand_id", "external_id", "affelios_id", "status", "recorded_at"]
_COLUMNS_1 = [*_COLUMNS, "first_recorded_at", "sent"]


def create_or_migrate(db: sqlite3.Connection) -> None:
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
            db.execute(SCHEMA.format(table=table))
            if kinds.get(table).folded_keys:
                db.execute(FOLDED_INDEX.format(table=table))
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")


class NotAJournal(Exception):
    """The SQLite file is another program's."""


def check(db: sqlite3.Connection, *, read_only: bool) -> None:
    """Refuse a file that is not a journal of this tool, or is damaged (SQLite's quick
    check reads every page: 0.3 s for a journal of a million entries, 114 MB)."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    if application_id not in (0, APPLICATION_ID) or (tables and FIRST_TABLE not in tables):
        held = f" (it holds the tables {', '.join(tables)})" if tables else ""
        raise NotAJournal(f"this SQLite file is not a journal of affelios-import{held}")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise NotAJournal(
            f"it was written by a newer affelios-import (journal schema {version}; this "
            f"version reads up to {SCHEMA_VERSION}): upgrade affelios-import"
        )
    if FIRST_TABLE in tables:
        columns = [row[1] for row in db.execute("PRAGMA table_info(customers)")]
        # Schema 0 may hold some of schema 1's columns: a migration cut short.
        partial = version < 1 and columns == _COLUMNS_1[: len(columns)]
        if columns != _COLUMNS_1 and not (partial and len(columns) >= len(_COLUMNS)):
            raise NotAJournal("its customers table is not a journal's")
    for table in set(TABLES) & set(tables) - {FIRST_TABLE}:  # tables of schema 1
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        if columns != _COLUMNS_1:
            raise NotAJournal(f"its {table} table is not a journal's")
    problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"damaged: {'; '.join(problems)}")


def own_files(path: Path) -> list[Path]:
    """The files beside a journal that are part of it: SQLite's write-ahead log and its
    index, and the note of the run holding the lock. No output may be one of them."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", ".lock")]


def backup(db: sqlite3.Connection, target: Path) -> None:
    """A consistent copy of the journal at `target` (a new file, its owner's only), with
    every entry committed, those still in the write-ahead log too."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.closing(sqlite3.connect(target)) as copy:
        db.backup(copy)
        copy.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def release(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)


class Storage(Protocol):
    """What the ledger asks of its storage, beyond the connection's SQL: `File` for
    SQLite, `journal.postgres.Database` for PostgreSQL."""

    db: Any
    path: Any
    errors: ClassVar[tuple[type[Exception], ...]]
    now: ClassVar[str]  # SQL: the time, as an entry's recorded_at says it

    def has_table(self, table: str) -> bool: ...

    def schema_version(self) -> int: ...

    def folded(self, column: str) -> str: ...

    def checkpoint(self) -> None: ...

    def snapshot(self) -> None: ...

    def close(self) -> None: ...


# When an entry was written, in UTC to the millisecond ("2026-11-25T14:30:12.345Z"),
# as SQLite states it: formatted in C at commit, not per row on the event loop.
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


@dataclass
class File:
    """An open journal: its connection, where it is, and the run lock held on it; and
    what its SQL dialect says differently (see `journal.postgres.Database`, the other)."""

    db: Any  # sqlite3.Connection
    path: Path | str
    lock: int | None = None
    errors: ClassVar[tuple[type[Exception], ...]] = (sqlite3.Error,)
    now: ClassVar[str] = NOW

    def has_table(self, table: str) -> bool:
        found = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()
        return found is not None

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @staticmethod
    def folded(column: str) -> str:
        """`column` folded as FOLDED_INDEX folds it."""
        return f"lower(trim({column}))"

    def checkpoint(self) -> None:
        """Into the journal's main file: a copy of that file alone (a backup, a move to
        a new host, after a SIGKILL) then knows every entry committed. (PASSIVE: it
        waits for nobody; SQLite folds the log in by itself every 1,000 pages anyway.)"""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def snapshot(self) -> None:
        """Nothing: a reader's statement sees one moment of the file (see `Journal`)."""

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            release(self.lock)  # the run lock goes with the file
            self.lock = None


def open_file(path: Path | str, *, read_only: bool, make: Callable[[File], T]) -> T:
    """`make(file)` of the journal file at `path` (see `Journal.open`); a file that is not
    a journal, is damaged or cannot be opened is a SetupError, and on any failure the
    file is closed and its lock let go."""
    lock = None
    memory = path == ":memory:" or (read_only and not Path(path).exists())
    if not memory:
        path = Path(path).resolve()  # SQLite's -wal and -shm files go beside the file
    if not memory and not read_only:
        lock = take_lock(Path(path))
    try:
        connection = _connect(path, memory=memory, read_only=read_only)
        try:
            return make(File(connection, path, lock))
        except BaseException:
            connection.close()
            raise
    except NotAJournal as exc:
        release(lock)
        raise SetupError(f"journal {path}: {exc}; give another --journal") from exc
    except sqlite3.DatabaseError as exc:
        release(lock)
        if is_disk_full(exc):
            raise SetupError(
                f"journal {path}: cannot be opened: the disk is full; free some space, or "
                "give another --journal"
            ) from exc
        raise SetupError(
            f"journal {path}: not a readable journal ({exc}); if it is damaged, "
            "recover it with `sqlite3 JOURNAL .recover` or restore a backup, "
            "or give another --journal"
        ) from exc
    except (OSError, sqlite3.Error) as exc:
        release(lock)
        raise SetupError(f"journal {path}: cannot be opened ({exc}); try --journal PATH") from exc
    except BaseException:
        release(lock)
        raise


def _connect(path: Path | str, *, memory: bool, read_only: bool) -> sqlite3.Connection:
    """A connection to a checked journal, of this schema unless read only."""
    if memory:
        connection = sqlite3.connect(":memory:", check_same_thread=False)
    elif read_only:
        uri = f"{Path(path).as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
    else:
        # Used by one thread at a time: the journal's while a loop runs, else the
        # caller's (see Journal).
        connection = sqlite3.connect(path, check_same_thread=False)
    try:
        check(connection, read_only=read_only)
        if not read_only:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=10000")
        if not read_only or memory:
            create_or_migrate(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def take_lock(path: Path) -> int:
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
            f"journal {path}: cannot be opened ({reason(exc)}); try --journal PATH"
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
