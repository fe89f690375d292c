"""The tool's own work a row (issue 26, item 2): the real importer, through its Python
API, on an endpoint that answers at once in the same process (no network, no HTTP
engine, no server sharing the cores). Reading, checks, planning, the journal's intents
and records, the sending machinery, outcomes, counts and the results file are all in it.

    python -m bench.inprocess rows.csv --concurrency 64

Prints the run's `seconds` (start-up excluded, as `--summary-json` says it) and the
process's CPU time from the run's start, as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from affelios_import import ImportConfig, Importer
from affelios_import.cli.process import tune
from affelios_import.wire.endpoint import Body, LeanTransport


class _Record(Body):
    def __init__(self, record: bytes) -> None:
        self._record = record

    async def read_at_most(self, limit: int) -> tuple[bytes, bool]:
        return self._record[:limit], len(self._record) <= limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._record


class Instant(LeanTransport):
    """Creates every record it is sent, at once, with an id of its own."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._headers = [("Content-Type", "application/json")]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        record = b'{"id": "aff-%d"}' % next(self._ids)
        return httpx.Response(201, headers=self._headers, stream=_Record(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--brand", default="bench")
    args = parser.parse_args()
    tune()  # the command's own settings of the collector and the allocators
    with tempfile.TemporaryDirectory() as folder:
        config = ImportConfig(
            base_url="http://127.0.0.1:9", api_key="bench-key", brand=args.brand,
            journal=os.environ.get("BENCH_JOURNAL") or Path(folder) / "journal.db",
            concurrency=args.concurrency,
        )  # fmt: skip
        cpu = time.process_time()
        result = Importer(config, transport=Instant()).run(
            args.csv, out=Path(folder) / "results.csv"
        )
        cpu = time.process_time() - cpu
    print(json.dumps({"rows": result.rows, "seconds": result.seconds, "cpu": cpu,
                      "created": result.counts["created"]}))  # fmt: skip


if __name__ == "__main__":
    main()
