"""The real command against a hostile API: answers that prove nothing, redirects,
conflicts, trickles and floods, over real HTTP on loopback (see `tests/hostile.py`)."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from click.testing import CliRunner

from affelios_import import ImportConfig, Importer, StopReason
from affelios_import.cli.main import main
from tests.conftest import API_KEY, HEADER, RunningSandbox, good_rows, read_results, write_csv
from tests.hostile import answer, serve
from tests.kinds import TRANSACTIONS, TX_HEADER, transactions

ID_ANSWER = (201, b'{"id": "aff-1"}', "application/json")


def import_into(url: str, source: Path, journal: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        [str(source), "--base-url", url, "--journal", str(journal), "--retries", "0", *args],
        env={"AFFELIOS_API_KEY": API_KEY, "AFFELIOS_BASE_URL": None},
    )
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, b"OK", "text/plain"),
        (201, b"<html><body>Down for maintenance</body></html>", "text/html"),
        (201, b'{"externalId": "C00001"}', "application/json"),
        (201, b'{"id": null}', "application/json"),
        (202, b"", "application/json"),
        (204, b"", "application/json"),
    ],
)
def test_a_2xx_without_a_customer_fails_and_the_next_run_sends_the_row_again(
    tmp_path: Path, status: int, body: bytes, content_type: str
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    journal = tmp_path / "j.db"
    mode = {"answer": (status, body, content_type)}
    posts = []

    async def api(request: web.Request) -> web.StreamResponse:
        posts.append(await request.read())
        code, text, kind = mode["answer"]
        return web.Response(status=code, body=text, content_type=kind)

    with serve(api) as url:
        code, stderr = import_into(url, source, journal)
        assert code == 1, stderr  # not success
        results = read_results(tmp_path / "c.results.csv")
        assert {r["status"] for r in results} == {"failed"}
        assert all(r["affelios_id"] == "" for r in results)
        assert all(f"HTTP {status} without a customer id" in r["error"] for r in results)
        with sqlite3.connect(journal) as db:  # nothing recorded as created
            assert {s for (s,) in db.execute("SELECT status FROM customers")} == {"sending"}

        mode["answer"] = ID_ANSWER  # the API is back
        code, stderr = import_into(url, source, journal)
    assert code == 0, stderr
    assert len(posts) == 6  # every row sent again, none skipped
    rerun = read_results(tmp_path / "c.results.csv")
    assert [r["status"] for r in rerun] == ["created"] * 3
    assert [r["affelios_id"] for r in rerun] == ["aff-1"] * 3


def test_a_redirect_fails_each_row_and_the_summary_says_it_once(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(4))

    async def api(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=302, headers={"Location": "https://user:pw@login.test/sso"})

    with serve(api) as url:
        code, stderr = import_into(url, source, tmp_path / "j.db")
    assert code == 1
    results = read_results(tmp_path / "c.results.csv")
    assert {r["error"] for r in results} == {
        "HTTP 302: the API redirected to https://login.test/sso: check --base-url"
    }
    assert "4 x the API redirected: check --base-url (rows 1, 2, 3, 4)" in stderr
    assert "pw" not in stderr


def test_a_409_is_exists_only_when_it_says_so(tmp_path: Path) -> None:
    """ "username is already taken by another customer" was `exists`, journaled, and
    `skipped` every night after: the customer was never created, and both runs exit 0."""
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    taken = b'{"errors": ["username is already taken by another customer"]}'
    locked = b'{"errors": ["locked"]}'
    bodies = iter([b'{"errors": ["customer already exists"]}', locked, taken, locked, taken])

    async def api(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=409, body=next(bodies), content_type="application/json")

    with serve(api) as url:
        code, _ = import_into(url, source, tmp_path / "j.db", "--concurrency", "1")
        assert code == 1
        exists, conflict, another = read_results(tmp_path / "c.results.csv")
        assert (another["status"], another["error_kind"]) == ("failed", "conflict")
        again, _ = import_into(url, source, tmp_path / "j.db", "--concurrency", "1")
    assert again == 1  # the next night: sent again, and to fix again (not skipped)
    assert read_results(tmp_path / "c.results.csv")[2]["status"] == "failed"
    assert (exists["status"], exists["error"]) == (
        "exists",
        'HTTP 409: {"errors": ["customer already exists"]}',
    )
    assert (conflict["status"], conflict["error"]) == (
        "failed",
        'HTTP 409, a conflict other than an existing customer: {"errors": ["locked"]}',
    )
    with sqlite3.connect(tmp_path / "j.db") as db:  # only the existing one is journaled
        assert db.execute("SELECT external_id, status FROM customers").fetchall() == [
            ("C00001", "exists")
        ]


def test_timeout_bounds_the_whole_answer_not_each_read(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(2))

    async def trickle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=201, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for byte in b'{"id": "' + b" " * 600:  # a byte every 0.1 s: a minute in all
            await response.write(bytes([byte]))
            await asyncio.sleep(0.1)
        return response

    started = time.monotonic()
    with serve(trickle) as url:
        code, _ = import_into(url, source, tmp_path / "j.db", "--timeout", "1")
    took = time.monotonic() - started
    assert code == 1
    results = read_results(tmp_path / "c.results.csv")
    assert {r["error"] for r in results} == {"gave up after 1 attempts: timed out"}
    assert took < 30  # without the bound: a minute for each row


def test_an_error_page_is_not_read_whole(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    sent = [0]

    async def flood(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=400, headers={"Content-Type": "text/html"})
        await response.prepare(request)
        block = b"<p>" + b"error " * 10_000 + b"</p>\n"
        try:
            while sent[0] < 100_000_000:  # a 100 MB error page
                await response.write(block)
                sent[0] += len(block)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what it wanted, it had
        return response

    with serve(flood) as url:
        code, _ = import_into(url, source, tmp_path / "j.db")
    assert code == 1
    (row,) = read_results(tmp_path / "c.results.csv")
    assert row["error"].startswith("HTTP 400: <p>error error")
    assert len(row["error"]) <= 210
    assert sent[0] < 20_000_000  # the client stopped reading after the excerpt


def test_the_journal_and_summary_json_record_a_2xx_without_id_as_failed(
    tmp_path: Path,
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    out = tmp_path / "s.json"
    with serve(answer(204)) as url:
        code, _ = import_into(url, source, tmp_path / "j.db", "--summary-json", str(out))
    assert code == 1
    summary = json.loads(out.read_text())
    assert summary["counts"]["failed"] == 2
    assert summary["top_errors"][0]["error"] == "HTTP 204 without a customer id"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Location": "/api/v1/transaction/t-1"}, 303), ({}, 302), ({"Location": "/x"}, 307)],
)
def test_a_redirected_transaction_is_unconfirmed_and_never_sent_again(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    """A 303 is the usual answer to a POST that was processed: the API may have taken it."""
    source = write_csv(tmp_path / "tx.csv", transactions(3), header=TX_HEADER)
    journal = tmp_path / "j.db"
    posts: list[bytes] = []

    async def api(request: web.Request) -> web.StreamResponse:
        posts.append(await request.read())
        return web.Response(status=status, headers=headers)

    with serve(api) as url:
        code, stderr = import_into(url, source, journal, "--kind", "transactions", "--new-journal")
        assert code == 1, stderr
        results = read_results(tmp_path / "tx.results.csv")
        assert {r["status"] for r in results} == {"unconfirmed"}
        assert all(r["error"].startswith(f"HTTP {status} (") for r in results)
        assert len(posts) == 3
        again, stderr = import_into(url, source, journal, "--kind", "transactions")
        assert again == 1, stderr
    assert len(posts) == 3  # not sent again
    assert {r["error_kind"] for r in read_results(tmp_path / "tx.results.csv")} == {
        "unconfirmed_earlier"
    }


@pytest.mark.parametrize(
    ("kind", "source_rows", "header", "taken", "status", "code"),
    [
        ("customers", good_rows(5), None, (201, b'{"id": "aff-1"}'), "failed",
         "answer_unreadable"),
        ("transactions", transactions(5), TX_HEADER, (202, b""), "unconfirmed", "unconfirmed"),
    ],
)  # fmt: skip
def test_an_answer_that_breaks_its_reader_leaves_no_row_unrecorded(
    tmp_path: Path,
    kind: str,
    source_rows: list[list[str]],
    header: tuple[str, ...] | None,
    taken: tuple[int, bytes],
    status: str,
    code: str,
) -> None:
    """An exception while an answer is read (`X-RateLimit-Limit: ²` once raised one:
    a digit to str.isdigit, not to int; it is ignored now, so the reader is made to
    fail here) stopped the run with exit 3, the rows the API had taken unrecorded. Now
    each such row ends in doubt, the run goes on, and the journal keeps it: a customer
    is sent again (the API's 409 tells), a transaction never."""
    source = write_csv(tmp_path / "in.csv", source_rows, header=header or HEADER)
    journal = tmp_path / "j.db"
    posts: list[bytes] = []

    async def api(request: web.Request) -> web.StreamResponse:
        posts.append(await request.read())
        code_, body = taken
        return web.Response(
            status=code_, body=body, content_type="application/json",
            headers={"X-RateLimit-Limit": "²", "X-RateLimit-Remaining": "5"},
        )  # fmt: skip

    def unreadable(headers: object) -> None:
        raise ValueError("invalid literal for int() with base 10: '²'")

    with serve(api) as url, pytest.MonkeyPatch.context() as patch:
        patch.setattr("affelios_import.send.ratelimit.read", unreadable)
        done, stderr = import_into(url, source, journal, "--kind", kind, "--new-journal")
        assert done == 1, stderr  # not 3: the run was not stopped
        results = read_results(tmp_path / "in.results.csv")
        assert len(results) == 5
        assert {(r["status"], r["error_kind"]) for r in results} == {(status, code)}
        assert all("the answer could not be read (ValueError)" in r["error"] for r in results)
        held = sqlite3.connect(journal).execute(f"SELECT count(*) FROM {kind}").fetchone()[0]
        assert held == 5  # in doubt, kept
        patch.undo()
        import_into(url, source, journal, "--kind", kind)
    assert len(posts) == (10 if kind == "customers" else 5)


def test_a_request_that_never_left_the_machine_is_told_from_one_that_did() -> None:
    """With one connection held by a slow answer, a second request waits for a
    connection and times out unwritten: it provably never reached the API (and a
    transaction of it may be sent again), unlike the first, which was written."""
    from affelios_import.wire import transport as wire
    from affelios_import.wire.endpoint import Endpoint

    async def slow(request: web.Request) -> web.StreamResponse:
        await request.read()
        await asyncio.sleep(2)
        return web.Response(status=202)

    async def two(url: str) -> tuple[object, ...]:
        # a connection within 0.45 s, as the hurried endpoint's 0.5 s --timeout sets it
        shared = wire.engine_transport(base_url=url, concurrency=1, connect_timeout=0.45)
        patient, hurried = (
            Endpoint(shared, base_url=url, headers={}, timeout=timeout, path="/api/v1/x")
            for timeout in (5, 0.5)
        )
        holder = asyncio.create_task(patient.post(b"{}"))  # holds the one connection 2 s
        await asyncio.sleep(0.1)
        queued = await asyncio.gather(hurried.post(b"{}"), return_exceptions=True)
        await holder
        alone = await asyncio.gather(hurried.post(b"{}"), return_exceptions=True)
        await shared.aclose()
        return (*alone, *queued)

    with serve(slow) as url:
        written, unwritten = asyncio.run(two(url))
    assert isinstance(written, httpx.ReadTimeout), written
    assert isinstance(unwritten, httpx.PoolTimeout | httpx.ConnectTimeout), unwritten
    assert not wire.never_reached(written) and wire.never_reached(unwritten)


def test_a_refused_connection_leaves_transactions_not_sent_and_the_next_run_sends_them(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    source = write_csv(tmp_path / "tx.csv", transactions(5), header=TX_HEADER)
    journal = tmp_path / "j.db"
    code, stderr = import_into(closed, source, journal, "--kind", "transactions", "--new-journal")
    assert code in (1, 3), stderr
    results = read_results(tmp_path / "tx.results.csv")
    assert {r["status"] for r in results} == {"not_sent"}, stderr
    code, stderr = import_into(
        sandbox.url, source, journal, "--kind", "transactions", "--new-journal"
    )
    assert code == 0, stderr
    assert {r["status"] for r in read_results(tmp_path / "tx.results.csv")} == {"accepted"}
    assert len(TRANSACTIONS.taken(sandbox.server)) == 5


@pytest.mark.parametrize(
    "headers",
    [
        [("X-RateLimit-Limit", "²".encode()), ("X-RateLimit-Remaining", b"1")],
        [("Retry-After", "٣".encode())],
        [("X-RateLimit-Limit", b"10"), ("X-RateLimit-Remaining", b"0"),
         ("X-RateLimit-Reset", b"4102444800")],  # a Unix time: 2100
        [("RateLimit-Limit", b"10"), ("RateLimit-Remaining", b"0"),
         ("RateLimit-Reset", b"999999999")],  # 31 years
        [("RateLimit-Policy", b'"day";q=1;w=86400')],
    ],
)  # fmt: skip
def test_odd_or_endless_rate_limit_fields_neither_crash_nor_stall_the_run(
    tmp_path: Path, headers: list[tuple[str, bytes]]
) -> None:
    """A malformed field is ignored; a stated wait is bounded as a Retry-After is (300 s
    at most; half a second here), and a stated pace never falls below the least pace:
    every row is created, and the run ends."""
    source = write_csv(tmp_path / "c.csv", good_rows(3))

    async def api(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        response = web.Response(
            status=201, content_type="application/json",
            body=json.dumps({"id": "id-" + json.loads(body)["externalId"]}).encode(),
        )  # fmt: skip
        for name, value in headers:
            response.headers[name] = value.decode("latin-1")  # the bytes as sent
        return response

    with serve(api) as url, pytest.MonkeyPatch.context() as patch:
        patch.setattr("affelios_import.send.throttle.RETRY_AFTER_MAX", 0.5, raising=False)
        started = time.monotonic()
        code, err = import_into(url, source, tmp_path / "j.db", "--concurrency", "1")
    assert code == 0, err
    assert time.monotonic() - started < 30
    assert [r["status"] for r in read_results(tmp_path / "c.results.csv")] == ["created"] * 3


def test_a_row_stopped_while_it_waits_out_a_429_was_refused_not_maybe_created(
    tmp_path: Path,
) -> None:
    """After a 429 with `Retry-After: 999999` and a stop, row 1 was `failed` "the API may
    have created it": the API had said it did not act. It is `not_sent`, the journal
    holds nothing of it, and the next run sends it."""
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    journal = tmp_path / "j.db"

    async def api(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=429, headers={"Retry-After": "999999"})

    with serve(api) as url:
        importer = Importer(ImportConfig(base_url=url, api_key=API_KEY, journal=journal))
        timer = threading.Timer(1.0, importer.stop)
        timer.start()
        result = importer.run(source)
        timer.join()
    assert result.stopped is StopReason.INTERRUPTED
    (row,) = read_results(tmp_path / "c.results.csv")
    assert row["status"] == "not_sent", row
    assert "may have created" not in row["error"]
    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 0
