"""The server the benchmarks run against, in its own process on 127.0.0.1.

The least a create endpoint can do, so that a benchmark measures the client, not the
server: read the body, answer 201 with an id, or 409 for a key it already holds (as the
API does). `--latency-ms` delays every answer; `--rate-limit` answers 429 with
`Retry-After: 1` beyond that many requests a second (the sandbox's token bucket), and
`--rate-limit-fields` states that limit in every answer in the IETF draft's `RateLimit`
fields; `--rate-limit-shape` is the limiter: a token bucket (the default), a 1-second
sliding window, or a fixed window of each whole second. `GET /_stats` counts the answers.

(Not the sandbox: it checks every body against the contract, and at 64 requests in
flight and 100 ms of latency a bare aiohttp loop got only 541 answers a second from it,
short of the 640 the latency-bound figure asks of the client.)

It runs on uvloop. A remote API spends its CPU on its own machines; this one shares the
benchmark's two cores with the client, and on asyncio's loop its answers at 64 in flight
took 100.9 ms in the handler instead of 100, and about 57 µs of CPU each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter

import uvloop
from aiohttp import web

from affelios_import.sandbox import LIMITERS


def app(
    *,
    latency_ms: float = 0.0,
    rate_limit: float | None = None,
    fields: bool = False,
    shape: str = "bucket",
) -> web.Application:
    stats: Counter[str] = Counter()
    keys: set[tuple[str, str]] = set()
    bucket = LIMITERS[shape](rate_limit) if rate_limit else None

    async def create(request: web.Request) -> web.Response:
        stats["requests"] += 1
        body = await request.read()
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        taken = bucket is None or bucket.take()
        limits = bucket.fields() if bucket is not None and fields else {}
        if not taken:
            stats["429"] += 1
            return web.json_response(
                {"errors": ["too many"]}, status=429, headers={"Retry-After": "1", **limits}
            )
        customer = json.loads(body)
        key = (customer["externalBrandId"], customer["externalId"])
        if key in keys:
            stats["409"] += 1
            return web.json_response({"errors": ["exists"]}, status=409)
        keys.add(key)
        stats["201"] += 1
        return web.json_response({"id": f"aff-{len(keys)}"}, status=201, headers=limits)

    async def counts(request: web.Request) -> web.Response:
        return web.json_response(dict(stats))

    application = web.Application()
    application.router.add_post("/api/v1/customer", create)
    application.router.add_get("/_stats", counts)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--rate-limit-fields", action="store_true")
    parser.add_argument("--rate-limit-shape", choices=sorted(LIMITERS), default="bucket")
    args = parser.parse_args()
    limit = {"rate_limit": args.rate_limit, "fields": args.rate_limit_fields}
    web.run_app(
        app(latency_ms=args.latency_ms, shape=args.rate_limit_shape, **limit),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
