"""The run's ledger: one table per kind of record, each entry keyed by base URL,
`externalBrandId` and `externalId`, with the Affelios id, the status, when, and the body
sent. What an entry means for today's row is the kind's to say (`Kind.held`). The SQL is
SQLite's and PostgreSQL's alike; what differs is the storage's (`store.Storage`).

Records are committed in batches, always before the results lines that report them are
written. Crash safety: before rows are sent, their entries are committed as `sending`
(and folded into a SQLite journal's file, so that a copy of the file alone knows them);
each answer turns its row's entry into the outcome the journal keeps, or removes it when
nothing can have been taken. A run killed at any moment leaves `sending` entries for
exactly the rows whose outcome it never learned.

One run at a time on a SQLite journal: a run holds an exclusive lock on the file for as
long as it has the journal open, and a second run is refused before it sends anything
(two overlapping cron entries would otherwise both send the same rows). On PostgreSQL,
runs share the journal and claim rows (see `journal.postgres`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from affelios_import.errors import OutputFailed, reason
from affelios_import.journal import store
from affelios_import.journal.store import TABLES, select_keys
from affelios_import.keys import Entry, Key
from affelios_import.urls import identity

T = TypeVar("T")

_RECORD = """
INSERT INTO {table} VALUES (?,?,?,?,?,{now},{now},?)
ON CONFLICT (base_url, external_brand_id, external_id) DO UPDATE SET
    affelios_id = excluded.affelios_id, status = excluded.status,
    recorded_at = excluded.recorded_at, sent = excluded.sent
WHERE {table}.status = 'sending'
"""
_INTEND = (
    "INSERT INTO {table} VALUES (?,?,?,NULL,'sending',{now},{now},NULL) ON CONFLICT DO NOTHING"
)
_ACCEPT = (
    "UPDATE {table} SET sent = ?, recorded_at = {now} WHERE base_url = ?"
    " AND external_brand_id = ? AND external_id = ? AND status != 'sending'"
)
_FORGET = (
    "DELETE FROM {table} WHERE base_url = ? AND external_brand_id = ? AND external_id = ?"
    " AND status = 'sending'"
)
NOBODY: frozenset[Key] = frozenset()


class Journal:
    """The ledger.

    What its storage says differently is its `store.Storage`'s (SQLite's `store.File`,
    or PostgreSQL's: see `journal.postgres`). Its `a...` methods are for the run's event
    loop: they do their database work in the journal's own thread, one statement batch
    at a time and in order, so that a commit never holds up the requests in flight. The
    plain methods work in the caller's thread, for use when no loop is running.
    """

    RECORD, INTEND, FORGET = _RECORD, _INTEND, _FORGET

    def __init__(
        self, file: store.Storage, *, base_url: str, kind: str, read_only: bool = False
    ) -> None:
        assert kind in TABLES, kind
        connection = self.db = file.db
        self.path = file.path
        self._file = file
        self.table = table = kind
        self._record, self._intend, self._accept, self._forget = (
            statement.format(table=table, now=file.now)
            for statement in (self.RECORD, self.INTEND, _ACCEPT, self.FORGET)
        )
        self._base_url = identity(base_url)
        self._pending: list[tuple[str, tuple[str | None, ...]]] = []  # (statement, row)
        self._intents: list[Key] = []
        self._resent: set[Key] = set()
        self._intents_committed: asyncio.Task[frozenset[Key]] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._writing: asyncio.Lock | None = None  # one batch in the thread at a time
        # The spellings of this API's URL that the journal holds: journals written before
        # URLs were normalized hold them as given (`http://LOCALHOST:8080/`). A writable
        # journal is rewritten to the normalized ones once; a read-only one is read
        # under each of them.
        # A read-only journal written before this table was holds none of it.
        self.has_table = file.has_table(table)
        spellings = store.spellings(connection, table) if self.has_table else []
        if not read_only and any(identity(s) != s for s in spellings):
            store.normalize(connection, spellings, table)
            spellings = store.spellings(connection, table)
        held = [s for s in spellings if identity(s) == self._base_url]
        self._spellings = [self._base_url, *(s for s in held if s != self._base_url)]
        # The other APIs' URLs it holds records of this kind for: perhaps this API under
        # another spelling (see `lookup_elsewhere`).
        self.other_apis = sorted({identity(s) for s in spellings} - {self._base_url})
        # A read-only journal of schema 0 (a dry run's) is read as it is.
        self._schema = file.schema_version()
        # Whether it held nothing for this API when opened: then lookups can be skipped,
        # since what this run adds are keys it has already seen in the file.
        self.was_empty = not held

    @classmethod
    def open(
        cls, path: Path | str, *, base_url: str, kind: str, read_only: bool = False
    ) -> Journal:
        """Open (or create) the journal at `path`; `:memory:` keeps it for this run only.

        A read-only journal that does not exist yet is an empty one. A writable one is
        created readable by its owner only, and locked against other runs until `close`.
        A file that is damaged, or is not a journal of this tool, is refused (SetupError).
        """
        return store.open_file(
            path,
            read_only=read_only,
            make=lambda file: cls(file, base_url=base_url, kind=kind, read_only=read_only),
        )

    def lookup(self, keys: Iterable[Key], *, kind: str | None = None) -> dict[Key, Entry]:
        """The journal's entries among `keys` (of another kind of record: `kind`)."""
        found: dict[Key, Entry] = {}
        if kind is None and not self.has_table:
            return found
        wanted = list(keys)
        for spelling in self._spellings:
            for key, entry in self._entries(wanted, spelling, table=kind or self.table):
                if key not in found or entry.done:
                    found[key] = entry
        return found

    def _entries(
        self, keys: list[Key], base_url: str, *, table: str, folded: bool = False
    ) -> Iterator[tuple[Key, Entry]]:
        """The entries of `table` under `base_url` among `keys`, each with its own key."""
        for brand_id, external_id, status, affelios_id, first, sent in self._rows(
            keys, base_url, table=table, folded=folded
        ):
            yield (brand_id, external_id), Entry(status, affelios_id, first, sent)

    def _rows(
        self, keys: list[Key], base_url: str, *, table: str, folded: bool, more: str = ""
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of `table` under `base_url` among `keys` (key, status, id, first
        record, body sent, then the columns `more` names), found from an index (the
        primary key; `folded`: the index of keys folded as `store.fold` folds them, which
        `keys` already are)."""
        brand, ext = "c.external_brand_id", "c.external_id"
        if folded:
            brand, ext = self._file.folded(brand), self._file.folded(ext)
        return select_keys(
            self.db,
            "SELECT c.external_brand_id, c.external_id, c.status, c.affelios_id,"
            f" {self.first_and_sent('c.')}{more} FROM {{keys}} JOIN {table} c"
            f" ON c.base_url = ? AND {brand} = k.column1 AND {ext} = k.column2",
            keys,
            base_url,
        )

    def lookup_elsewhere(
        self, keys: Iterable[Key], *, ignoring: Collection[str] = ()
    ) -> dict[Key, tuple[str, Entry]]:
        """The entries among `keys` it holds under other APIs' URLs (but those `ignoring`),
        each with that URL: found from the primary key, one URL at a time."""
        wanted = list(keys)
        found: dict[Key, tuple[str, Entry]] = {}
        for url in self.other_apis:
            if url in ignoring:
                continue
            for key, entry in self._entries(wanted, url, table=self.table):
                found.setdefault(key, (url, entry))
        return found

    async def alookup_elsewhere(
        self, keys: Iterable[Key], *, ignoring: Collection[str] = ()
    ) -> dict[Key, tuple[str, Entry]]:
        wanted = list(keys)
        async with self._turn():
            return await self._in_thread(lambda: self.lookup_elsewhere(wanted, ignoring=ignoring))

    def lookup_folded(self, keys: Iterable[Key]) -> dict[Key, tuple[Key, Entry]]:
        """Of `keys`, those it holds (for this API) under a key that differs only by case
        or surrounding spaces, each with that key and its entry."""
        today = {(store.fold(brand), store.fold(ext)): (brand, ext) for brand, ext in keys}
        found: dict[Key, tuple[Key, Entry]] = {}
        if not self.has_table or not today:
            return found
        for spelling in self._spellings:
            for held, entry in self._entries(list(today), spelling, table=self.table, folded=True):
                key = today[store.fold(held[0]), store.fold(held[1])]
                if key != held:
                    found.setdefault(key, (held, entry))
        return found

    async def alookup_folded(self, keys: Iterable[Key]) -> dict[Key, tuple[Key, Entry]]:
        wanted = list(keys)
        async with self._turn():
            return await self._in_thread(lambda: self.lookup_folded(wanted))

    def holds(self, *, brand: str | None) -> bool:
        """Whether it holds any record of its kind sent to this API (of `brand`, if one),
        under any spelling of the API's URL it holds."""
        if not self.has_table:
            return False
        where = " AND external_brand_id = ?" if brand is not None else ""
        for spelling in self._spellings:
            found = self.db.execute(
                f"SELECT 1 FROM {self.table} WHERE base_url = ?{where} LIMIT 1",
                (spelling, brand) if brand is not None else (spelling,),
            ).fetchone()
            if found is not None:
                return True
        return False

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What its storage raises."""
        return self._file.errors

    def has(self, table: str) -> bool:
        """Whether the journal has a table for records of kind `table`."""
        return self._file.has_table(table)

    def snapshot(self) -> None:
        """In a transaction: read one moment of the journal until its end, whatever
        other runs write meanwhile (where the storage offers it; SQLite's reader sees
        one moment per statement, and `affelios-journal copy` holds its run lock)."""
        self._file.snapshot()

    def first_and_sent(self, table: str) -> str:
        """The columns of the first record's time and what was sent; a read-only journal
        of schema 0 (a dry run's, or affelios-journal's) has neither."""
        if self._schema >= 1:
            return f"{table}first_recorded_at, {table}sent"
        return f"{table}recorded_at, NULL"

    def _turn(self) -> asyncio.Lock:
        if self._writing is None:
            self._writing = asyncio.Lock()
        return self._writing

    async def _in_thread(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, work)
        except self._file.errors as exc:
            raise OutputFailed(
                f"journal {self.path}: cannot be written ({reason(exc)}); nothing more was sent"
            ) from exc

    async def alookup(self, keys: Iterable[Key], *, kind: str | None = None) -> dict[Key, Entry]:
        wanted = list(keys)
        async with self._turn():
            return await self._in_thread(lambda: self.lookup(wanted, kind=kind))

    async def intend(self, keys: Iterable[Key], *, resent: Collection[Key] = ()) -> Collection[Key]:
        """Claim `keys`, about to be sent: commit their intent before any of them is. Of
        them, those another run holds (see `journal.postgres`; never, on a file that one
        run at a time holds): not this run's to send.

        Should the process die before their answers are recorded, the next run finds
        their entries still `sending` and says so in its results. `resent` are keys whose
        entry an earlier run left `sending`, sent again. Callers that intend at the same
        moment share one commit.
        """
        mine = list(keys)
        self._intents.extend(mine)
        self._resent.update(resent)
        if self._intents_committed is None:
            commit = asyncio.get_running_loop().create_task(self._commit_intents())
            # Its failure reaches the workers that await it; should they all have been
            # cancelled meanwhile, it is still taken here (not left for asyncio to print).
            commit.add_done_callback(_retrieve)
            self._intents_committed = commit
        taken = await asyncio.shield(self._intents_committed)
        return NOBODY if not taken else frozenset(key for key in mine if key in taken)

    async def _commit_intents(self) -> frozenset[Key]:
        await asyncio.sleep(0)  # let every worker about to send add its intent first
        async with self._turn():
            # Taken once the batch before is committed: the workers that intended
            # meanwhile share this commit. (Lists are only swapped on the loop.)
            keys, self._intents, self._intents_committed = self._intents, [], None
            resent, self._resent = self._resent, set()
            pending, self._pending = self._pending, []

            def commit() -> frozenset[Key]:
                with self.db:
                    taken = self._claim(keys, resent)
                    # Outcomes recorded since the last commit ride along, so a killed
                    # run loses at most the answers of the last moment, not a chunk's.
                    self._execute(pending)
                # Into the journal's main file before any of them is sent.
                self._file.checkpoint()
                return taken

            return await self._in_thread(commit)

    def _claim(self, keys: list[Key], resent: set[Key]) -> frozenset[Key]:
        """Write the intents of `keys`; those another run holds (none: the file is this
        run's alone)."""
        url = self._base_url
        self.db.executemany(self._intend, [(url, brand, ext) for brand, ext in keys])
        return NOBODY

    def _execute(self, pending: list[tuple[str, tuple[str | None, ...]]]) -> None:
        for statement, row in pending:
            self.db.execute(statement, row)

    def record(
        self, key: Key, *, affelios_id: str | None, status: str, sent: bytes | None = None
    ) -> None:
        """Remember a record the API took (or already had), and the body sent for it;
        kept until `flush`."""
        row = (
            self._base_url, key[0], key[1], affelios_id, status,
            None if sent is None else sent.decode(),
        )  # fmt: skip
        self._pending.append((self._record, row))

    def accept(self, key: Key, *, sent: bytes) -> None:
        """Take `sent` as what the API holds for a record it has (changed in Affelios
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
        with self.db:
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
            with contextlib.suppress(*self._file.errors):
                self.flush()
        finally:
            self._file.close()


def _retrieve(task: asyncio.Task[frozenset[Key]]) -> None:
    if not task.cancelled():
        task.exception()
