"""What identifies a customer, and what the journal knows of one: shared by the journal
(SQLite) and the plan (pure CPU work), so that the plan need not import the journal."""

from __future__ import annotations

from typing import NamedTuple

Key = tuple[str, str]  # (externalBrandId, externalId)

SENDING = "sending"
# Not a status the journal keeps: an entry `sending` that another live run holds, as a
# shared journal (`journal.postgres`) reports it.
CLAIMED = "claimed"


# What the API did, as a sentence says it of an entry's status ("the API accepted it").
_DID = {"exists": "already had", "unconfirmed": "may have taken", SENDING: "may have taken"}


def api_did(status: str) -> str:
    """`the API accepted it`, `the API already had it`: an entry's status in words."""
    return f"the API {_DID.get(status, status)} it"


class Entry(NamedTuple):
    """The journal's entry for a customer."""

    status: str  # "created", "exists", or "sending" (sent; the outcome never learned)
    affelios_id: str | None
    first_recorded_at: str = ""  # UTC, ISO-8601 ("2026-11-24T02:10:33.120Z")
    sent: str | None = None  # the JSON body sent; None: not known (an older journal)
    claimed_by: str = ""  # CLAIMED: which run ("run 12, pid 3411 on host w2, since ...")

    @property
    def done(self) -> bool:
        return self.status not in (SENDING, CLAIMED)
