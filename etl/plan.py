"""Decide, for each row of a chunk, whether it is sent: the columns, validate and plan stages.

Of the rows of a chunk, one is not sent when it is invalid, or repeats the key
(`externalBrandId` + `externalId`) of an earlier valid row of the file. Then the journal
answers for every row whose key can be read, and the kind says what its entry means for
today's row (`Kind.held`: skipped, changed, sent again, or in doubt). The rest are sent,
each with the body the kind builds from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from affelios_import import codes
from affelios_import.input import keycheck
from affelios_import.input.acknowledged import Acknowledged
from affelios_import.input.columns import ColumnMap, to_contract
from affelios_import.input.keycheck import KeyChecks
from affelios_import.input.sheet import CUT_MARK
from affelios_import.input.validate import row_errors
from affelios_import.keys import CLAIMED, Entry, Key
from affelios_import.kinds.base import Held, Kind
from affelios_import.outcome import Outcome, Status

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
    # The (brand, externalId) of the records of another kind that the rows to send name
    # (see Kind.references), for the journal to say which it holds; the amount columns'
    # text, to sum.
    reference_keys: list[Key] = field(default_factory=list)
    amounts: dict[str, Column] = field(default_factory=dict)
    unknown_references: int = 0  # rows sent (or valid) naming a record the journal lacks
    sent_elsewhere: int = 0  # rows not sent: sent before to another API's URL

    @classmethod
    def of(cls, raw: pd.DataFrame, frame: pd.DataFrame) -> PlannedChunk:
        n = len(raw)
        return cls(
            raw=raw,
            status=_filled(n, Status.NOT_SENT.value),
            error=_filled(n, ""),
            error_kind=_filled(n, ""),
            affelios_id=_filled(n, ""),
            http_status=_filled(n, ""),
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
        self.error_kind[position] = outcome.code
        self.affelios_id[position] = outcome.affelios_id
        self.http_status[position] = "" if outcome.http_status is None else outcome.http_status
        self.attempts[position] = outcome.attempts


def _filled(n: int, value: object) -> Column:
    """`n` cells of `value` (`np.full` on objects takes four times as long)."""
    column = np.empty(n, dtype=object)
    column.fill(value)
    return column


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
        # np.unique by hand (a stable sort, then where the value changes): no inverse
        # to build, and the same first of each (0.065 s a million rows, against 0.076).
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        starts = np.empty(len(ordered), dtype=bool)
        starts[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
        unique, first = ordered[starts], rows[order[starts]]  # first: within this chunk
        at = np.searchsorted(self._hashes, unique)
        known = at < len(self._hashes)
        known[known] = self._hashes[at[known]] == unique[known]
        earlier = first.copy()
        earlier[known] = self._rows[at[known]]
        self._remember(at[~known], unique[~known], first[~known])
        found = np.empty(len(hashes), dtype=np.int64)
        found[order] = earlier[np.cumsum(starts) - 1]
        return np.where(found == rows, 0, found)

    def _remember(
        self, at: npt.NDArray[np.intp], hashes: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
    ) -> None:
        """Insert new keys (sorted; `at`: where each goes in the table) and their rows:
        the two tables built at once, each in one pass (np.insert, twice: 0.08 s a
        million rows, against 0.06)."""
        where = at + np.arange(len(at))
        kept = np.ones(len(self._hashes) + len(at), dtype=bool)
        kept[where] = False
        table, first = np.empty(len(kept), dtype=np.int64), np.empty(len(kept), dtype=np.uint32)
        table[where], first[where] = hashes, rows
        table[kept], first[kept] = self._hashes, self._rows
        self._hashes, self._rows = table, first


REPEATS = {  # code -> the error of a row whose key an earlier row of the file had
    "duplicate_row": "duplicate of row {row} (same externalBrandId and externalId); not sent",
    "near_duplicate_row": "the same externalBrandId and externalId as row {row} but for case "
    "or surrounding spaces, which an API may not tell apart; not sent",
}


def _hashes(keys: Iterable[tuple[str, str]], count: int) -> npt.NDArray[np.int64]:
    return np.fromiter(map(hash, keys), np.int64, count)


def _cell_faults(raw: pd.DataFrame, cell_max: int | None) -> dict[int, tuple[str, str]]:
    """Position -> (error kind, message) of the first cell of each row that nothing may
    hold: a NUL byte (no API field may); text a workbook cut to fit a cell (the rest of
    it is lost: see `sheet.CUT_MARK`); and, when an output is a workbook (`cell_max`),
    more characters than a workbook cell holds (its results line could not be written)."""
    found: dict[int, tuple[str, str]] = {}
    for name in raw.columns:
        column, named = raw[name], str(name)
        if cell_max is None and not _may_hold(column, _RARE):
            continue  # the usual column: neither a NUL nor the mark anywhere in its text
        hits = column.str.contains("\x00", regex=False).to_numpy(dtype=bool, na_value=False)
        for i in np.flatnonzero(hits).tolist():
            found.setdefault(i, (codes.item("nul_byte", named), NUL.format(column=named)))
        cut = column.str.endswith(CUT_MARK).to_numpy(dtype=bool, na_value=False)
        for i in np.flatnonzero(cut).tolist():
            found.setdefault(i, (codes.item("cell_cut", named), CUT.format(column=named)))
        if cell_max is None:
            continue
        lengths = column.str.len().to_numpy(dtype=np.int64, na_value=0)
        for i in np.flatnonzero(lengths > cell_max).tolist():
            why = LONG.format(column=named, length=int(lengths[i]), most=cell_max)
            found.setdefault(i, (codes.item("cell_too_long", named), why))
    return found


# What `_cell_faults` looks for, as bytes of the text: found nowhere in a column's buffer
# (one search of memory), no cell of the column can hold them.
_RARE = (b"\x00", CUT_MARK.encode())


def _may_hold(column: pd.Series, needles: tuple[bytes, ...]) -> bool:
    """Whether any of `needles` may be in the column's text: False only when its Arrow
    data buffers hold none of them (a buffer may hold more than the column's own cells,
    so True may be wrong, False never is). A column not held by Arrow: True."""
    try:
        chunks = column.array.__arrow_array__().chunks
    except (AttributeError, TypeError):
        return True
    for chunk in chunks:
        if not pa.types.is_string(chunk.type) and not pa.types.is_large_string(chunk.type):
            return True
        data = chunk.buffers()[2]
        text = b"" if data is None else data.to_pybytes()
        if any(needle in text for needle in needles):
            return True
    return False


NUL = "{column} holds a NUL byte (\\x00), which no API field may; not sent"
CUT = (
    "{column} was cut to fit a workbook cell (it ends with '" + CUT_MARK.strip() + "'): "
    "the rest of it is lost; not sent. Take the row from the original file"
)
LONG = (
    "{column} has {length:,} characters, more than a workbook cell holds ({most:,}); not "
    "sent, as the results are a workbook: write them as .csv to import this row"
)


@dataclass(frozen=True)
class Refusals:
    """What keeps rows from being sent whatever their values: the input's broken rows
    (see `Source.broken`: data row index -> (error kinds, message)), and the most
    characters a cell may have (when an output is a workbook, whose cells hold no more),
    which make them invalid; and the rows a person acknowledged (`--acknowledged`)."""

    broken: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    cell_max: int | None = None
    acknowledged: Acknowledged | None = None


def _texts(frame: pd.DataFrame, name: str) -> Column:
    return frame[name].to_numpy(dtype=object)


def _brands(frame: pd.DataFrame) -> Column:
    """Each row's brand. When every row names the same one (as a file of one brand, or
    `--brand`, makes them), it is one text repeated: not read cell by cell, and hashed
    once in the rows' keys."""
    column = frame["externalBrandId"]
    if len(column) and bool((column == column.iloc[0]).all()):
        return _filled(len(column), str(column.iloc[0]))
    return _texts(frame, "externalBrandId")


class Planner:
    def __init__(
        self,
        columns: ColumnMap,
        *,
        brand: str | None,
        kind: Kind,
        refusals: Refusals | None = None,
        journal_empty: bool = False,
    ) -> None:
        self.kind = kind
        self._columns = columns
        self._brand = brand
        # An empty journal is not asked (see Journal.was_empty): no keys to gather.
        self._journal_empty = journal_empty
        self._labels = columns.labels
        self._refusals = refusals or Refusals()
        self._broken = self._refusals.broken
        # An input that is an errors file carries each row's key check: see `keycheck`.
        carried = keycheck.COLUMN in columns.header
        self._keys = KeyChecks(columns, brand=brand, kind=kind) if carried else None
        self._seen = SeenKeys()
        self._folded = SeenKeys() if kind.folded_keys else None

    def check(self, raw: pd.DataFrame) -> PlannedChunk:
        """Validate a chunk and find the rows to send (CPU only, no I/O), column-wise."""
        frame = to_contract(raw, self._columns, brand=self._brand)
        chunk = PlannedChunk.of(raw, frame)
        invalid = row_errors(frame, brand=self._brand, schema=self.kind.schema, labels=self._labels)
        at = frame.index.get_indexer(invalid.index)
        chunk.status[at] = Status.INVALID.value
        chunk.error[at] = invalid["error"].to_numpy(dtype=object)
        chunk.error_kind[at] = invalid["error_kind"].to_numpy(dtype=object)
        faulty = _cell_faults(raw, self._refusals.cell_max)
        for i, (kinds, why) in faulty.items():
            chunk.status[i], chunk.error[i], chunk.error_kind[i] = Status.INVALID.value, why, kinds
        if self._broken:
            at = frame.index.get_indexer(pd.Index(list(self._broken)))
            for i, (kinds, why) in zip(at.tolist(), self._broken.values(), strict=True):
                if i >= 0:
                    chunk.status[i] = Status.INVALID.value
                    chunk.error[i] = why
                    chunk.error_kind[i] = kinds
        faulty |= dict.fromkeys(self._check_keys(chunk, frame), ("", ""))
        if (acknowledged := self._refusals.acknowledged) is not None:
            for i, why in acknowledged.matches(raw, frame):
                _acknowledge(chunk, i, why)
                faulty[i] = ("", "")  # nor asked of the journal
        brands, ids = _brands(frame), _texts(frame, "externalId")
        valid = np.flatnonzero(chunk.status == Status.NOT_SENT.value)  # neither of those
        chunk.candidates = self._first_of_each_key(chunk, valid, brands, ids)
        if not self._journal_empty:
            chunk.readable = np.flatnonzero(self._readable(frame, list(faulty)))
            at = chunk.readable
            chunk.keys = list(zip(brands[at].tolist(), ids[at].tolist(), strict=True))
        if (reference := self.kind.references) is not None:
            at = chunk.candidates
            named = _texts(frame, reference.field)[at].tolist()
            chunk.reference_keys = list(zip(brands[at].tolist(), named, strict=True))
        return chunk

    def _first_of_each_key(
        self, chunk: PlannedChunk, valid: npt.NDArray[np.intp], brands: Column, ids: Column
    ) -> npt.NDArray[np.intp]:
        """Of the `valid` rows, those whose key no earlier row of the file had; the others
        are invalid, naming the row. For a kind with `Kind.folded_keys`, keys that differ
        only by case or surrounding spaces are one key (an API that trims or folds them
        would take both rows for one record)."""
        keys: Iterable[tuple[str, str]] = zip(brands[valid], ids[valid], strict=True)
        first = self._seen.first_rows(_hashes(keys, len(valid)), chunk.rows[valid])
        self._invalid(chunk, valid[first > 0], first[first > 0], "duplicate_row")
        valid = valid[first == 0]
        if self._folded is None:
            return valid
        folded = ((b.strip().casefold(), i.strip().casefold()) for b, i in zip(
            brands[valid], ids[valid], strict=True))  # fmt: skip
        first = self._folded.first_rows(_hashes(folded, len(valid)), chunk.rows[valid])
        self._invalid(chunk, valid[first > 0], first[first > 0], "near_duplicate_row")
        kept: npt.NDArray[np.intp] = valid[first == 0]
        return kept

    @staticmethod
    def _invalid(
        chunk: PlannedChunk, at: npt.NDArray[np.intp], earlier: npt.NDArray[np.int64], code: str
    ) -> None:
        how = REPEATS[code]
        chunk.status[at] = Status.INVALID.value
        chunk.error[at] = [how.format(row=row) for row in earlier.tolist()]
        chunk.error_kind[at] = codes.item(code)

    def _check_keys(self, chunk: PlannedChunk, frame: pd.DataFrame) -> list[int]:
        """Rows of an errors file imported again whose key is not the one their
        `key_check` was made of (a spreadsheet changed it): invalid, saying how, beside
        any other problem they have (so that the errors file carries their check on, and
        a row fixed otherwise is never sent under the changed key). Their positions."""
        if self._keys is None:
            return []
        cells = chunk.raw[keycheck.COLUMN].to_numpy(dtype=object)
        at = [i for i, cell in enumerate(cells.tolist()) if cell.strip()]
        changed = []
        for i, values in zip(at, self._keys.values(frame.iloc[at]), strict=True):
            if (why := self._keys.changed(values, cells[i].strip())) is None:
                continue
            changed.append(i)
            was = chunk.status[i] == Status.INVALID.value
            chunk.status[i] = Status.INVALID.value
            chunk.error[i] = "; ".join([why, chunk.error[i]] if was else [why])
            kinds = [codes.item("key_changed"), chunk.error_kind[i]] if was else ["key_changed"]
            chunk.error_kind[i] = "; ".join(kinds)
        return changed

    def _readable(self, frame: pd.DataFrame, faulty: list[int]) -> npt.NDArray[np.bool_]:
        """Whether each row's key can be read: both parts present (the brand the one
        given with --brand, if any), in a row read whole, with no faulty cell."""
        ok = np.ones(len(frame), dtype=bool)
        for name in ("externalBrandId", "externalId"):
            ok &= (frame[name].str.strip() != "").to_numpy(dtype=bool, na_value=False)
        if self._brand is not None:
            ok &= (frame["externalBrandId"] == self._brand).to_numpy(dtype=bool, na_value=False)
        ok[faulty] = False
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
        referenced: set[Key] | None = None,
        apart: dict[Key, Outcome] | None = None,
    ) -> None:
        """Settle the rows whose record the journal holds (`known`: its entries among
        `chunk.keys`), as the kind says (`Kind.held`); the other candidates are `valid`
        in a dry run, else each gets the body of its request. A row naming a record of
        another kind (`Kind.references`) that the journal does not hold (`referenced`:
        those of `chunk.reference_keys` it holds) gets a note. A candidate in `apart` is
        not sent: the journal holds its record apart from its key (under another API's
        URL, or under a key that differs by case or spaces), and `apart` says its outcome."""
        assert chunk.frame is not None
        frame = chunk.frame
        chunk.amounts = {
            name: _texts(frame, name) for name in self.kind.amounts if name in frame.columns
        }
        # Each candidate's body, the kind's way (column by column), when there are bodies
        # to send or to compare with the journal's (a dry run's are only to sum). What is
        # compared is what is sent.
        bodies = _filled(len(chunk.raw), b"")
        if known or not dry_run:
            bodies[chunk.candidates] = self.kind.bodies(frame.iloc[chunk.candidates])
        keep = np.zeros(len(chunk.raw), dtype=bool)
        keep[chunk.candidates] = True
        resent = self._settle_held(chunk, known, keep, bodies)
        for position, key in zip(chunk.readable.tolist(), chunk.keys, strict=True):
            if keep[position] and apart and (outcome := apart.get(key)) is not None:
                keep[position] = False
                chunk.settle(position, outcome)
                chunk.sent_elsewhere += outcome.code == codes.item("sent_to_other_api")
        notes = self._notes(chunk, referenced or set())
        positions = np.flatnonzero(keep)
        chunk.unknown_references = sum(position in notes for position in positions.tolist())
        if dry_run:
            chunk.status[positions] = Status.VALID.value
            chunk.error[positions] = ""
            for position, note in notes.items():
                if keep[position]:
                    chunk.error[position] = note
        else:
            brands = _brands(frame)[positions].tolist()
            ids = _texts(frame, "externalId")[positions].tolist()
            for position, again, body, key in zip(
                positions.tolist(), resent[positions].tolist(), bodies[positions].tolist(),
                zip(brands, ids, strict=True), strict=True,
            ):  # fmt: skip
                note = notes.get(position, "")
                chunk.sends.append(Send(position, key, body, resent=again, note=note))
        chunk.frame = None

    def _settle_held(
        self,
        chunk: PlannedChunk,
        known: dict[Key, Entry],
        keep: npt.NDArray[np.bool_],
        bodies: Column,
    ) -> npt.NDArray[np.bool_]:
        """Settle the rows the journal holds, as the kind says; `keep` loses those not to
        be sent. Which rows are sent again, flagged (an earlier run died sending them)."""
        resent = np.zeros(len(chunk.raw), dtype=bool)
        same: list[int] = []  # skipped, nothing to say (the usual night): in bulk
        same_ids: list[str] = []
        asked = zip(chunk.readable.tolist(), chunk.keys, strict=True) if known else iter(())
        for position, key in asked:
            if (entry := known.get(key)) is None:
                continue
            candidate = bool(keep[position])
            if entry.status == CLAIMED:  # another live run's, whatever the kind
                keep[position] = False
                chunk.settle(position, claimed(entry.claimed_by))
                continue
            today = bodies[position] if candidate else None
            problem = "" if candidate else _today(chunk, position)
            decision = self.kind.held(entry, today=today, problem=problem)
            if decision is Held.AS_IS:
                continue
            if decision is Held.RESEND:
                resent[position] = candidate
                continue
            keep[position] = False
            if decision is Held.SAME:
                same.append(position)
                same_ids.append(entry.affelios_id or "")
                continue
            chunk.settle(position, decision)
            if decision.status is Status.CHANGED and today is not None:
                chunk.changes.append((key, today))
        chunk.status[same] = Status.SKIPPED.value
        chunk.affelios_id[same] = same_ids
        return resent

    def _notes(self, chunk: PlannedChunk, referenced: set[Key]) -> dict[int, str]:
        """The candidates naming a record of another kind that the journal does not hold,
        and what their results line says of it."""
        reference = self.kind.references
        if reference is None:
            return {}
        return {
            position: reference.note(brand, external_id)
            for position, (brand, external_id) in zip(
                chunk.candidates.tolist(), chunk.reference_keys, strict=True
            )
            if (brand, external_id) not in referenced
        }


def _acknowledge(chunk: PlannedChunk, position: int, why: str) -> None:
    """A row the acknowledged file names: not sent, saying why (and what is wrong with
    it, if anything: its codes are kept)."""
    had = chunk.error[position] if chunk.status[position] == Status.INVALID.value else ""
    chunk.status[position] = Status.ACKNOWLEDGED.value
    chunk.error[position] = f"acknowledged: {why}; not sent" + (f" (it has {had})" if had else "")


def claimed(by: str = "") -> Outcome:
    """A row another run sharing the journal is sending (`by`: which, if known)."""
    who = f" ({by})" if by else ""
    return Outcome(
        status=Status.CLAIMED,
        error=f"another run sharing the journal{who} is sending it: its results say what "
        "became of it; not sent by this run",
        code=codes.item("claimed"),
    )


def _today(chunk: PlannedChunk, position: int) -> str:
    """What is wrong with today's row, as a note on a record already imported."""
    error = str(chunk.error[position])
    if str(chunk.error_kind[position]).startswith("duplicate_row"):
        return f"today's row is a {error.removesuffix('; not sent')}"
    return f"today's row has {error}"
