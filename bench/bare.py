"""The baseline of the CPU-bound figure: a bare aiohttp loop that only posts.

It posts the same rows as the importer (their JSON bodies, built by the importer's own
function before the clock starts), `--concurrency` at a time over one session, reads
each answer, and prints the rows per second of the posting alone.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time

import aiohttp

# Loaded as in the importer's process (and as this loop always had it, through the body
# builder's module until issue 22 made that module light): with pandas' objects in the
# oldest generation, the collector's full passes are rarer, and this loop posts about
# 20% more rows a second (11,300 against 13,700 here). Without it, the baseline would
# drop and every ratio to it rise, with nothing in the importer changed.
import pandas  # noqa: F401

from affelios_import.kinds.customers import build_payload, encode


def bodies(path: str) -> list[bytes]:
    """The request bodies of the file's rows, exactly as the importer builds them."""
    with open(path, newline="", encoding="utf-8") as f:
        return [encode(build_payload(row)) for row in csv.DictReader(f)]


async def post_all(url: str, rows: list[bytes], concurrency: int) -> float:
    headers = {
        "Content-Type": "application/json",
        "X-Api-Key": os.environ.get("AFFELIOS_API_KEY", "bench"),
    }
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(rows)

        async def worker() -> None:
            for body in queue:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 201, response.status

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv")
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    rows = bodies(args.csv)
    seconds = asyncio.run(post_all(args.url, rows, args.concurrency))
    print(json.dumps({"rows": len(rows), "seconds": seconds}))


if __name__ == "__main__":
    main()
