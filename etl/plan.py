"""Decide, for each row of a chunk, whether it is sent: the columns, validate and plan stages.

The journal answers first for every row whose key (`externalBrandId` + `externalId`)
can be read: a customer an earlier run created (or found) is `skipped` with its id,
whatever else today's row holds (a problem in it is noted, not counted as a row to fix),
or `changed` when today's row would send other values than were sent then (named field
by field; the API has no documented update, so nothing is sent). Of the other rows, one
is not sent when it is invalid, or repeats the key of an earlier valid row of the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from etl import kinds
from etl.columns import ColumnMap, to_contract
from etl.keys import Entry, Key
from etl.outcome import UNCONFIRMED_ADVICE, Outcome, Status
from etl.payload import Body, build_payload, encode
from etl.records import CUSTOMERS, Kind
from etl.validate import row_errors
from schemas.customer import CONTRACT_FIELDS

Column = npt.NDArray[np.object_]  # one value per row of a chunk


@dataclass
class Send:
    position: int  # within the chunk
    key: Key
    body: bytes
    resent: bool = False  # an earlier run died with this row in flight
    note: str = ""  # said in the row's results line whatever its outcome


@dataclass
class PlannedChunk:
    """A chunk's rows and, column by column, what became of each (filled in as it goes).

    Rows not sent get their outcome here at once, a whole column at a time; rows sent
    get theirs one by one, with `settle`.
    """

    raw: pd.DataFrame  # the rows as read, every original column
    status: Column
    error: Column
    error_kind: Column
    affelios_id: Column
    http_status: Column
    attempts: npt.NDArray[np.int64]
    frame: pd.DataFrame | None = None  # contract fields, until the bodies are built
    # The valid rows that are not repeats: sent unless the journal holds them.
    candidates: npt.NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))
    # The rows whose key can be read (candidates among them), and their keys: what the
    # journal is asked about.
    readable: npt.NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))
    keys: list[Key] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    # The changed rows' keys and what they would send today (see --accept-changes).
    changes: list[tuple[Key, bytes]] = field(default_factory=list)
    # Transactions: the (brand, externalCustomerId) of the rows to send, for the journal
    # to say which customers it knows; the amount columns' text, to sum.
    customer_keys: list[Key] = field(default_factory=list)
    amounts: dict[str, Column] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: pd.DataFrame, frame: pd.DataFrame) -> PlannedChunk:
        n = len(raw)
        return cls(
            raw=raw,
            status=np.full(n, Status.NOT_SENT.value, dtype=object),
            error=np.full(n, "", dtype=object),
            error_kind=np.full(n, "", dtype=object),
            affelios_id=np.full(n, "", dtype=object),
            http_status=np.full(n, "", dtype=object),
            attempts=np.zeros(n, dtype=np.int64),
            frame=frame,
        )

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        """The 1-based data row numbers."""
        return self.raw.index.to_numpy(dtype=np.int64) + 1

    def settle(self, position: int, outcome: Outcome) -> None:
        self.status[position] = outcome.status.value
        self.error[position] = outcome.error
        self.error_kind[position] = outcome.kind
        self.affelios_id[position] = outcome.affelios_id
        self.http_status[position] = "" if outcome.http_status is None else outcome.http_status
        self.attempts[position] = outcome.attempts


class SeenKeys:
    """The keys of the valid rows read so far, with the row each was first seen in.

    Held as sorted 64-bit hashes of the keys (12 bytes a key: 12 MB for a million rows)
    rather than as text. Two different keys share a hash with a chance of about one in
    3 * 10^7 for a file of ten million rows; such a row would be reported `invalid` as a
    duplicate (in the errors file, never silently dropped).
    """

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.int64)
        self._rows = np.empty(0, dtype=np.uint32)

    def first_rows(
        self, hashes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """For each key (by hash), the row it was first seen in, or 0 where this is that
        row; then remember the new ones. `rows`: the keys' own rows, ascending."""
        unique, first_at, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        first = rows[first_at]  # within this chunk
        at = np.searchsorted(self._hashes, unique)
        known = at < len(self._hashes)
        known[known] = self._hashes[at[known]] == unique[known]
        earlier = first.copy()
        earlier[known] = self._rows[at[known]]
        self._hashes = np.insert(self._hashes, at[~known], unique[~known])
        self._rows = np.insert(self._rows, at[~known], first[~known].astype(np.uint32))
        found = earlier[inverse]
        return np.where(found == rows, 0, found)


def _nul_cells(raw: pd.DataFrame) -> list[tuple[int, str]]:
    """(position, column) of the first cell holding a NUL byte in each row that has one."""
    found: dict[int, str] = {}
    for name in raw.columns:
        column = raw[name]
        hits = column.str.contains("\x00", regex=False).to_numpy(dtype=bool, na_value=False)
        for i in np.flatnonzero(hits).tolist():
            found.setdefault(i, str(name))
    return sorted(found.items())


def _texts(frame: pd.DataFrame, name: str) -> Column:
    return frame[name].to_numpy(dtype=object)


class Planner:
    def __init__(
        self,
        columns: ColumnMap,
        *,
        brand: str | None,
        broken: dict[int, tuple[str, str]] | None = None,
        journal_empty: bool = False,
        kind: Kind = CUSTOMERS,
    ) -> None:
        self.kind = kind
        self._columns = columns
        self._brand = brand
        # An empty journal is not asked (see Journal.was_empty): no keys to gather.
        self._journal_empty = journal_empty
        self._broken = broken or {}  # data row index -> (kind, why the row is broken)
        self._seen = SeenKeys()

    def check(self, raw: pd.DataFrame) -> PlannedChunk:
        """Validate a chunk and find the rows to send (CPU only, no I/O), column-wise."""
        frame = to_contract(raw, self._columns, brand=self._brand)
        chunk = PlannedChunk.of(raw, frame)
        invalid = row_errors(frame, brand=self._brand, schema=self.kind.schema)
        at = frame.index.get_indexer(invalid.index)
        chunk.status[at] = Status.INVALID.value
        chunk.error[at] = invalid["error"].to_numpy(dtype=object)
        chunk.error_kind[at] = invalid["error_kind"].to_numpy(dtype=object)
        nul_cells = _nul_cells(raw)
        for i, column in nul_cells:
            chunk.status[i] = Status.INVALID.value
            chunk.error[i] = f"{column} holds a NUL byte (\\x00), which no API field may; not sent"
            chunk.error_kind[i] = kinds.item("nul_byte", column)
        if self._broken:
            at = frame.index.get_indexer(pd.Index(list(self._broken)))
            for i, (kind, why) in zip(at.tolist(), self._broken.values(), strict=True):
                if i >= 0:
                    chunk.status[i] = Status.INVALID.value
                    chunk.error[i] = why
                    chunk.error_kind[i] = kinds.item(kind)
        brands, ids = _texts(frame, "externalBrandId"), _texts(frame, "externalId")
        valid = np.flatnonzero(chunk.status != Status.INVALID.value)
        hashes = np.fromiter(
            map(hash, zip(brands[valid], ids[valid], strict=True)), np.int64, len(valid)
        )
        first = self._seen.first_rows(hashes, chunk.rows[valid])
        repeats = first > 0
        chunk.status[valid[repeats]] = Status.INVALID.value
        chunk.error[valid[repeats]] = [
            f"duplicate of row {row} (same externalBrandId and externalId); not sent"
            for row in first[repeats].tolist()
        ]
        chunk.error_kind[valid[repeats]] = kinds.item("duplicate_row")
        chunk.candidates = valid[~repeats]
        if not self._journal_empty:
            chunk.readable = np.flatnonzero(self._readable(frame, [i for i, _ in nul_cells]))
            at = chunk.readable
            chunk.keys = list(zip(brands[at].tolist(), ids[at].tolist(), strict=True))
        if self.kind.at_most_once:
            at = chunk.candidates
            customers = _texts(frame, "externalCustomerId")[at].tolist()
            chunk.customer_keys = list(zip(brands[at].tolist(), customers, strict=True))
        return chunk

    def _readable(self, frame: pd.DataFrame, nul_rows: list[int]) -> npt.NDArray[np.bool_]:
        """Whether each row's key can be read: both parts present (the brand the one
        given with --brand, if any), in a row read whole, with no NUL byte."""
        ok = np.ones(len(frame), dtype=bool)
        for name in ("externalBrandId", "externalId"):
            ok &= (frame[name].str.strip() != "").to_numpy(dtype=bool, na_value=False)
        if self._brand is not None:
            ok &= (frame["externalBrandId"] == self._brand).to_numpy(dtype=bool, na_value=False)
        ok[nul_rows] = False
        if self._broken:
            at = frame.index.get_indexer(pd.Index(list(self._broken)))
            ok[at[at >= 0]] = False
        return ok

    def finish(
        self,
        chunk: PlannedChunk,
        known: dict[Key, Entry],
        *,
        dry_run: bool,
        customers: set[Key] | None = None,
    ) -> None:
        """Settle the rows whose record the journal holds (`known`: its entries among
        `chunk.keys`); the other candidates are `valid` in a dry run, else each gets the
        body of its request.

        A customer held is `skipped` or `changed`; one that an earlier run was sending
        when it died is sent again (the API's 409 tells whether that run created it), and
        flagged so its result says so. A transaction held is never sent again: `skipped`
        when the API took it, `unconfirmed` when that was never learned. A transaction
        whose customer (`customers`: those of `chunk.customer_keys` the journal holds)
        this journal does not know gets a note.
        """
        if self.kind.at_most_once:
            self._finish_at_most_once(chunk, known, dry_run=dry_run, customers=customers or set())
            return
        keep = np.zeros(len(chunk.raw), dtype=bool)
        keep[chunk.candidates] = True
        resent = np.zeros(len(chunk.raw), dtype=bool)
        held: list[tuple[int, Entry]] = []  # candidates the journal holds as done
        asked = zip(chunk.readable.tolist(), chunk.keys, strict=True) if known else iter(())
        for position, key in asked:
            entry = known.get(key)
            if entry is None:
                continue
            if not entry.done:
                resent[position] = keep[position]
            elif keep[position]:
                keep[position] = False
                held.append((position, entry))
            else:  # invalid today, or a repeat: the customer is done all the same
                chunk.settle(position, _skipped(entry, today=_today(chunk, position)))
        assert chunk.frame is not None
        fields = [name for name in CONTRACT_FIELDS if name in chunk.frame.columns]
        # Whole columns as object arrays (a cell at a time, pandas takes 30 times longer),
        # when there are bodies to build.
        texts = {name: _texts(chunk.frame, name) for name in fields if held or not dry_run}
        # Held rows that send what was sent (the usual night), or from before the journal
        # kept it (nothing to compare): skipped, in bulk.
        same: list[int] = []
        same_ids: list[str] = []
        for position, entry in held:
            today = build_payload({name: texts[name][position] for name in fields})
            if entry.affelios_id and (entry.sent is None or encode(today) == entry.sent.encode()):
                same.append(position)
                same_ids.append(entry.affelios_id)
            else:
                outcome = _compared(entry, today)
                chunk.settle(position, outcome)
                if outcome.status is Status.CHANGED:
                    key = (texts["externalBrandId"][position], texts["externalId"][position])
                    chunk.changes.append((key, encode(today)))
        chunk.status[same] = Status.SKIPPED.value
        chunk.affelios_id[same] = same_ids
        positions = np.flatnonzero(keep)
        if dry_run:
            chunk.status[positions] = Status.VALID.value
        else:
            values = [texts[name][positions] for name in fields]
            for position, again, row in zip(
                positions.tolist(), resent[positions].tolist(), zip(*values, strict=True),
                strict=True,
            ):  # fmt: skip
                fields_of_row = dict(zip(fields, row, strict=True))
                key = (fields_of_row["externalBrandId"], fields_of_row["externalId"])
                body = encode(build_payload(fields_of_row))
                chunk.sends.append(Send(position, key, body, resent=again))
        chunk.frame = None

    def _finish_at_most_once(
        self, chunk: PlannedChunk, known: dict[Key, Entry], *, dry_run: bool, customers: set[Key]
    ) -> None:
        keep = np.zeros(len(chunk.raw), dtype=bool)
        keep[chunk.candidates] = True
        asked = zip(chunk.readable.tolist(), chunk.keys, strict=True) if known else iter(())
        for position, key in asked:
            if (entry := known.get(key)) is not None:
                keep[position] = False
                chunk.settle(position, _sent_before(entry))
        assert chunk.frame is not None
        frame, kind = chunk.frame, self.kind
        fields = [name for name in kind.fields if name in frame.columns]
        chunk.amounts = {
            name: _texts(frame, name) for name in kind.amounts if name in frame.columns
        }
        unknown = {
            position: f"customer {customer!r} of brand {brand!r} is not in this journal "
            "(it may have been registered another way)"
            for position, (brand, customer) in zip(
                chunk.candidates.tolist(), chunk.customer_keys, strict=True
            )
            if (brand, customer) not in customers
        }
        positions = np.flatnonzero(keep)
        if dry_run:
            chunk.status[positions] = Status.VALID.value
            for position in positions.tolist():
                chunk.error[position] = unknown.get(position, "")
        else:
            values = [_texts(frame, name)[positions] for name in fields]
            for position, row in zip(positions.tolist(), zip(*values, strict=True), strict=True):
                fields_of_row = dict(zip(fields, row, strict=True))
                key = (fields_of_row["externalBrandId"], fields_of_row["externalId"])
                body = kind.body(fields_of_row)
                chunk.sends.append(Send(position, key, body, note=unknown.get(position, "")))
        chunk.frame = None


def _sent_before(entry: Entry) -> Outcome:
    """A transaction the journal holds: never sent again."""
    when = f" on {entry.first_recorded_at[:10]}" if entry.first_recorded_at else ""
    if entry.status in (Status.ACCEPTED, Status.CREATED, Status.EXISTS):
        return Outcome(
            status=Status.SKIPPED,
            affelios_id=entry.affelios_id or "",
            error=f"sent{when}: the API {entry.status} it",
        )
    return Outcome(
        status=Status.UNCONFIRMED,
        error=f"an earlier run was sending it{when} and never learned whether the API took it; "
        f"{UNCONFIRMED_ADVICE}",
        kind=kinds.item("unconfirmed_earlier"),
    )


def _today(chunk: PlannedChunk, position: int) -> str:
    """What is wrong with today's row, as a note on a customer already imported."""
    error = str(chunk.error[position])
    if str(chunk.error_kind[position]).startswith("duplicate_row"):
        return f"today's row is a {error.removesuffix('; not sent')}"
    return f"today's row has {error}"


def _imported(entry: Entry) -> str:
    return f"imported {entry.first_recorded_at[:10]}" if entry.first_recorded_at else "imported"


def _skipped(entry: Entry, *, today: str = "") -> Outcome:
    notes = [_imported(entry) if today else "", today]
    if not entry.affelios_id:
        notes.insert(0, "already existed; its id is not known")
    return Outcome(
        status=Status.SKIPPED,
        affelios_id=entry.affelios_id or "",
        error="; ".join(filter(None, notes)),
    )


def _compared(entry: Entry, body: Body) -> Outcome:
    """`skipped`, or `changed` when `body` is not what was sent for the customer (an
    entry from before the journal kept it has nothing to compare: skipped)."""
    if entry.sent is None or encode(body) == entry.sent.encode():
        return _skipped(entry)
    before = json.loads(entry.sent)
    if before == body:  # the same values, written another way
        return _skipped(entry)
    changes = [
        f"{name}: {_shown(before.get(name))} → {_shown(body.get(name))}"
        for name in CONTRACT_FIELDS
        if before.get(name) != body.get(name)
    ]
    return Outcome(
        status=Status.CHANGED,
        affelios_id=entry.affelios_id or "",
        error=f"{_imported(entry)}; changed since: {'; '.join(changes)}; not sent (the API "
        "has no update: change it in Affelios, see the README)",
    )


def _shown(value: object) -> str:
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
