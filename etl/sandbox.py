"""A local stand-in for the Affelios customer API, for the demo, the tests and benchmarks.

It speaks the contract in `schemas/openapi.yaml` and checks every request body against
that contract itself (with an OpenAPI schema validator, not the importer's pandera
schema), so that a bug on one side is caught by the other:

- 401 without the right `X-Api-Key`;
- 400 with `{"errors": [...]}` for a body that breaks the contract;
- 409 for a second create of the same `externalBrandId` + `externalId`;
- 201 with the full customer object otherwise; `GET /api/v1/customer/{id}`;
- `POST /api/v1/transaction`: 202 with no body for a transaction the contract allows
  (amounts must be JSON numbers: a string is a 400). A repeated transaction is accepted
  again and counted again, as the API is feared to do: `transactions` keeps every one
  accepted, with its amounts exactly as written in the JSON (`Decimal`), so tests can
  prove the importer never sends one twice.

Faults on demand, for tests and benchmarks:
- `fail_rate`: answer 500 or 503 (`fail_statuses`; nothing created);
- `throttle_rate`: answer 429 with a `Retry-After` (seconds, an HTTP date, none, or a mix);
- `drop_rate`: close the connection without an answer (nothing created);
- `late_rate`: create the customer, then answer only after `late_seconds` (by which time
  the client has given up: the answer is lost, the customer exists);
- `rate_limit`: a token bucket of that many requests a second (or, `rate_limit_shape`,
  a 1-second sliding window or a fixed window of each second); 429 beyond it;
- `latency_ms`: a delay before every answer.
The faults apply to both endpoints. `GET /_sandbox/customers`, `/_sandbox/transactions`
and `/_sandbox/stats` let tests see the store and what was asked. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import ssl
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from importlib.resources import files
from typing import Any

import click
import yaml
from aiohttp import web
from openapi_schema_validator import OAS30Validator

HOST = "127.0.0.1"


def contract_schema(name: str) -> dict[str, Any]:
    """A schema from the contract's `components/schemas`."""
    spec = yaml.safe_load(
        files("affelios_import.schemas").joinpath("openapi.yaml").read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


RETRY_AFTER_MODES = ("date", "none", "mixed")


@dataclass(kw_only=True)
class Faults:
    fail_rate: float = 0.0
    fail_statuses: tuple[int, ...] = (500, 503)
    throttle_rate: float = 0.0
    drop_rate: float = 0.0
    late_rate: float = 0.0
    late_seconds: float = 2.0
    retry_after: str = "1"  # seconds, or one of RETRY_AFTER_MODES
    rate_limit: float | None = None  # requests per second
    latency_ms: float = 0.0
    seed: int | None = None
    rate_limit_fields: bool = False  # state rate_limit in the IETF draft's header fields
    rate_limit_shape: str = "bucket"  # the limiter: one of LIMITERS


class SlidingWindow:
    """At most `rate` requests in any second (a log of the last second's requests): the
    limiter of many gateways. Its fields say what is left of the last second, and when a
    request leaves it (in whole seconds, rounded up, as such fields are)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._quota = max(1, int(rate))
        self._taken: deque[float] = deque()
        self._clock = clock

    def _expire(self, now: float) -> None:
        while self._taken and self._taken[0] <= now - 1.0:
            self._taken.popleft()

    def take(self) -> bool:
        now = self._clock()
        self._expire(now)
        if len(self._taken) < self._quota:
            self._taken.append(now)
            return True
        return False

    def fields(self) -> dict[str, str]:
        now = self._clock()
        self._expire(now)
        left = self._quota - len(self._taken)
        reset = 0 if left > 0 or not self._taken else math.ceil(self._taken[0] + 1.0 - now)
        return {
            "RateLimit-Policy": f'"default";q={self._quota};w=1',
            "RateLimit": f'"default";r={left};t={reset}',
        }


class FixedWindow:
    """At most `rate` requests in each whole second of the clock (the counter starts
    again at every second): a burst of twice the rate can pass across a boundary."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._quota = max(1, int(rate))
        self._clock = clock
        self._second = -1
        self._count = 0

    def take(self) -> bool:
        second = int(self._clock())
        if second != self._second:
            self._second, self._count = second, 0
        if self._count < self._quota:
            self._count += 1
            return True
        return False

    def fields(self) -> dict[str, str]:
        now = self._clock()
        used = self._count if int(now) == self._second else 0
        return {
            "RateLimit-Policy": f'"default";q={self._quota};w=1',
            "RateLimit": f'"default";r={self._quota - used};t={math.ceil(int(now) + 1 - now)}',
        }


class TokenBucket:
    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * 0.2)
        self.tokens = self.capacity
        self._clock = clock
        self.at = clock()

    def fields(self) -> dict[str, str]:
        """The bucket as the IETF draft's RateLimit fields: the quota a second, and what
        is left (the window resets when a token is back, within the second)."""
        return {
            "RateLimit-Policy": f'"default";q={round(self.rate)};w=1',
            "RateLimit": f'"default";r={int(self.tokens)};t={0 if self.tokens >= 1 else 1}',
        }

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# The limiters an API may use, by name (`--rate-limit-shape`).
Limiter = TokenBucket | SlidingWindow | FixedWindow
LIMITERS: dict[str, type[Limiter]] = {
    "bucket": TokenBucket, "sliding": SlidingWindow, "fixed": FixedWindow,
}  # fmt: skip


@dataclass
class Sandbox:
    """The server's state: its key, its faults, its customers and what it was asked."""

    api_key: str
    faults: Faults = field(default_factory=Faults)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[tuple[str, str], str] = field(default_factory=dict)
    transactions: list[dict[str, Any]] = field(default_factory=list)  # repeats too
    stats: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._validator = OAS30Validator(contract_schema("CustomerCreate"))
        self._transaction_validator = OAS30Validator(contract_schema("TransactionCreate"))
        self._random = random.Random(self.faults.seed)
        limit, shape = self.faults.rate_limit, LIMITERS[self.faults.rate_limit_shape]
        self._bucket = shape(limit) if limit else None

    def _retry_after(self) -> dict[str, str]:
        mode = self.faults.retry_after
        if mode == "mixed":
            mode = self._random.choice(("1", "date", "none"))
        if mode == "none":
            return {}
        if mode == "date":
            # HTTP dates have whole seconds: two from now is one to two seconds' wait.
            when = datetime.now(UTC) + timedelta(seconds=2)
            return {"Retry-After": format_datetime(when, usegmt=True)}
        return {"Retry-After": mode}

    def _throttled(self) -> web.Response:
        self.stats["429"] += 1
        return web.json_response(
            {"errors": ["too many requests"]}, status=429, headers=self._retry_after()
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/customer", self._create)
        app.router.add_get("/api/v1/customer/{id}", self._get)
        app.router.add_post("/api/v1/transaction", self._create_transaction)
        app.router.add_get("/_sandbox/customers", self._list)
        app.router.add_get("/_sandbox/transactions", self._list_transactions)
        app.router.add_get("/_sandbox/stats", self._stats)
        return app

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("X-Api-Key") != self.api_key:
            self.stats["401"] += 1
            return web.json_response({"errors": ["missing or invalid X-Api-Key"]}, status=401)
        return None

    async def _faulted(self, request: web.Request) -> web.Response | tuple[bytes, bool]:
        """The answer of a request the faults decide (refused, throttled, failed, or a
        dropped connection), or its body to act on and whether to answer it late."""
        self.stats["requests"] += 1
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if (refused := self._refuse(request)) is not None:
            return refused
        if self._bucket is not None and not self._bucket.take():
            response = self._throttled()
            if self.faults.rate_limit_fields:
                response.headers.update(self._bucket.fields())
            return response
        faults = self.faults
        draw = self._random.random()
        if draw < faults.throttle_rate:
            return self._throttled()
        draw -= faults.throttle_rate
        if draw < faults.fail_rate:
            status = self._random.choice(faults.fail_statuses)
            self.stats[str(status)] += 1
            return web.json_response({"errors": ["injected fault"]}, status=status)
        draw -= faults.fail_rate
        raw = await request.read()
        if draw < faults.drop_rate:
            self.stats["dropped"] += 1
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client
        return raw, draw - faults.drop_rate < faults.late_rate

    def _invalid(self, raw: bytes, validator: OAS30Validator) -> web.Response | Any:
        """A 400 for a body that is not JSON or breaks the contract; else the body (its
        numbers as `Decimal`: exactly as written)."""
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError:
            self.stats["400"] += 1
            return web.json_response({"errors": ["body is not JSON"]}, status=400)
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
            for e in validator.iter_errors(body)
        ]
        if errors:
            self.stats["400"] += 1
            return web.json_response({"errors": errors}, status=400)
        return body

    async def _answer_late(self, late: bool) -> None:
        if late:
            self.stats["late"] += 1
            await asyncio.sleep(self.faults.late_seconds)

    async def _create(self, request: web.Request) -> web.Response:
        if isinstance(faulted := await self._faulted(request), web.Response):
            return faulted
        raw, late = faulted
        if isinstance(body := self._invalid(raw, self._validator), web.Response):
            return body
        key = (body["externalBrandId"], body["externalId"])
        if key in self.by_key:
            self.stats["409"] += 1
            return web.json_response(
                {"errors": [f"customer {key[1]} already exists for brand {key[0]}"]}, status=409
            )
        customer = _customer(body)
        self.customers[customer["id"]] = customer
        self.by_key[key] = customer["id"]
        self.stats["201"] += 1
        await self._answer_late(late)
        faults = self.faults
        fields = self._bucket.fields() if self._bucket and faults.rate_limit_fields else {}
        return web.json_response(customer, status=201, headers=fields)

    async def _create_transaction(self, request: web.Request) -> web.Response:
        if isinstance(faulted := await self._faulted(request), web.Response):
            return faulted
        raw, late = faulted
        if isinstance(body := self._invalid(raw, self._transaction_validator), web.Response):
            return body
        self.transactions.append(body)  # a repeat is counted again
        self.stats["202"] += 1
        await self._answer_late(late)
        faults = self.faults
        fields = self._bucket.fields() if self._bucket and faults.rate_limit_fields else {}
        return web.Response(status=202, headers=fields)

    async def _get(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        customer = self.customers.get(request.match_info["id"])
        if customer is None:
            return web.json_response({"errors": ["no such customer"]}, status=404)
        return web.json_response(customer)

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.customers.values()))

    async def _list_transactions(self, request: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(self.transactions, default=str), content_type="application/json"
        )

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats))


def _customer(body: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "id": uuid.uuid4().hex[:24],
        "operatorId": "sandbox",
        "createdTs": now,
        "updatedTs": now,
        "isIdEmpty": False,
        "createdBy": "affelios-sandbox",
        "importId": None,
        "externalId": body["externalId"],
        "externalBrandId": body["externalBrandId"],
        "username": body.get("username"),
        "country": body.get("country"),
        "country_code": body.get("country_code"),
        "registerIp": None,
        "referringUrl": None,
        "registrationDate": body["registrationDate"],
        "hasDeposited": False,
        "ftdDate": None,
        "cpaQualified": False,
        "cpaQualificationDate": None,
        "lifetimeRevenue": 0,
        "firstDepositAmount": 0,
        "lifetimeDeposits": 0,
        "lifetimeCommission": 0,
        "tracking": {"clickId": body.get("clickId"), "brandId": body.get("brandId")},
        "revShareExcluded": body.get("revShareExcluded"),
        "cpaExcluded": body.get("cpaExcluded"),
        # Not in the contract's response: the body exactly as received, for tests.
        "_request": body,
    }


@contextmanager
def serve_in_thread(
    sandbox: Sandbox, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Run `sandbox` on 127.0.0.1 in a background thread; yields its base URL."""
    with serve_app_in_thread(sandbox.app(), port=port, ssl_context=ssl_context) as url:
        yield url


@contextmanager
def serve_app_in_thread(
    app: web.Application,
    *,
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    handler_cancellation: bool = False,
    keepalive_timeout: float = 75.0,
) -> Iterator[str]:
    """Run an aiohttp app on 127.0.0.1 in a background thread; yields its base URL.
    An idle connection is closed after `keepalive_timeout` seconds (aiohttp's 75 s)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=handler_cancellation,
        keepalive_timeout=keepalive_timeout,
    )
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock, ssl_context=ssl_context).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="affelios-sandbox", daemon=True)
    thread.start()
    started.wait(10)
    try:
        scheme = "https" if ssl_context else "http"
        yield f"{scheme}://{HOST}:{sock.getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        sock.close()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--port", type=int, default=8080, show_default=True, help="Port on 127.0.0.1.")
@click.option(
    "--api-key",
    envvar="AFFELIOS_SANDBOX_API_KEY",
    required=True,
    help="The key clients must send (or AFFELIOS_SANDBOX_API_KEY).",
)
@click.option(
    "--fail-rate", type=click.FloatRange(0, 1), default=0.0, help="Share answered 500/503."
)
@click.option(
    "--fail-status",
    "fail_statuses",
    type=click.IntRange(500, 599),
    multiple=True,
    default=(500, 503),
    show_default=True,
    help="The statuses of --fail-rate's answers (repeatable).",
)
@click.option(
    "--throttle-rate", type=click.FloatRange(0, 1), default=0.0, help="Share answered 429."
)
@click.option(
    "--retry-after",
    default="1",
    show_default=True,
    help="Retry-After with 429: seconds, 'date' (an HTTP date), 'none' or 'mixed'.",
)
@click.option(
    "--drop-rate", type=click.FloatRange(0, 1), default=0.0, help="Share dropped unanswered."
)
@click.option(
    "--late-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share created, then answered only after --late-seconds.",
)
@click.option("--late-seconds", type=click.FloatRange(0), default=2.0, show_default=True)
@click.option(
    "--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests/s; 429 beyond."
)
@click.option("--latency-ms", type=click.FloatRange(0), default=0.0, help="Delay before answering.")
@click.option("--seed", type=int, default=None, help="Seed for the fault draws.")
@click.option(
    "--rate-limit-fields",
    is_flag=True,
    help="State --rate-limit in RateLimit-Policy and RateLimit header fields (IETF draft).",
)
@click.option(
    "--rate-limit-shape",
    type=click.Choice(sorted(LIMITERS)),
    default="bucket",
    show_default=True,
    help="--rate-limit's limiter: a token bucket, a 1-second sliding window, or a fixed "
    "window of each whole second.",
)
def main(port: int, api_key: str, **faults: Any) -> None:
    """A local Affelios API (customers and transactions) that speaks the contract, for
    trying the importer.

    \b
    Example:
      AFFELIOS_SANDBOX_API_KEY=test affelios-sandbox --port 8080 --throttle-rate 0.05
      AFFELIOS_API_KEY=test affelios-import customers.csv --base-url http://127.0.0.1:8080
    """
    retry_after = faults["retry_after"]
    if not (retry_after.isdigit() or retry_after in RETRY_AFTER_MODES):
        raise click.BadParameter("seconds, 'date', 'none' or 'mixed'", param_hint="--retry-after")
    sandbox = Sandbox(api_key=api_key, faults=Faults(**faults))  # one option per field
    click.echo(f"affelios-sandbox listening on http://{HOST}:{port}", err=True)
    web.run_app(sandbox.app(), host=HOST, port=port, print=None, access_log=None)
