"""Decide, for each row of a chunk, whether it is sent: the columns, validate and plan stages.

A row is not sent when it is invalid, when it repeats the `externalBrandId` +
`externalId` of an earlier valid row of the same file, or when the journal says an
earlier run already created (or found) that customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import pandas as pd

from etl.columns import ColumnMap, to_contract
from etl.journal import Journal, Key
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


class Planner:
    def __init__(self, columns: ColumnMap, *, brand: str | None) -> None:
        self._columns = columns
        self._brand = brand
        self._first_row: dict[Key, int] = {}  # valid keys seen so far -> 1-based row

    def check(self, raw: pd.DataFrame) -> PlannedChunk:
        """Validate a chunk and build the bodies of its good rows (CPU only, no I/O)."""
        frame = to_contract(raw, self._columns, brand=self._brand)
        invalid = row_errors(frame, brand=self._brand)
        outcomes: list[Outcome | None] = [None] * len(frame)
        at = frame.index.get_indexer(invalid.index).tolist()
        for i, error, kinds in zip(at, invalid["error"], invalid["kinds"], strict=True):
            outcomes[i] = Outcome(status=Status.INVALID, error=error, kinds=kinds)
        chunk = PlannedChunk(raw=raw, outcomes=outcomes)
        records = cast(list[dict[str, str]], frame.to_dict("records"))
        for position, (label, record) in enumerate(zip(frame.index, records, strict=True)):
            if outcomes[position] is not None:
                continue
            key = (record["externalBrandId"], record["externalId"])
            first = self._first_row.setdefault(key, label + 1)
            if first != label + 1:
                outcomes[position] = Outcome(
                    status=Status.INVALID,
                    error=f"duplicate of row {first} (same externalBrandId and externalId);"
                    " not sent",
                    kinds=("duplicate of an earlier row",),
                )
                continue
            chunk.sends.append(Send(position, key, encode(build_payload(record))))
        return chunk

    @staticmethod
    def skip_journaled(chunk: PlannedChunk, journal: Journal) -> None:
        """Mark the rows whose customer the journal already holds as `skipped`.

        A row that an earlier run was sending when it died is sent again (the API's 409
        tells whether that run created it), and flagged so its result says so.
        """
        known = journal.lookup(send.key for send in chunk.sends)
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
