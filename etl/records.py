"""The two kinds of record the importer sends: customers and transactions.

One engine sends both (read, columns, validate, plan, submit, journal, results); what
differs is data each kind supplies here: the API path, the contract's fields and their
aliases, the checks, the request body, the journal's table, and whether a request that
may have reached the API may be sent again.

- customers: a repeat is refused by the API (409), so a row whose answer was lost is
  sent again and the 409 tells. Created only on an answer that carries the id.
- transactions: nothing documents a refusal of a repeat, so a transaction sent twice may
  be counted twice. **A transaction is sent at most once**: only attempts that provably
  did not reach the API (429, 503, a connection refused before the request was written)
  are repeated; any other doubt ends as `unconfirmed`, never sent again without a
  person's word (`affelios-journal forget --kind transactions`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from etl import payload
from schemas import customer, transaction

if TYPE_CHECKING:
    import pandera.pandas as pa


@dataclass(frozen=True, kw_only=True, eq=False)  # one of each: compared by identity
class Kind:
    name: str  # as --kind says it
    path: str  # POSTed to, under the base URL
    fields: tuple[str, ...]  # the contract's, in its order
    required: tuple[str, ...]  # by the importer
    aliases: Mapping[str, str]  # normalised column name -> field (see etl.columns)
    # Column names (a pattern on the normalised name) that look like a field they are
    # not mapped to: the run stops until they are mapped (see etl.columns).
    guarded: Mapping[str, str]
    schema: Callable[[str | None], pa.DataFrameSchema]
    body: Callable[[Mapping[str, str]], bytes]  # a validated row's request body
    amounts: tuple[str, ...] = ()  # summed, exactly, over the rows the API took
    at_most_once: bool = False


CUSTOMERS = Kind(
    name="customers",
    path="/api/v1/customer",
    fields=customer.CONTRACT_FIELDS,
    required=customer.REQUIRED_FIELDS,
    aliases={"clickkey": "clickId"},
    guarded={
        r"brand": "externalBrandId",
        r"click|btag|affiliate": "clickId",
        r"(regist|signup).*(date|time|at$)|(date|time).*(regist|signup)": "registrationDate",
    },
    schema=customer.customer_schema,
    body=lambda row: payload.encode(payload.build_payload(row)),
)

TRANSACTIONS = Kind(
    name="transactions",
    path="/api/v1/transaction",
    fields=transaction.CONTRACT_FIELDS,
    required=transaction.REQUIRED_FIELDS,
    aliases={"clickid": "clickKey", "externaltransactionid": "externalId"},
    guarded={
        r"brand": "externalBrandId",
        r"click|btag": "clickKey",
        r"(customer|player|user|account)(id|no|number|ref)|^(customer|player)$": (
            "externalCustomerId"
        ),
        r"(trans|txn|tx|booking|posted).*(date|time|at$)|^(date|datetime|timestamp)$": (
            "transactionDate"
        ),
        r"amount|deposit|revenue|wager|commission|ggr|ngr|stake": "depositAmount",
    },
    schema=transaction.transaction_schema,
    body=payload.transaction_body,
    amounts=transaction.AMOUNT_FIELDS,
    at_most_once=True,
)

KINDS: dict[str, Kind] = {kind.name: kind for kind in (CUSTOMERS, TRANSACTIONS)}
