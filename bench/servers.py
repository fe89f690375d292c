"""Servers the benchmarks run against, each in its own process on 127.0.0.1.

`instant`: the least a create endpoint can do (read the body, answer 201 with an id), so
that a benchmark against it measures the client, not the server.
"""

from __future__ import annotations

import argparse
import itertools

from aiohttp import web


def instant_app() -> web.Application:
    ids = itertools.count(1)

    async def create(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": f"aff-{next(ids)}"}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/customer", create)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(instant_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
