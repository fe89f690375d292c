"""The HTTP transports the importer could send through, side by side (issue 14, item 3).

Each candidate is an `httpx.AsyncBaseTransport`, driven exactly as the importer drives
its own (through `affelios_import.wire.endpoint.Endpoint.post`: an `httpx.Request`
straight to the transport, the answer read, the response closed), 64 requests in
flight, on uvloop, against the benchmarks' instant server in its own process.
Measured: rows a second, and the client process's CPU per row. The bare aiohttp loop
(no httpx) is the issue-5 baseline.

    python -m bench.transports --rows 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop

from affelios_import.wire.endpoint import Endpoint
from bench.run import generate, minimal, printed, server

CONCURRENCY = 64
HEADERS = {"X-Api-Key": "bench-key", "Content-Type": "application/json"}


def bodies(rows: int) -> list[bytes]:
    return [
        json.dumps(
            {"externalId": f"C{i:09d}", "externalBrandId": "bench",
             "registrationDate": "2025-06-28T19:29:48.174Z", "clickId": f"clk-{i:x}"},
            separators=(",", ":"),
        ).encode()
        for i in range(rows)
    ]  # fmt: skip


# --- adapters: each candidate behind httpx's transport interface ---------------------


def aiohttp_transport() -> httpx.AsyncBaseTransport:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    transport: httpx.AsyncBaseTransport = AiohttpTransport(
        client=lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
    )
    return transport


def httpcore_transport() -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    return httpx.AsyncHTTPTransport(limits=limits)


def pyreqwest_transport() -> httpx.AsyncBaseTransport:
    from pyreqwest.client import ClientBuilder
    from pyreqwest.compatibility.httpx import HttpxTransport

    transport: httpx.AsyncBaseTransport = HttpxTransport(
        ClientBuilder().max_connections(CONCURRENCY).build()
    )
    return transport


def engine_transport() -> httpx.AsyncBaseTransport:
    from affelios_import.wire.transport import engine_transport

    return engine_transport(
        base_url="http://127.0.0.1", concurrency=CONCURRENCY, connect_timeout=27
    )


class CurlTransport(httpx.AsyncBaseTransport):
    """curl_cffi's AsyncSession (libcurl's multi interface) behind httpx's interface."""

    def __init__(self) -> None:
        from curl_cffi.requests import AsyncSession

        self._session: Any = AsyncSession(max_clients=CONCURRENCY)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self._session.request(
            request.method,
            str(request.url),
            headers=dict(request.headers),
            data=request.content,
        )
        return httpx.Response(
            answer.status_code, headers=list(answer.headers.items()), content=answer.content
        )

    async def aclose(self) -> None:
        await self._session.close()


class AiosonicTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        import aiosonic
        from aiosonic.pools import PoolConfig

        pools = {":default": PoolConfig(size=CONCURRENCY, max_conn_requests=None)}
        self._client = aiosonic.HTTPClient(aiosonic.TCPConnector(pool_configs=pools))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self._client.request(
            str(request.url), request.method, headers=dict(request.headers), data=request.content
        )
        content = await answer.content()
        return httpx.Response(
            answer.status_code, headers=list(answer.headers.items()), content=content
        )

    async def aclose(self) -> None:
        await self._client.connector.cleanup()


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, its answers parsed by httptools."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or ConnectionResetError("closed by the server"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            status = self.parser.get_status_code()
            self.waiter.set_result((status, self.headers, b"".join(self.body)))

    async def exchange(self, data: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self.transport is not None
        self.headers, self.body = [], []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class HttptoolsTransport(httpx.AsyncBaseTransport):
    """A minimal HTTP/1.1 client: a pool of keep-alive connections, requests written
    whole, answers parsed by httptools (the C parser uvicorn uses). Plain http only: a
    prototype to measure, not a transport to ship."""

    def __init__(self) -> None:
        self._idle: list[_Connection] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        head = [
            f"{request.method} {url.raw_path.decode()} HTTP/1.1",
            f"Host: {url.netloc.decode()}",
        ]
        head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
        if "content-length" not in request.headers:
            head.append(f"Content-Length: {len(request.content)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.content
        connection = self._idle.pop() if self._idle else None
        if connection is None or connection.transport is None:
            _, connection = await asyncio.get_running_loop().create_connection(
                _Connection, url.host, url.port or 80
            )
        status, headers, body = await connection.exchange(data)
        if connection.parser.should_keep_alive():
            self._idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()
        return httpx.Response(status, headers=headers, content=body)

    async def aclose(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()


CANDIDATES: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "pyreqwest (the importer's lean transport, shipped)": engine_transport,
    "aiohttp (httpx-aiohttp, shipped until issue 26)": aiohttp_transport,
    "httpcore (httpx's own)": httpcore_transport,
    "curl_cffi AsyncSession": CurlTransport,
    "pyreqwest (its httpx transport)": pyreqwest_transport,
    "aiosonic": AiosonicTransport,
    "httptools protocol (prototype)": HttptoolsTransport,
}


async def drive(transport: httpx.AsyncBaseTransport, url: str, rows: list[bytes]) -> int:
    """Post every body through the importer's own `Endpoint`, 64 at a time; returns the
    201s."""
    base = httpx.URL(url)
    endpoint = Endpoint(
        transport, base_url=str(base.copy_with(path="/")), headers=HEADERS, timeout=30,
        path=base.path,
    )  # fmt: skip
    created = 0
    queue = iter(rows)

    async def worker() -> None:
        nonlocal created
        for body in queue:
            answer = await endpoint.post(body)
            created += answer.status == 201

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENCY):
                group.create_task(worker())
    finally:
        await transport.aclose()
    return created


def measure(
    make: Callable[[], httpx.AsyncBaseTransport], url: str, rows: list[bytes]
) -> dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        created = runner.run(drive(make(), url, rows))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if created != len(rows):
        raise RuntimeError(f"{created} of {len(rows)} created")
    return {"rate": len(rows) / wall, "cpu_us": cpu / len(rows) * 1e6}


def bare(url: str, rows: int) -> float:
    """Rows a second of `bench/bare.py`, the issue-5 baseline, in its own process."""
    with tempfile.TemporaryDirectory() as folder:
        data = generate(Path(folder) / "rows.csv", rows)
        answer = printed("bench.bare", data, "--concurrency", CONCURRENCY, "--url", url)
    return float(answer["rows"] / answer["seconds"])


def candidate(name: str, url: str, rows: int) -> dict[str, float] | str:
    """One candidate's figures, measured in a process of its own; or why it failed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.transports", "--rows", str(rows), "--one", name,
         "--url", url],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        return (done.stderr.strip().splitlines() or ["no output"])[-1]
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one candidate, in this process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(CANDIDATES[args.one], args.url, bodies(args.rows))))
        return
    bare_rates: list[float] = []
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CANDIDATES}
    failed: dict[str, str] = {}
    for _ in range(args.repeats):
        for name in ("bare", *CANDIDATES):
            # httpx's own pool is an order of magnitude slower: a tenth of the rows
            rows = args.rows // 10 if name.startswith("httpcore") else args.rows
            argv, port = minimal()
            with server(argv, port) as base:
                url = f"{base}/api/v1/customer"
                if name == "bare":
                    bare_rates.append(bare(url, args.rows))
                elif isinstance(got := candidate(name, url, rows), str):
                    failed[name] = got
                else:
                    runs[name].append(got)
    baseline = statistics.median(bare_rates)
    print(f"{args.rows:,} rows, {CONCURRENCY} in flight, medians of {args.repeats}")
    print("| transport (behind httpx's interface, on uvloop) | rows/s | vs bare aiohttp | "
          "client CPU µs/row |")  # fmt: skip
    print("|---|---|---|---|")
    print(
        f"| bare aiohttp loop (no httpx, asyncio's loop: the baseline) | {baseline:,.0f} | 1.00 | |"
    )
    for name, figures in runs.items():
        if figures:
            rate = statistics.median(f["rate"] for f in figures)
            cpu = statistics.median(f["cpu_us"] for f in figures)
            print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f} | {cpu:.0f} |")
    for name, why in failed.items():
        print(f"| {name} | failed: {why} | | |")


if __name__ == "__main__":
    main()
