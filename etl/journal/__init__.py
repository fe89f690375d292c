"""The journal: the ledger of every record this tool sent, across runs.

The run sees one interface, `Ledger`, whatever keeps it: `open_ledger` chooses the
storage by the journal's location (a SQLite file, `:memory:`, or a `postgresql://` URL);
the run does not change.

- `journal.ledger`: the run's ledger (`Journal`), on SQLite;
- `journal.store`: the SQLite file itself (schema, migrations, checks, the run lock);
- `journal.postgres`: the ledger on PostgreSQL, shared by runs on several machines
  (`SharedJournal`: atomic claims, live runs' rows left to them);
- `journal.queries`: what `affelios-journal` asks of a whole journal.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Protocol

from affelios_import.journal.ledger import Journal
from affelios_import.keys import Entry, Key
from affelios_import.urls import is_database

__all__ = ["Journal", "Ledger", "open_journal", "open_ledger"]


class Ledger(Protocol):
    """What a run asks of its journal (see `journal.ledger.Journal` for each)."""

    path: Path | str
    was_empty: bool  # held nothing for this API and kind when opened
    other_apis: list[str]  # the other APIs' URLs it holds records of this kind for

    def holds(self, *, brand: str | None) -> bool:
        """Whether it holds any record of its kind sent to this API (of `brand`, if one)."""
        ...

    async def alookup(self, keys: Iterable[Key], *, kind: str | None = None) -> dict[Key, Entry]:
        """The entries among `keys` (of this kind of record, or of `kind`)."""
        ...

    async def alookup_elsewhere(
        self, keys: Iterable[Key], *, ignoring: Collection[str] = ()
    ) -> dict[Key, tuple[str, Entry]]:
        """The entries among `keys` held under other APIs' URLs, with that URL."""
        ...

    async def alookup_folded(self, keys: Iterable[Key]) -> dict[Key, tuple[Key, Entry]]:
        """The entries held under keys that differ from `keys` by case or spaces only."""
        ...

    async def intend(self, keys: Iterable[Key], *, resent: Collection[Key] = ()) -> Collection[Key]:
        """Claim `keys`, about to be sent (`resent`: those an earlier run left `sending`):
        commit their intent before any of them is. Those another live run holds."""
        ...

    def record(
        self, key: Key, *, affelios_id: str | None, status: str, sent: bytes | None = None
    ) -> None: ...

    def accept(self, key: Key, *, sent: bytes) -> None: ...

    def forget(self, key: Key) -> None: ...

    async def aflush(self) -> None:
        """Commit what `record`, `accept` and `forget` remembered, in order."""
        ...

    def close(self) -> None: ...


def open_ledger(path: Path | str, *, base_url: str, kind: str, read_only: bool = False) -> Ledger:
    """The ledger at `path` for records of `kind` sent to `base_url`; raises SetupError."""
    return open_journal(path, base_url=base_url, kind=kind, read_only=read_only)


def open_journal(path: Path | str, *, base_url: str, kind: str, read_only: bool = False) -> Journal:
    """The journal at `path` (a SQLite file, `:memory:`, or a PostgreSQL URL), as
    `affelios-journal` reads and changes it; raises SetupError."""
    if is_database(path):
        # Imported here: psycopg takes 0.13 s to import, for runs that never use it.
        from affelios_import.journal.postgres import SharedJournal

        return SharedJournal.open(path, base_url=base_url, kind=kind, read_only=read_only)
    return Journal.open(path, base_url=base_url, kind=kind, read_only=read_only)
