"""What happened to one row: its status and the details the results file shows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    CREATED = "created"  # the API created the customer; affelios_id is its id
    EXISTS = "exists"  # the API answered 409: it already had this customer
    SKIPPED = "skipped"  # the journal says an earlier run created it; nothing sent
    VALID = "valid"  # dry run only: would have been sent
    INVALID = "invalid"  # the row breaks a rule; nothing sent
    FAILED = "failed"  # sent, and refused or never answered after every retry
    NOT_SENT = "not_sent"  # the run stopped before this row was sent


GOOD = frozenset({Status.CREATED, Status.EXISTS, Status.SKIPPED, Status.VALID})
TO_FIX = frozenset({Status.INVALID, Status.FAILED})  # the errors file's rows


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    status: Status
    affelios_id: str = ""
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    maybe_created: bool = False  # failed, but an attempt may have created it
