"""A hostile API for tests: a real HTTP server on a loopback port that answers every
request with whatever the test's handler says (any status, body, header, or a trickle)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from affelios_import.sandbox import serve_app_in_thread

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 in a background thread; yields the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    with serve_app_in_thread(app, handler_cancellation=True) as url:
        yield url


def answer(status: int, body: bytes = b"", content_type: str = "text/plain") -> Handler:
    """A handler that gives every request the same answer."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=status, body=body, content_type=content_type)

    return handle
