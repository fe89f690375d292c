"""Decide, for each row of a chunk, whether it is sent: the columns, validate and plan stages.

A row is not sent when it is invalid, when it repeats the `externalBrandId` +
`externalId` of an earlier valid row of the same file, or when the journal says an
earlier run already created (or found) that customer.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pandas as pd

from etl.columns import ColumnMap, to_contract
from etl.journal import Entry, Key, select_keys
from etl.outcome import Outcome, Status
from etl.payload import build_payload, encode
from etl.validate import row_errors


@dataclass
class Send:
    position: int  # within the chunk
    key: Key
    body: bytes
    resent: bool = False  # an earlier run died with this row in flight


@dataclass
class PlannedChunk:
    raw: pd.DataFrame  # the rows as read, every original column
    outcomes: list[Outcome | None]  # None: to be sent
    sends: list[Send] = field(default_factory=list)


class SeenKeys:
    """The keys of the valid rows read so far, with the row each was first seen in.

    Kept in a temporary SQLite file rather than in memory, so that memory does not grow
    with the file (a million keys would take hundreds of MB as Python objects).
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="affelios-import-")
        path = Path(self._folder.name) / "seen.sqlite3"
        # Used by one planning thread at a time (asyncio.to_thread, one chunk after another).
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE seen (brand TEXT, id TEXT, row INTEGER, PRIMARY KEY (brand, id))"
            " WITHOUT ROWID"
        )

    def first_rows(self, keys: list[Key], rows: list[int]) -> list[int | None]:
        """For each key, the row it was first seen in (None: it is new here); then
        remember the new ones. `rows` are the keys' own 1-based row numbers."""
        first: dict[Key, int] = {}
        for key, row in zip(keys, rows, strict=True):
            first.setdefault(key, row)
        found = select_keys(
            self._db,
            "SELECT s.brand, s.id, s.row FROM {keys} JOIN seen s"
            " ON s.brand = k.column1 AND s.id = k.column2",
            list(first),
        )
        for brand, external_id, row in found:
            first[(brand, external_id)] = row
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO seen VALUES (?,?,?)",
                ((key[0], key[1], row) for key, row in first.items()),
            )
        return [
            None if first[key] == row else first[key] for key, row in zip(keys, rows, strict=True)
        ]

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()


class Planner:
    def __init__(
        self,
        columns: ColumnMap,
        *,
        brand: str | None,
        ragged: dict[int, int] | None = None,
        width: int = 0,
    ) -> None:
        self._columns = columns
        self._brand = brand
        self._ragged = ragged or {}  # data row index -> number of fields, when not `width`
        self._width = width
        self._seen = SeenKeys()

    def close(self) -> None:
        self._seen.close()

    def check(self, raw: pd.DataFrame) -> PlannedChunk:
        """Validate a chunk and build the bodies of its good rows (CPU only, no I/O)."""
        frame = to_contract(raw, self._columns, brand=self._brand)
        invalid = row_errors(frame, brand=self._brand)
        outcomes: list[Outcome | None] = [None] * len(frame)
        at = frame.index.get_indexer(invalid.index).tolist()
        for i, error in zip(at, invalid["error"], strict=True):
            outcomes[i] = Outcome(status=Status.INVALID, error=error)
        if self._ragged:
            at = frame.index.get_indexer(pd.Index(list(self._ragged))).tolist()
            for i, fields in zip(at, self._ragged.values(), strict=True):
                if i >= 0:
                    outcomes[i] = Outcome(
                        status=Status.INVALID,
                        error=f"the row has {fields} fields but the header has {self._width}; "
                        "check its delimiters and quotes",
                    )
        chunk = PlannedChunk(raw=raw, outcomes=outcomes)
        records = cast(list[dict[str, str]], frame.to_dict("records"))
        valid = [i for i, outcome in enumerate(outcomes) if outcome is None]
        keys = [(records[i]["externalBrandId"], records[i]["externalId"]) for i in valid]
        firsts = self._seen.first_rows(keys, [int(frame.index[i]) + 1 for i in valid])
        for position, key, first in zip(valid, keys, firsts, strict=True):
            record = records[position]
            if first is not None:
                outcomes[position] = Outcome(
                    status=Status.INVALID,
                    error=f"duplicate of row {first} (same externalBrandId and externalId);"
                    " not sent",
                )
                continue
            chunk.sends.append(Send(position, key, encode(build_payload(record))))
        return chunk

    @staticmethod
    def skip_journaled(chunk: PlannedChunk, known: dict[Key, Entry]) -> None:
        """Mark the rows whose customer the journal already holds (`known`, the journal's
        entries among the chunk's keys) as `skipped`.

        A row that an earlier run was sending when it died is sent again (the API's 409
        tells whether that run created it), and flagged so its result says so.
        """
        if not known:
            return
        still: list[Send] = []
        for send in chunk.sends:
            entry = known.get(send.key)
            if entry is None:
                still.append(send)
            elif not entry.done:
                send.resent = True
                still.append(send)
            else:
                chunk.outcomes[send.position] = Outcome(
                    status=Status.SKIPPED,
                    affelios_id=entry.affelios_id or "",
                    error="" if entry.affelios_id else "already existed; its id is not known",
                )
        chunk.sends = still
