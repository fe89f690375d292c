"""The HTTP engine's guarantees, one test each, over real HTTP on loopback: certificates
trusted from `SSL_CERT_FILE` and `SSL_CERT_DIR`, a proxy from the environment (and
`NO_PROXY`), gzip, deflate and chunked answers, and keep-alive connections the server
closes. (Redirects, `--timeout`, connect/write/read told apart and untrusted
certificates have theirs in test_hostile.py and test_faults.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import ssl
import time
import zlib
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from click.testing import CliRunner

from affelios_import.cli.main import main
from affelios_import.sandbox import serve_app_in_thread
from affelios_import.wire.endpoint import Body
from tests.conftest import API_KEY, good_rows, read_results, write_csv
from tests.hostile import serve
from tests.kinds import TX_HEADER, transactions


def run(url: str, source: Path, *args: str, env: dict[str, str | None] | None = None) -> int:
    result = CliRunner().invoke(
        main,
        [str(source), "--base-url", url, "--journal", str(source.with_suffix(".db")), *args],
        env={"AFFELIOS_API_KEY": API_KEY, "AFFELIOS_BASE_URL": None, **(env or {})},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code


def creating(seen: list[web.Request] | None = None, **headers: str) -> web.Application:
    """An API that creates every customer it is sent, with an id of its own."""

    async def create(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if seen is not None:
            seen.append(request)
        record = json.dumps({"id": f"aff-{body['externalId']}"}).encode()
        return web.Response(status=201, body=record, content_type="application/json",
                            headers=headers)  # fmt: skip

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", create)
    return app


def ids(source: Path) -> dict[str, str]:
    results = read_results(source.with_suffix(".results.csv"))
    assert {r["status"] for r in results} == {"created"}, results
    return {r["externalId"]: r["affelios_id"] for r in results}


@pytest.mark.parametrize("where", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_a_certificate_trusted_from_the_environment_is_trusted(tmp_path: Path, where: str) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    folder = tmp_path / "certs"
    folder.mkdir()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    trusted = str(folder / "ca.pem") if where == "SSL_CERT_FILE" else str(folder)
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    with serve_app_in_thread(creating(), ssl_context=context) as url:
        assert url.startswith("https://")
        code = run(url, source, env={where: trusted})
    assert code == 0
    assert ids(source) == {f"C{i:05d}": f"aff-C{i:05d}" for i in range(1, 4)}


def test_the_proxy_the_environment_names_carries_every_request(tmp_path: Path) -> None:
    """`HTTP_PROXY` names a proxy; the API's host does not even resolve, so only the
    proxy can have answered. It was asked for the API's URL, with the key."""
    seen: list[web.Request] = []
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    with serve_app_in_thread(creating(seen)) as proxy:
        code = run("http://api.affelios.invalid", source, "--allow-insecure-http",
                   env={"HTTP_PROXY": proxy})  # fmt: skip
    assert code == 0
    assert len(ids(source)) == 3
    assert {str(r.url) for r in seen} == {"http://api.affelios.invalid/api/v1/customer"}
    assert {r.headers["X-Api-Key"] for r in seen} == {API_KEY}


@pytest.mark.parametrize("proxy", ["a proxy", "http://user:s3cret-pw@"])
def test_a_proxy_the_engine_cannot_use_stops_the_run_before_anything(
    tmp_path: Path, proxy: str
) -> None:
    """One line and exit 2, the variable named, its credentials not shown; no results,
    errors file or journal written (it was a traceback, after the outputs were opened)."""
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    result = CliRunner().invoke(
        main,
        [str(source), "--base-url", "http://api.affelios.invalid", "--allow-insecure-http",
         "--journal", str(tmp_path / "j.db")],
        env={"AFFELIOS_API_KEY": API_KEY, "AFFELIOS_BASE_URL": None, "HTTP_PROXY": proxy},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("affelios-import: HTTP_PROXY ") and "not a proxy URL" in line
    assert "s3cret" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv"]


def test_a_host_no_proxy_exempts_is_reached_directly(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a proxy nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    with serve_app_in_thread(creating()) as url:
        code = run(url, source, env={"HTTP_PROXY": dead, "NO_PROXY": "127.0.0.1"})
    assert code == 0
    assert len(ids(source)) == 3


@pytest.mark.parametrize("coding", ["gzip", "deflate", "chunked"])
def test_a_packed_or_chunked_answer_is_read_whole(tmp_path: Path, coding: str) -> None:
    async def packed(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = json.dumps({"id": f"aff-{body['externalId']}", "pad": "x" * 3000}).encode()
        headers = {"Content-Type": "application/json"}
        if coding == "chunked":
            response = web.StreamResponse(status=201, headers=headers)
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(record), 100):  # 31 chunks, each written alone
                await response.write(record[start : start + 100])
                await asyncio.sleep(0)
            await response.write_eof()
            return response
        headers["Content-Encoding"] = coding
        packer = gzip.compress if coding == "gzip" else zlib.compress
        return web.Response(status=201, body=packer(record), headers=headers)

    source = write_csv(tmp_path / "c.csv", good_rows(4))
    with serve(packed) as url:
        code = run(url, source)
    assert code == 0
    assert ids(source) == {f"C{i:05d}": f"aff-C{i:05d}" for i in range(1, 5)}


@pytest.mark.parametrize("length", ["Content-Length", "chunked"])
def test_a_record_longer_than_a_block_is_read_whole(tmp_path: Path, length: str) -> None:
    """A record of 300 KB (the engine hands 64 KB over at a time): its id is read."""

    async def long(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = json.dumps({"pad": "x" * 300_000, "id": f"aff-{body['externalId']}"})
        headers = {"Content-Type": "application/json"}
        if length == "Content-Length":
            return web.Response(status=201, body=record.encode(), headers=headers)
        response = web.StreamResponse(status=201, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(record), 10_000):
            await response.write(record[start : start + 10_000].encode())
        await response.write_eof()
        return response

    source = write_csv(tmp_path / "c.csv", good_rows(2))
    with serve(long) as url:
        code = run(url, source)
    assert code == 0
    assert ids(source) == {"C00001": "aff-C00001", "C00002": "aff-C00002"}


@pytest.mark.parametrize("how", ["Connection: close", "idle keep-alive closed"])
def test_connections_the_server_closes_lose_no_transaction_and_send_none_twice(
    tmp_path: Path, how: str
) -> None:
    """A server that closes each connection after its answer, or closes idle ones after
    50 ms while the run paces its requests 100 ms apart: every transaction is taken
    once, none is left in doubt by a connection found closed."""
    taken: list[str] = []

    async def take(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        taken.append(body["externalId"])
        headers = {"Connection": "close"} if how == "Connection: close" else {}
        return web.Response(status=202, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", take)
    source = write_csv(tmp_path / "t.csv", transactions(12), header=TX_HEADER)
    pace = ["--rate", "10", "--concurrency", "2"] if how != "Connection: close" else []
    with serve_app_in_thread(app, keepalive_timeout=0.05) as url:
        code = run(url, source, "--kind", "transactions", "--new-journal", *pace)
    assert code == 0
    results = read_results(source.with_suffix(".results.csv"))
    assert {r["status"] for r in results} == {"accepted"}, results
    assert sorted(taken) == sorted(r["External Transaction ID"] for r in results)
    assert len(taken) == 12


def test_a_cancellation_the_engine_swallows_is_raised_all_the_same() -> None:
    """An engine's step that ends normally though its task was cancelled meanwhile (as
    pyreqwest's can) must not take the cancellation with it: a worker cancelled so went
    on waiting for rows, and a run on a full disk never ended."""
    from collections.abc import Generator

    from affelios_import.wire.transport import _kept_cancel

    class Swallowing:
        """Ends with an answer, even when cancelled while it waits."""

        def __await__(self) -> Generator[None, None, str]:
            with contextlib.suppress(asyncio.CancelledError):
                yield
            return "answer"

    class Converting:
        """Raises an error of its own when cancelled while it waits."""

        def __await__(self) -> Generator[None, None, str]:
            try:
                yield
            except asyncio.CancelledError:
                raise RuntimeError("the request was cancelled") from None
            return "answer"

    async def cancelled(step: Swallowing | Converting) -> bool:
        task = asyncio.ensure_future(_kept_cancel(step))
        await asyncio.sleep(0)  # it waits in the engine's step now
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return task.cancelled()

    async def scenario() -> tuple[bool, bool, str]:
        left_alone = await _kept_cancel(Swallowing())  # not cancelled: its answer
        return await cancelled(Swallowing()), await cancelled(Converting()), left_alone

    assert asyncio.run(scenario()) == (True, True, "answer")


def test_no_cancellation_is_lost_around_an_answer_s_arrival() -> None:
    """The real engine, cancelled at every moment around an answer's arrival, 3,000
    times: each request either ends before the cancel or is cancelled, never ends as
    if no cancel had come (2 to 12 did before, with the test's own loop; 63 of 3,000
    with uvloop's; see `transport._kept_cancel`)."""
    import random

    import httpx

    from affelios_import.wire.transport import engine_transport

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"id": "x"}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/customer", answer)
    with serve_app_in_thread(app) as url:

        async def scenario() -> dict[str, int]:
            engine = engine_transport(base_url=url, concurrency=4, connect_timeout=5.0)
            request = httpx.Request("POST", f"{url}/api/v1/customer", content=b"{}")

            async def one() -> None:
                response = await engine.handle_async_request(request)
                try:
                    assert isinstance(response.stream, Body)
                    await response.stream.read_at_most(1000)
                finally:
                    await response.aclose()

            # Cancels spread around the time a request takes on this machine.
            took = []
            for _ in range(20):
                started = time.perf_counter()
                await one()
                took.append(time.perf_counter() - started)
            usual = sorted(took)[len(took) // 2]
            seen = {"finished": 0, "cancelled": 0, "lost": 0}
            chance = random.Random(7)
            for _ in range(3000):
                task = asyncio.ensure_future(one())
                await asyncio.sleep(2 * usual * chance.random())
                asked = task.cancel()
                try:
                    await task
                    seen["lost" if asked else "finished"] += 1
                except asyncio.CancelledError:
                    seen["cancelled"] += 1
            await engine.aclose()
            return seen

        seen = asyncio.run(scenario())
    assert seen["lost"] == 0, seen
    assert seen["cancelled"] > 100 and seen["finished"] > 100, seen  # cancels at every moment
