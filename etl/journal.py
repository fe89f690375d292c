"""The journal: a SQLite ledger of every customer this tool created or found existing.

Keyed by base URL, `externalBrandId` and `externalId`, so that a rerun (or the nightly
run on tomorrow's export) never sends a known customer again. Records are committed in
batches, always before the results lines that report them are written.

One run at a time: a run holds an exclusive lock on `<journal>.lock` for as long as it
has the journal open, and a second run on the same journal is refused before it sends
anything (two overlapping cron entries would otherwise both send the same customers).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from etl.errors import SetupError

Key = tuple[str, str]  # (externalBrandId, externalId)

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


class Journal:
    def __init__(
        self, connection: sqlite3.Connection, *, base_url: str, lock: int | None = None
    ) -> None:
        self._db = connection
        self._base_url = base_url
        self._lock = lock
        self._pending: list[tuple[str, str, str, str | None, str, str]] = []

    @classmethod
    def open(cls, path: Path | str, *, base_url: str, read_only: bool = False) -> Journal:
        """Open (or create) the journal at `path`; `:memory:` keeps it for this run only.

        A read-only journal that does not exist yet is an empty one. A writable one is
        locked against other runs until `close`.
        """
        lock = None
        if path != ":memory:" and not read_only:
            lock = _lock(Path(path))
        try:
            if path == ":memory:" or (read_only and not Path(path).exists()):
                connection = sqlite3.connect(":memory:")
            elif read_only:
                connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
            else:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(path)
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

    def lookup(self, keys: Iterable[Key]) -> dict[Key, str | None]:
        """The journaled customers among `keys`, with their Affelios ids (None if unknown)."""
        found: dict[Key, str | None] = {}
        batch: list[Key] = []
        for key in keys:
            batch.append(key)
            if len(batch) == _LOOKUP_BATCH:
                found.update(self._lookup_batch(batch))
                batch = []
        if batch:
            found.update(self._lookup_batch(batch))
        return found

    def _lookup_batch(self, batch: list[Key]) -> dict[Key, str | None]:
        values = ",".join("(?,?)" for _ in batch)
        rows = self._db.execute(
            "SELECT external_brand_id, external_id, affelios_id FROM customers"
            f" WHERE base_url = ? AND (external_brand_id, external_id) IN (VALUES {values})",
            [self._base_url, *(part for key in batch for part in key)],
        )
        return {(brand, external_id): affelios_id for brand, external_id, affelios_id in rows}

    def record(self, key: Key, *, affelios_id: str | None, status: str) -> None:
        """Remember a customer the API created or already had; kept until `flush`."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._pending.append((self._base_url, key[0], key[1], affelios_id, status, now))

    def flush(self) -> None:
        """Commit what `record` remembered, in one transaction."""
        if not self._pending:
            return
        with self._db:
            self._db.executemany(
                "INSERT INTO customers VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", self._pending
            )
        self._pending = []

    def close(self) -> None:
        try:
            self.flush()
            self._db.close()
        finally:
            if self._lock is not None:
                os.close(self._lock)  # releases the lock
                self._lock = None


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
