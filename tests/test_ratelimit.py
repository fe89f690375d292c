"""The API's stated rate limit: read from its header fields, and obeyed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from affelios_import.config import ImportConfig
from affelios_import.kinds import get
from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from affelios_import.send.ratelimit import Stated, read
from affelios_import.send.submit import Submitter
from affelios_import.send.throttle import MIN_RATE, STATED_SHARE, Throttle
from affelios_import.wire.endpoint import RETRY_AFTER_MAX, Endpoint
from tests.conftest import API_KEY, good_rows, read_results, run_cli, write_csv


@pytest.mark.parametrize(
    ("headers", "stated"),
    [
        (  # the IETF draft: the most restrictive policy, the window that has least left
            {
                "RateLimit-Policy": '"burst";q=10;w=1, "day";q=1000;w=86400',
                "RateLimit": '"burst";r=7;t=1, "day";r=990;t=40000',
            },
            Stated(quota=1000, window=86400, remaining=7, reset=1),
        ),
        ({"RateLimit-Policy": '"default";q=100;w=60'}, Stated(quota=100, window=60)),
        (  # the earlier drafts
            {"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "30"},
            Stated(quota=100, remaining=0, reset=30),
        ),
        (  # GitHub's: a reset as a Unix time
            {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "4999",
                "X-RateLimit-Reset": "1000000030",
            },
            Stated(quota=5000, remaining=4999, reset=30),
        ),
    ],
)
def test_the_stated_limit_is_read(headers: dict[str, str], stated: Stated) -> None:
    assert read(httpx.Headers(headers), now=1_000_000_000) == stated


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"RateLimit-Policy": "garbage;;", "RateLimit": '"x";r=-1;t=1'},
        {"RateLimit-Policy": '"d";q=?1;w=1'},  # a boolean is no quota
        {"RateLimit-Policy": '"d";q=10;w=0'},  # nor a window of no time
        {"RateLimit-Limit": "lots", "RateLimit-Remaining": "-3"},
        {"X-RateLimit-Limit": "1e3"},
        {"X-RateLimit-Limit": "²"},  # a digit to str.isdigit(), not to int()
        {"X-RateLimit-Limit": "٣"},  # an Arabic-Indic digit: not HTTP's
        {"RateLimit-Limit": "9" * 5000},  # past what int() reads
    ],
)
def test_malformed_fields_are_ignored(headers: dict[str, str]) -> None:
    # As a server sends them: bytes, UTF-8 where it pleases (httpx decodes them so)
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]
    assert read(httpx.Headers(raw), now=0) is None


def test_the_pace_stays_under_the_stated_quota_and_waits_for_an_empty_window() -> None:
    now = [100.0]
    throttle = Throttle(clock=lambda: now[0])
    throttle.heed(Stated(quota=50, window=1))
    assert throttle.stated == "50 requests per 1 s"
    assert throttle._stated_pace == 50 * STATED_SHARE
    throttle.heed(Stated(quota=50, window=1, remaining=0, reset=3))
    assert throttle._paused_until == 103.0


@pytest.mark.parametrize(
    "stated",
    [
        Stated(quota=10, remaining=0, reset=999_999_999),  # 31 years
        Stated(quota=1, window=86400),  # one a day
        Stated(remaining=0, reset=99_999_999),
    ],
)
def test_a_stated_limit_never_holds_the_run_past_the_bounds(stated: Stated) -> None:
    """A reset is waited out for at most RETRY_AFTER_MAX, as a Retry-After is, and a
    pace is never below MIN_RATE: the run goes on, and the 429s it then meets (if the
    API meant it) pause it, or stop it as an API that refuses."""
    now = [100.0]
    throttle = Throttle(clock=lambda: now[0])
    throttle.heed(stated)
    assert throttle._paused_until <= 100.0 + RETRY_AFTER_MAX
    assert throttle._stated_pace is None or throttle._stated_pace >= MIN_RATE


def test_a_reset_given_as_a_unix_time_is_a_moment() -> None:
    headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": "4102444800"}  # fmt: skip
    stated = read(httpx.Headers(headers), now=4102444800 - 20)
    assert stated is not None and stated.reset == 20


def test_retry_after_wins_over_the_fields() -> None:
    fields = {"RateLimit-Policy": '"d";q=5;w=1', "RateLimit": '"d";r=0;t=30'}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429 if handler.calls == 0 else 201,  # type: ignore[attr-defined]
            headers={**fields, "Retry-After": "0"} if handler.calls == 0 else {},  # type: ignore[attr-defined]
            json={"id": "a1"},
        )

    handler.calls = 0  # type: ignore[attr-defined]

    async def go() -> Submitter:
        endpoint = Endpoint(
            httpx.MockTransport(handler), base_url="https://api.test", headers={}, timeout=5,
            path="/api/v1/customer",
        )  # fmt: skip
        submitter = Submitter(endpoint, kind=get("customers"), config=ImportConfig(retries=0))
        await submitter.send(b"{}")
        return submitter

    submitter = asyncio.run(go())
    assert submitter.throttle.stated == ""  # not heeded: the Retry-After was


def test_an_api_that_states_its_limit_is_paced_by_it_and_loses_nothing(tmp_path: Path) -> None:
    server = Sandbox(api_key=API_KEY, faults=Faults(rate_limit=200, rate_limit_fields=True))
    source = write_csv(tmp_path / "c.csv", good_rows(600))
    summary = tmp_path / "s.json"
    with serve_in_thread(server) as url:
        done = run_cli(
            source, "--base-url", url, "--journal", tmp_path / "j.db", "--concurrency", "32",
            "--summary-json", summary,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = read_results(tmp_path / "c.results.csv")
    assert {r["status"] for r in results} == {"created"}
    assert len(server.customers) == 600
    # Paced from the first answer, at 95% of the stated quota: next to no refusals.
    assert server.stats["429"] <= 6, server.stats
    said = "200 requests per 1 s, as its answers state"
    assert json.loads(summary.read_text())["rate_limit"] == said
    assert f"paced by the API's limit: {said}" in done.stderr
