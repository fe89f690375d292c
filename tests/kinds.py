"""Every kind of record, as the tests use it: a sample file's header and rows, what a
good answer is, and what reached the sandbox (as dlt's tests go over every destination,
the tests of a stage go over every kind: `@pytest.mark.parametrize("sample", SAMPLES)`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest

from affelios_import import kinds
from affelios_import.kinds.base import Kind
from affelios_import.sandbox import Sandbox
from tests.conftest import HEADER, good_rows

TX_HEADER = (
    "External Transaction ID", "External Brand ID", "External Customer ID",
    "transaction_date", "type", "depositAmount", "grossRevenue",
)  # fmt: skip


def transactions(n: int, *, brand: str = "casino-x", start: int = 1) -> list[list[str]]:
    return [
        [f"T{i:05d}", brand, f"C{i % 50:05d}", f"2025-06-{1 + i % 28:02d}T10:00:00Z",
         "deposit", f"{i}.{i % 100:02d}", f"-{i % 7}.1" if i % 3 else ""]
        for i in range(start, start + n)
    ]  # fmt: skip


@dataclass(frozen=True)
class Sample:
    kind: Kind
    header: tuple[str, ...]
    created: str  # the status of a row the API took at once
    created_answer: int  # the sandbox's (and a mock API's) answer to a good row
    id_column: str  # the header's name of externalId

    @property
    def name(self) -> str:
        return self.kind.name

    def rows(self, n: int, *, brand: str = "casino-x", start: int = 1) -> list[list[str]]:
        make = good_rows if self.name == "customers" else transactions
        return make(n, brand=brand, start=start)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """A mock API's answer to a good row: the record, with an id, or queued."""
        if self.created_answer == 202:
            return httpx.Response(202)
        return httpx.Response(201, json={"id": f"id-{json.loads(request.content)['externalId']}"})

    def taken(self, server: Sandbox) -> Counter[str]:
        """How many times the sandbox took each record (by externalId); asserts none was
        taken twice."""
        if self.name == "customers":
            taken = Counter(str(c["externalId"]) for c in server.customers.values())
            assert sum(taken.values()) == server.stats["201"]
        else:
            taken = Counter(str(t["externalId"]) for t in server.transactions)
        twice = [external_id for external_id, n in taken.items() if n > 1]
        assert not twice, f"taken twice: {twice[:10]}"
        return taken


CUSTOMERS = Sample(kinds.get("customers"), HEADER, "created", 201, "externalId")
TRANSACTIONS = Sample(
    kinds.get("transactions"), TX_HEADER, "accepted", 202, "External Transaction ID"
)
EVERY = (CUSTOMERS, TRANSACTIONS)
assert [s.name for s in EVERY] == list(kinds.NAMES)  # every kind, each once
SAMPLES = [pytest.param(s, id=s.name) for s in EVERY]
