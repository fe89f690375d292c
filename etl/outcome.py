"""What happened to one row: its status and the details the results file shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Status(StrEnum):
    CREATED = "created"  # the API created the customer (or transaction); affelios_id its id
    ACCEPTED = "accepted"  # a transaction the API queued (202): not yet booked
    EXISTS = "exists"  # the API answered 409: it already had this customer
    SKIPPED = "skipped"  # the journal says an earlier run created it; nothing sent
    CHANGED = "changed"  # as skipped, but today's row would send other values; not sent
    VALID = "valid"  # dry run only: would have been sent
    INVALID = "invalid"  # the row breaks a rule; nothing sent
    FAILED = "failed"  # sent, and refused or never answered after every retry
    NOT_SENT = "not_sent"  # the run stopped before this row was sent
    # A transaction that may have reached the API, whose answer was never learned: never
    # sent again until a person has checked (affelios-journal forget --kind transactions).
    UNCONFIRMED = "unconfirmed"
    # A transaction sent before (the API took it) whose row now holds other values: not
    # sent again; someone looks (a correction is made in Affelios, not by a second send).
    CORRECTED = "corrected"
    # Another run sharing the journal (PostgreSQL) is sending it: that run's to send and
    # to report; nothing sent by this one.
    CLAIMED = "claimed"
    # A person said this row will never be importable (`--acknowledged`), with a reason:
    # not sent, not a row to fix.
    ACKNOWLEDGED = "acknowledged"


# What a person does with an unconfirmed transaction, as its results line says.
UNCONFIRMED_ADVICE = (
    "not sent again: check in Affelios whether it arrived; if it did not, release it "
    "(with the command that ends this message) and import again"
)

# Statuses that leave nothing to do (a change is reported, but the API has no update).
GOOD = frozenset(
    {
        Status.CREATED, Status.ACCEPTED, Status.EXISTS, Status.SKIPPED, Status.CHANGED,
        Status.VALID, Status.CLAIMED, Status.ACKNOWLEDGED,
    }
)  # fmt: skip
# The statuses of rows that were sent (a request left for each): a run's speed is theirs;
# skipped and invalid rows cost nothing, and rows never sent are no speed.
SENT = frozenset(
    {Status.CREATED, Status.EXISTS, Status.ACCEPTED, Status.FAILED, Status.UNCONFIRMED}
)
# The errors file's rows: to fix, or (unconfirmed) to check.
TO_FIX = frozenset({Status.INVALID, Status.FAILED, Status.UNCONFIRMED, Status.CORRECTED})


def exit_code(*, stopped: bool, counts: Mapping[str, int]) -> int:
    """The README's table, for a run (or its results file): 0 every row good, 1 some
    rows to fix or to try again, 3 the run stopped. (2 is a setup error's: no run.)"""
    if stopped:
        return 3
    return 1 if any(counts.get(s.value, 0) for s in Status if s not in GOOD) else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    status: Status
    affelios_id: str = ""
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    code: str = ""  # the error's code (see affelios_import.codes); "" for a note or no error
    maybe_created: bool = False  # failed, but an attempt may have created it


class StopReason(StrEnum):
    """Why a run stopped before it ended by itself: what a caller decides on (retry
    later, or page someone). The words of `stop_detail` may change; these values do not.
    """

    KEY_REFUSED = "key_refused"  # 401/403: the key is wrong, revoked or lacks the scope
    TLS_UNTRUSTED = "tls_untrusted"  # the API's certificate could not be verified
    API_DOWN = "api_down"  # many failed attempts in a row (5xx, timeouts, no connection)
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM, or Importer.stop()
    INPUT_FAILED = "input_failed"  # the input could not be read to its end
    OUTPUT_FAILED = "output_failed"  # results, errors file, journal, summary or report
    INTERNAL_ERROR = "internal_error"  # an error nobody foresaw: a bug to report


def tally(column: npt.NDArray[np.object_]) -> Counter[str]:
    """How many cells of a chunk's column (its statuses, say) hold each value. A column
    of one value all down (a dry run's, a quiet night's) is counted in one comparison,
    not cell by cell (0.5 ms a 50,000-row chunk, against 1.5)."""
    if not len(column):
        return Counter()
    first = column[0]
    same = column == first
    found = Counter({first: int(same.sum())})
    if found[first] < len(column):
        found.update(column[~same].tolist())
    return found
