"""The journal: the ledger of every record this tool sent, across runs.

The run sees one interface, `Ledger`, whatever keeps it: `open` chooses the storage by
the journal's path (a SQLite file, or `:memory:`). A second storage (a shared database)
is one more implementation of `Ledger` and one more case in `open`; the run does not
change.

- `journal.ledger`: the run's ledger on SQLite (`Journal`);
- `journal.store`: the SQLite file itself (schema, migrations, checks, the run lock);
- `journal.queries`: what `affelios-journal` asks of a whole journal.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Protocol

from affelios_import.journal.ledger import Journal
from affelios_import.keys import Entry, Key

__all__ = ["Journal", "Ledger", "open_ledger"]


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

    async def intend(self, keys: Iterable[Key]) -> None:
        """Commit that `keys` are about to be sent, before any of them is."""
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
    return Journal.open(path, base_url=base_url, kind=kind, read_only=read_only)
