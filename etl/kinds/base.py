"""What a kind of record is: the one interface every stage asks, and nothing else.

A kind (customers, transactions, ...) is a plug-in, as an httpx transport is: one module
holds every rule of it, and the stages (columns, validate, plan, submit, journal,
results) hold no branch on which kind they serve. A kind says

- what its rows are: the API path, the contract's fields, their aliases, the column names
  guarded against a silent miss, the schema, the amounts summed, and the request body;
- what a journal entry means when today's row of the same key arrives (`held`);
- the four sending decisions, as pure functions of what happened (no I/O, no state):
  did this attempt possibly act (`may_have_acted`), may it be repeated (`repeatable`),
  what does a final answer mean (`answered`), and what is a row whose answer was lost
  (`lost`).

The submitter's policy is fixed (retries with backoff, the shared pace, stopping); what
may be repeated, and what each answer means, is the kind's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from affelios_import.keys import Entry
from affelios_import.urls import public
from affelios_import.wire.endpoint import Answer, excerpt

# A `Brand` (`Brand ID`, `brand_id`) column is the brand, as `External ID` is externalId
# (`--brand` fills its empty cells; a row naming another brand is invalid); but where the
# kind has a field of that name (a customer's `brandId`): the contract's names come first.
BRAND_ALIASES = {"brand": "externalBrandId", "brandid": "externalBrandId"}

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

    from affelios_import.outcome import Outcome
    from affelios_import.redact import Redactor


class Held(Enum):
    """What becomes of today's row whose key the journal holds, when it is no `Outcome`."""

    SAME = "same"  # skipped, nothing to say: the journal's id is its id (the usual night)
    RESEND = "resend"  # sent again (an earlier run died sending it), and flagged so
    AS_IS = "as_is"  # as today's checks left it (invalid today, say)


@dataclass(frozen=True, kw_only=True)
class Reference:
    """Records of another kind that this kind's rows name (a transaction's customer): the
    plan gathers them, the journal says which it holds, and a row naming one it does not
    hold gets a `note`."""

    kind: str  # the other kind's name (its journal's table)
    field: str  # the field of this kind's rows that holds the other record's externalId

    def note(self, brand: str, external_id: str) -> str:
        noun = self.kind.removesuffix("s")
        return (
            f"{noun} {external_id!r} of brand {brand!r} is not in this journal "
            "(it may have been registered another way)"
        )


class Kind(ABC):
    """A kind of record the importer sends: one instance per kind (see `kinds.get`)."""

    name: str  # as --kind says it; also the journal's table
    path: str  # POSTed to, under the base URL
    fields: tuple[str, ...]  # the contract's, in its order
    required: tuple[str, ...]  # by the importer
    aliases: Mapping[str, str]  # normalised column name -> field (see input.columns)
    # Column names (a pattern on the normalised name) that look like a field they are
    # not mapped to: the run stops until they are mapped (see input.columns).
    guarded: Mapping[str, str]
    amounts: tuple[str, ...] = ()  # summed, exactly, over the rows the API took
    references: Reference | None = None
    # Whether a record changed since it was sent can be accepted (--accept-changes).
    accepts_changes: bool = False
    # The journal statuses `affelios-journal forget` releases unless told others (None:
    # any): a record whose repeat the API may count is released only in doubt.
    released_by_default: frozenset[str] | None = None
    # Whether a run is refused on a journal that never recorded a record of this kind for
    # this API (and brand), unless told it is the first import (--new-journal): such a
    # journal cannot know what was sent before, and a repeat may be counted.
    needs_history: bool = False
    # Whether keys that differ only by case or surrounding spaces are one record (after
    # the first row of a file, such a row is invalid): an API that trims or folds them
    # would take both for one record, and a repeat may be counted.
    folded_keys: bool = False
    # Whether each row's intent is committed as a worker takes it up, just before its
    # request is written (the workers about to send at one moment share a commit), and
    # not for a batch of rows as they are released to the workers (cheaper: a tenth of a
    # run's CPU against an instant API). Then a run killed at any moment leaves `sending`
    # only rows the API may have seen, and a row it never sent is sent by the next run:
    # for a kind whose rows left `sending` are never sent again.
    intent_per_request: bool = False
    # The statuses a person at the terminal watches for this kind (the progress bar's
    # counts; any other status shows once a row has it).
    watched: tuple[str, ...] = ("skipped", "invalid", "failed")

    def __repr__(self) -> str:
        return f"<kind {self.name}>"

    @abstractmethod
    def schema(self, brand: str | None) -> pa.DataFrameSchema:
        """The pandera schema of a chunk whose columns carry the contract's names."""

    @abstractmethod
    def body(self, row: Mapping[str, str]) -> bytes:
        """A validated row's request body: exactly the contract's names and JSON types."""

    def bodies(self, frame: pd.DataFrame) -> list[bytes]:
        """The bodies of `frame`'s rows (validated, under the contract's names), in
        order: each exactly `body` of its row. A kind may build them column by column."""
        names = [name for name in self.fields if name in frame.columns]
        if not names:
            return [self.body({}) for _ in range(len(frame))]
        columns = [frame[name].to_numpy(dtype=object) for name in names]
        rows = zip(*columns, strict=True)
        return [self.body(dict(zip(names, row, strict=True))) for row in rows]

    @abstractmethod
    def held(self, entry: Entry, *, today: bytes | None, problem: str) -> Outcome | Held:
        """What becomes of today's row whose key the journal holds as `entry`: `today`
        is the body it would send, or None when it is not to be sent (invalid, or a
        repeat: `problem` says why)."""

    @abstractmethod
    def may_have_acted(self, status: int | None, *, written: bool) -> bool:
        """Whether an attempt may have made the API act: answered with `status`, or
        (None) with no answer, the request `written` or never."""

    @abstractmethod
    def repeatable(self, status: int | None, *, written: bool) -> bool:
        """Whether an attempt (as in `may_have_acted`) may be sent again."""

    @abstractmethod
    def answered(self, answer: Answer, *, attempts: int, redact: Redactor) -> Outcome:
        """What a final answer (one not to be repeated) means for the row."""

    @abstractmethod
    def lost(self, detail: str, *, attempts: int, status: int | None, code: str) -> Outcome:
        """The outcome of a row an attempt of which may have acted, and whose answer was
        never learned (`detail`, `code`: how it was lost)."""


def refusal(answer: Answer, redact: Redactor) -> tuple[str, str]:
    """The code and message of an answer that is not a 2xx, for every kind."""
    code, shown = answer.status, excerpt(answer, redact)
    if 300 <= code < 400:
        where = redact(public(answer.headers.get("Location", ""))) or "nowhere"
        return "redirected", f"HTTP {code}: the API redirected to {where}: check --base-url"
    if code == 409:
        return "conflict", (
            f"HTTP 409, a conflict other than an existing customer: {shown or 'no body'}"
        )
    if code in (401, 403):
        return "key_refused", f"HTTP {code}: the API refused the key: {shown}"
    return "refused", f"HTTP {code}: {shown}"
