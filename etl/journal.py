"""The journal: a SQLite ledger of every customer this tool created or found existing.

Keyed by base URL, `externalBrandId` and `externalId`, so that a rerun (or the nightly
run on tomorrow's export) never sends a known customer again. Records are committed in
batches, always before the results lines that report them are written.

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
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from etl.errors import SetupError

Key = tuple[str, str]  # (externalBrandId, externalId)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    base_url          TEXT NOT NULL,
    external_brand_id TEXT NOT NULL,
    external_id       TEXT NOT NULL,
    affelios_id       TEXT,
    status            TEXT NOT NULL,
    recorded_at       TEXT NOT NULL,
    PRIMARY KEY (base_url, external_brand_id, external_id)
) WITHOUT ROWID
"""
_LOOKUP_BATCH = 500


class Entry(NamedTuple):
    status: str  # "created", "exists", or "sending" (sent by a run that then died)
    affelios_id: str | None

    @property
    def done(self) -> bool:
        return self.status != SENDING


SENDING = "sending"

# When an entry was written, in UTC to the millisecond ("2026-11-25T14:30:12.345Z"),
# as SQLite states it: formatted in C at commit, not per row on the event loop.
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
_RECORD = f"""
INSERT INTO customers VALUES (?,?,?,?,?,{_NOW})
ON CONFLICT DO UPDATE SET
    affelios_id = excluded.affelios_id, status = excluded.status,
    recorded_at = excluded.recorded_at
WHERE customers.status = 'sending'
"""
_INTEND = f"INSERT INTO customers VALUES (?,?,?,NULL,'sending',{_NOW}) ON CONFLICT DO NOTHING"
_FORGET = (
    "DELETE FROM customers WHERE base_url = ? AND external_brand_id = ? AND external_id = ?"
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
        self, connection: sqlite3.Connection, *, base_url: str, lock: int | None = None
    ) -> None:
        self._db = connection
        self._base_url = base_url
        self._lock = lock
        self._pending: list[tuple[str, tuple[str | None, ...]]] = []  # (statement, row)
        self._intents: list[tuple[str, str, str]] = []
        self._intents_committed: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._writing: asyncio.Lock | None = None  # one batch in the thread at a time
        # Whether it held nothing for this API when opened: then lookups can be skipped,
        # since what this run adds are keys it has already seen in the file.
        self.was_empty = (
            connection.execute(
                "SELECT 1 FROM customers WHERE base_url = ? LIMIT 1", (base_url,)
            ).fetchone()
            is None
        )

    @classmethod
    def open(cls, path: Path | str, *, base_url: str, read_only: bool = False) -> Journal:
        """Open (or create) the journal at `path`; `:memory:` keeps it for this run only.

        A read-only journal that does not exist yet is an empty one. A writable one is
        created readable by its owner only, and locked against other runs until `close`.
        """
        lock = None
        if path != ":memory:" and not read_only:
            lock = _lock(Path(path))
        try:
            if path == ":memory:" or (read_only and not Path(path).exists()):
                connection = sqlite3.connect(":memory:", check_same_thread=False)
            elif read_only:
                uri = f"{Path(path).resolve().as_uri()}?mode=ro"
                connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                if not Path(path).exists():
                    # Customer ids are nobody else's business: owner-only from the start.
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
                # Used by one thread at a time: the journal's while a loop runs, else the
                # caller's (see the class).
                connection = sqlite3.connect(path, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=10000")
            if not read_only or path == ":memory:" or not Path(path).exists():
                connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            if lock is not None:
                os.close(lock)
            raise SetupError(
                f"journal {path}: cannot be opened ({exc}); try --journal PATH"
            ) from exc
        return cls(connection, base_url=base_url, lock=lock)

    def lookup(self, keys: Iterable[Key]) -> dict[Key, Entry]:
        """The journal's entries among `keys`."""
        rows = select_keys(
            self._db,
            "SELECT c.external_brand_id, c.external_id, c.status, c.affelios_id"
            " FROM {keys} JOIN customers c ON c.base_url = ?"
            " AND c.external_brand_id = k.column1 AND c.external_id = k.column2",
            list(keys),
            self._base_url,
        )
        return {
            (brand, ext): Entry(status, affelios_id) for brand, ext, status, affelios_id in rows
        }

    def _turn(self) -> asyncio.Lock:
        if self._writing is None:
            self._writing = asyncio.Lock()
        return self._writing

    async def _in_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def alookup(self, keys: Iterable[Key]) -> dict[Key, Entry]:
        wanted = list(keys)
        async with self._turn():
            return await self._in_thread(lambda: self.lookup(wanted))

    async def intend(self, key: Key) -> None:
        """Commit that `key` is about to be sent, before it is.

        Should the process die with the request in flight, the next run finds the entry
        still `sending` and says so in its results. Workers that intend at the same
        moment share one commit.
        """
        self._intents.append((self._base_url, key[0], key[1]))
        if self._intents_committed is None:
            self._intents_committed = asyncio.get_running_loop().create_task(self._commit_intents())
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
                    self._db.executemany(_INTEND, rows)
                    # Outcomes recorded since the last commit ride along, so a killed
                    # run loses at most the answers of the last moment, not a chunk's.
                    self._execute(pending)

            await self._in_thread(commit)

    def _execute(self, pending: list[tuple[str, tuple[str | None, ...]]]) -> None:
        for statement, row in pending:
            self._db.execute(statement, row)

    def record(self, key: Key, *, affelios_id: str | None, status: str) -> None:
        """Remember a customer the API created or already had; kept until `flush`."""
        row = (self._base_url, key[0], key[1], affelios_id, status)
        self._pending.append((_RECORD, row))

    def forget(self, key: Key) -> None:
        """Drop the intent of a row now known not to have created anything."""
        self._pending.append((_FORGET, (self._base_url, key[0], key[1])))

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
        try:
            self._thread.shutdown()
            self.flush()
            self._db.close()
        finally:
            if self._lock is not None:
                os.close(self._lock)  # releases the lock
                self._lock = None


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


def _lock(path: Path) -> int:
    """Take the journal's run lock, or say which run holds it."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SetupError(
            f"journal {path}: cannot be opened ({exc.strerror}); try --journal PATH"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise SetupError(
            f"journal {path} is in use by another affelios-import run (pid {holder}); "
            "nothing was sent: run again when it has finished"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
