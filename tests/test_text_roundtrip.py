"""Property: any text a CSV cell can hold reaches the request body unchanged."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from affelios_import.settings import Settings
from tests.conftest import run, write_csv

# Any Unicode text but NUL (which no CSV export carries) and lone surrogates (which
# cannot be written as UTF-8 at all).
cell_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=8, unique_by=lambda t: t[0]))
def test_cell_text_reaches_the_body_unchanged(values: list[tuple[str, str]]) -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"id": str(len(bodies))})

    rows = [[ext, "brand", "2025-06-28T19:29:48Z", "", user] for ext, user in values]
    with tempfile.TemporaryDirectory() as tmp:
        source = write_csv(Path(tmp) / "in.csv", rows)
        summary = run(
            Settings(
                input=source,
                out=Path(tmp) / "out.csv",
                journal=":memory:",
                base_url="https://api.test",
                api_key="k",
                concurrency=2,
            ),
            transport=httpx.MockTransport(handler),
        )
    assert summary.counts["created"] == len(values)
    sent = sorted((b["externalId"], b["username"]) for b in bodies)
    assert sent == sorted(values)
