"""`make bench`: how fast the importer is, as ratios against baselines run beside it.

Each benchmark generates its data, starts its own server on 127.0.0.1 (bench/servers.py),
runs the real
`affelios-import` command as a user would (a separate process, its key in the
environment) and measures a baseline on the same machine in the same run. One line per
figure, with its target; the exit code is 1 if any figure misses its target.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.pg import Cluster, cluster  # a throwaway PostgreSQL server, as the tests'

BIN = Path(sys.executable).parent
KEY = "bench-key"
BRAND = "bench"
HEADER = (
    "externalId",
    "externalBrandId",
    "registrationDate",
    "clickId",
    "username",
    "country",
    "country_code",
    "revShareExcluded",
    "cpaExcluded",
)
COUNTRIES = (("Malta", "MT"), ("Sweden", "SE"), ("Ireland", "IE"), ("Brazil", "BR"))


def generate(path: Path, rows: int) -> Path:
    """A customer export of `rows` valid rows, 9 text columns (about 90 bytes a row)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(rows):
            country, code = COUNTRIES[i % len(COUNTRIES)]
            out.writerow(
                (
                    f"C{i:09d}",
                    BRAND,
                    f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T19:29:48.{i % 1000:03d}Z",
                    f"clk-{i:x}",
                    f"user{i}",
                    country,
                    code,
                    "false" if i % 3 else "true",
                    "",
                )
            )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(argv: list[str], port: int) -> Iterator[str]:
    """Start a server process and wait until it accepts connections; stop it after."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {argv}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def minimal(*options: str) -> tuple[list[str], int]:
    """The benchmarks' own server (bench/servers.py), on a free port."""
    port = free_port()
    return [sys.executable, "-m", "bench.servers", "--port", str(port), *options], port


@dataclass
class Ran:
    seconds: float  # wall time of the whole process
    peak_mb: float  # its peak resident memory
    cpu: float  # its CPU time, user and system, in seconds
    summary: dict[str, object]
    stdout: str


def measured(argv: list[str], *, env: dict[str, str] | None = None) -> Ran:
    """Run a process under a small wrapper that reports its own child's peak RSS."""
    wrapper = (
        "import json, os, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        "seconds = time.perf_counter() - t\n"
        "out, err = p.stdout.read().decode(), p.stderr.read().decode()\n"
        "print(json.dumps({'code': os.waitstatus_to_exitcode(status), 'seconds': seconds,\n"
        "  'peak_kib': usage.ru_maxrss, 'cpu': usage.ru_utime + usage.ru_stime,\n"
        "  'out': out, 'err': err[-2000:]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *argv], env=env, capture_output=True, text=True
    )
    report = json.loads(done.stdout)
    if report["code"] not in (0,):
        raise RuntimeError(f"{' '.join(argv[:2])} exited {report['code']}: {report['err']}")
    return Ran(
        seconds=report["seconds"], peak_mb=report["peak_kib"] / 1024, cpu=report["cpu"],
        summary={}, stdout=report["out"],
    )  # fmt: skip


def import_(csv_path: Path, work: Path, *extra: str, journal: str | None = None) -> Ran:
    """The real command, as a user runs it; its summary JSON is read back. `journal`: a
    PostgreSQL journal's URL (its password in it), instead of a file of its own."""
    summary = work / f"{csv_path.stem}.summary.json"
    argv = [
        str(BIN / "affelios-import"), str(csv_path), "--brand", BRAND, "-q",
        "-o", str(work / f"{csv_path.stem}.results.csv"),
        "--summary-json", str(summary), *extra,
    ]  # fmt: skip
    where = {"AFFELIOS_JOURNAL": journal or str(work / f"{csv_path.stem}.journal.db")}
    ran = measured(argv, env={**os.environ, "AFFELIOS_API_KEY": KEY, **where})
    ran.summary = json.loads(summary.read_text())
    for path in work.glob(f"{csv_path.stem}.journal.db*"):
        path.unlink()  # the next run of the same file starts afresh
    return ran


MISSES: list[str] = []


def figure(name: str, text: str, value: float, target: str) -> None:
    op, bound = target.split()
    ok = value >= float(bound) if op == ">=" else value <= float(bound)
    if not ok:
        MISSES.append(name)
    shown = f"{value:>8.3f}" if value < 10 else f"{value:>8.1f}"  # 0.897 is not 0.90
    print(f"{name:<52} {shown}  target {target:<7} {'ok' if ok else 'MISSED'}   {text}")
    sys.stdout.flush()


def spread(values: list[float], form: str = "{:.3f}") -> str:
    """A median's spread: the least and the greatest of the values it was taken from."""
    return f"{form.format(min(values))}-{form.format(max(values))}"


def counts(ran: Ran) -> dict[str, int]:
    found = ran.summary["counts"]
    assert isinstance(found, dict)
    return {str(k): int(v) for k, v in found.items()}


def bench_latency(work: Path, rows: int, latency_ms: float, concurrency: int, repeats: int) -> None:
    """The importer and the bare aiohttp loop, alternately, each a whole process (start-up
    included) against a fresh server answering in `latency_ms`."""
    data = generate(work / "latency.csv", rows)
    argv, port = minimal("--latency-ms", str(latency_ms))
    walls, bare_walls = [], []
    for _ in range(repeats):
        with server(argv, port) as url:
            bare = measured([sys.executable, "-m", "bench.bare", str(data), "--concurrency",
                             str(concurrency), "--url", f"{url}/api/v1/customer"])  # fmt: skip
            bare_walls.append(bare.seconds)
        with server(argv, port) as url:  # a fresh server: it would answer 409 to a rerun
            ran = import_(data, work, "--base-url", url, "--concurrency", str(concurrency))
        if counts(ran)["created"] != rows:
            raise RuntimeError(f"latency-bound: not every row was created: {ran.summary}")
        walls.append(ran.seconds)
    wall, bare_wall = statistics.median(walls), statistics.median(bare_walls)
    ideal = rows * latency_ms / 1000 / concurrency
    ratios = [b / t for b, t in zip(bare_walls, walls, strict=True)]
    figure(
        "latency-bound vs bare aiohttp loop",
        f"{rows:,} rows, {latency_ms:.0f} ms a request, concurrency {concurrency}, whole "
        f"processes: {wall:.2f} s wall ({spread(walls, '{:.2f}')}) against {bare_wall:.2f} s "
        f"({spread(bare_walls, '{:.2f}')}) for the bare loop; pairs {spread(ratios)}; "
        f"of the ideal {ideal:.2f} s: {ideal / wall:.3f} (the loop {ideal / bare_wall:.3f}); "
        f"medians of {repeats}",
        bare_wall / wall,
        ">= 0.99",
    )


def bench_cpu(work: Path, rows: int, concurrency: int, repeats: int) -> None:
    data = generate(work / "cpu.csv", rows)
    argv, port = minimal()
    bare_rates, tool_rates, tool_cpu = [], [], []
    for _ in range(repeats):
        with server(argv, port) as url:
            bare = printed("bench.bare", data, "--concurrency", concurrency,
                           "--url", f"{url}/api/v1/customer")  # fmt: skip
            bare_rates.append(bare["rows"] / bare["seconds"])
        with server(argv, port) as url:
            ran = import_(data, work, "--base-url", url, "--concurrency", str(concurrency))
            if counts(ran)["created"] != rows:
                raise RuntimeError(f"cpu-bound: not every row was created: {ran.summary}")
            tool_rates.append(rows / float(ran.summary["seconds"]))  # type: ignore[arg-type]
            tool_cpu.append(ran.cpu / rows * 1e6)
    bare_rate, tool_rate = statistics.median(bare_rates), statistics.median(tool_rates)
    ratios = [t / b for t, b in zip(tool_rates, bare_rates, strict=True)]
    figure(
        "cpu-bound rows/s vs bare aiohttp",
        f"{rows:,} rows, instant server, concurrency {concurrency}: {tool_rate:,.0f} rows/s "
        f"against {bare_rate:,.0f} rows/s for a bare aiohttp loop (medians of {repeats}; "
        f"pairs {spread(ratios)})",
        tool_rate / bare_rate,
        ">= 0.80",
    )
    figure(
        "cpu-bound: client CPU µs per row",
        f"the importer's process, start-up included (median of {repeats}: "
        f"{spread(tool_cpu, '{:.0f}')})",
        statistics.median(tool_cpu),
        "<= 150",
    )
    own = [in_process(data, concurrency) for _ in range(repeats)]
    figure(
        "tool's own work: µs per row",
        f"the importer through its Python API, its endpoint answering at once in process "
        f"(bench/inprocess.py): the run's seconds ÷ rows, start-up excluded (median of "
        f"{repeats}: {spread(own, '{:.0f}')})",
        statistics.median(own),
        "<= 40",
    )


def printed(module: str, *args: object) -> dict[str, Any]:
    """What a bench module, run in a process of its own, prints (one JSON object)."""
    argv = [sys.executable, "-m", module, *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def in_process(data: Path, concurrency: int) -> float:
    """µs a row of the importer with an endpoint that answers in its own process."""
    answer = printed("bench.inprocess", data, "--concurrency", concurrency, "--brand", BRAND)
    if answer["created"] != answer["rows"]:
        raise RuntimeError(f"in process: not every row was created: {answer}")
    return float(answer["seconds"]) / int(answer["rows"]) * 1e6


@dataclass(frozen=True)
class Cell:
    """One cell of the pacing matrix: an API that allows `rate` requests a second (by a
    token bucket, a 1-second sliding window or a fixed window: `shape`) and answers in
    `latency_ms`, stating its limit in RateLimit fields or not."""

    rate: float
    latency_ms: float
    fields: bool = False
    share: float = 0.85  # the least share of the allowed rate to achieve
    refused: float | None = None  # the most share of requests answered 429
    shape: str = "bucket"

    @property
    def name(self) -> str:
        said = ", RateLimit fields" if self.fields else ""
        shape = "" if self.shape == "bucket" else f" {self.shape} window"
        return f"paced {self.rate:.0f}/s{shape} {self.latency_ms:.0f} ms{said}"


SHAPES = ("bucket", "sliding", "fixed")
# Issue 26, item 4: every limiter shape, at every rate and both latencies, ≥ 0.92 of the
# limit with ≤ 4% refused; an API stating its limit in RateLimit fields, ≥ 0.95 and ≤ 1%.
PACING = tuple(
    Cell(rate, latency, shape=shape, share=0.92, refused=0.04)
    for shape in SHAPES
    for rate in (20, 50, 200, 400)
    for latency in (20, 100)
) + tuple(
    Cell(200, latency, shape=shape, fields=True, share=0.95, refused=0.01)
    for shape in SHAPES
    for latency in (20, 100)
)


def bench_pacing(work: Path, cells: tuple[Cell, ...], seconds: float) -> None:
    """Each cell: `seconds` worth of rows at the allowed rate, concurrency 64."""
    lost = 0
    for cell in cells:
        rows = int(cell.rate * seconds)
        data = generate(work / "paced.csv", rows)
        options = ["--rate-limit", str(cell.rate), "--latency-ms", str(cell.latency_ms)]
        options += ["--rate-limit-shape", cell.shape]
        argv, port = minimal(*options, *(["--rate-limit-fields"] if cell.fields else []))
        with server(argv, port) as url:
            ran = import_(data, work, "--base-url", url, "--concurrency", "64")
            with urllib.request.urlopen(f"{url}/_stats", timeout=5) as answer:
                stats = json.load(answer)
        done = counts(ran)
        lost += rows - done["created"] - done["exists"] + abs(stats.get("201", 0) - done["created"])
        achieved = rows / float(ran.summary["seconds"])  # type: ignore[arg-type]
        refused = stats.get("429", 0) / stats["requests"]
        text = (
            f"{rows:,} rows: {achieved:,.0f} rows/s, {stats.get('429', 0):,} of "
            f"{stats['requests']:,} requests refused ({refused:.1%}); "
            f"limit: {ran.summary.get('rate_limit') or 'none said'}"
        )
        figure(f"{cell.name}: share", text, achieved / cell.rate, f">= {cell.share}")
        if cell.refused is not None:
            figure(f"{cell.name}: refused", "(one run a cell)", refused, f"<= {cell.refused}")
    figure("paced: rows lost, every cell", "", float(lost), "<= 0")


PANDAS_READ = (
    "import sys, pandas as pd\n"
    "frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)\n"
    "print(len(frame))\n"
)


def dry_runs_beside(
    data: Path, baseline: str, work: Path, rows: int, repeats: int
) -> tuple[list[Ran], list[Ran]]:
    """`repeats` pairs, each a run of the `baseline` script on `data` and a dry run of
    it, one after the other (the machine's speed drifts from one minute to the next).
    Each starts once the disk has taken what the run before wrote: a dry run writes its
    results file (80 MB at 1,000,000 rows), and the kernel writing it out slowed the
    next run, whichever it was (pandas' read took 1.36-1.41 s after pandas' runs,
    1.79-1.85 s after the tool's)."""
    pandas_runs, tool_runs = [], []
    for _ in range(repeats):
        os.sync()
        pandas_runs.append(measured([sys.executable, "-c", baseline, str(data)]))
        os.sync()
        tool_runs.append(import_(data, work, "--dry-run"))
    for ran in tool_runs:
        if counts(ran)["valid"] != rows:
            raise RuntimeError(f"dry run of {data.name}: not every row was valid: {ran.summary}")
    return pandas_runs, tool_runs


def bench_dry_run(work: Path, rows: int, small: int, repeats: int) -> None:
    large_csv = generate(work / "dry-large.csv", rows)
    small_csv = generate(work / "dry-small.csv", small)
    pandas_runs, tool_runs = dry_runs_beside(large_csv, PANDAS_READ, work, rows, repeats)
    small_runs = [import_(small_csv, work, "--dry-run") for _ in range(repeats)]
    pandas_s = statistics.median(r.seconds for r in pandas_runs)
    tool_s = statistics.median(r.seconds for r in tool_runs)
    large_mb = statistics.median(r.peak_mb for r in tool_runs)
    small_mb = statistics.median(r.peak_mb for r in small_runs)
    ratios = [t.seconds / p.seconds for t, p in zip(tool_runs, pandas_runs, strict=True)]
    figure(
        "dry run: time vs pandas read_csv",
        f"{rows:,} rows: {tool_s:.2f} s wall against {pandas_s:.2f} s for a process that "
        f"only reads the file with pandas (medians of {repeats}; pairs {spread(ratios)})",
        tool_s / pandas_s,
        "<= 1.3",
    )
    figure(
        "dry run: peak RSS (MB)",
        f"{rows:,} rows ({spread([r.peak_mb for r in tool_runs], '{:.0f}')}); pandas alone "
        "peaked at "
        f"{statistics.median(r.peak_mb for r in pandas_runs):.0f} MB",
        large_mb,
        "<= 500",
    )
    figure(
        "memory growth: 1M vs 100k peak RSS",
        f"{large_mb:.0f} MB for {rows:,} rows against {small_mb:.0f} MB for {small:,}",
        large_mb / small_mb,
        "<= 1.25",
    )


PANDAS_READ_EXCEL = (
    "import sys, pandas as pd\n"
    "frame = pd.read_excel(sys.argv[1], engine='calamine', dtype=str, keep_default_na=False)\n"
    "print(len(frame))\n"
)


def workbook_of(csv_path: Path, path: Path) -> Path:
    """The CSV's rows as a workbook, as a back office exports one: text cells, and the
    registration date as a date-time cell."""
    import datetime as dt

    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("customers")
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"})
    with csv_path.open(newline="", encoding="utf-8") as f:
        for r, row in enumerate(csv.reader(f)):
            for c, value in enumerate(row):
                if r and c == 2:
                    moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
                    sheet.write_datetime(r, c, moment, stamp)
                else:
                    sheet.write_string(r, c, value)
    book.close()
    return path


def bench_workbook(work: Path, rows: int, repeats: int) -> None:
    data = workbook_of(generate(work / "book.csv", rows), work / "book.xlsx")
    pandas_runs, tool_runs = dry_runs_beside(data, PANDAS_READ_EXCEL, work, rows, repeats)
    pandas_s = statistics.median(r.seconds for r in pandas_runs)
    tool_s = statistics.median(r.seconds for r in tool_runs)
    ratios = [t.seconds / p.seconds for t, p in zip(tool_runs, pandas_runs, strict=True)]
    figure(
        "workbook: dry run vs pandas read_excel",
        f"{rows:,} rows of an .xlsx ({data.stat().st_size / 1e6:.1f} MB): {tool_s:.2f} s wall "
        f"against {pandas_s:.2f} s for a process that only reads it with pandas' calamine "
        f"engine (medians of {repeats}; pairs {spread(ratios)})",
        tool_s / pandas_s,
        "<= 1.2",
    )
    figure(
        "workbook: dry run peak RSS (MB)",
        f"{rows:,} rows; pandas alone peaked at "
        f"{statistics.median(r.peak_mb for r in pandas_runs):.0f} MB",
        statistics.median(r.peak_mb for r in tool_runs),
        "<= 500",
    )


BENCHMARKS = ("latency", "cpu", "pacing", "dry-run", "workbook", "journal")


def bench_journal(work: Path, rows: int, concurrency: int, repeats: int) -> None:
    """What a PostgreSQL journal costs a row beside SQLite (an instant server: the
    journal's share shows), and two workers on one PostgreSQL journal against a
    rate-limited API, on one file and on its two halves."""
    data = generate(work / "journal.csv", rows)
    argv, port = minimal()
    with cluster(fsync=True) as postgres:  # as a real server flushes its commits
        cpu: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        rate: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        for _ in range(repeats):
            for name in cpu:
                url = postgres.new_database() if name == "postgresql" else None
                with server(argv, port) as api:
                    ran = import_(data, work, "--base-url", api, "--concurrency",
                                  str(concurrency), journal=url)  # fmt: skip
                if counts(ran)["created"] != rows:
                    raise RuntimeError(f"journal: not every row was created: {ran.summary}")
                cpu[name].append(ran.cpu / rows * 1e6)
                rate[name].append(rows / float(ran.summary["seconds"]))  # type: ignore[arg-type]
        sqlite_us, pg_us = (statistics.median(cpu[n]) for n in ("sqlite", "postgresql"))
        figure(
            "postgresql journal: µs per row",
            f"{rows:,} rows, instant server: client CPU {pg_us:.0f} µs a row against "
            f"{sqlite_us:.0f} with SQLite; {statistics.median(rate['postgresql']):,.0f} against "
            f"{statistics.median(rate['sqlite']):,.0f} rows/s (medians of {repeats}); the "
            "ratio is PostgreSQL's over SQLite's",
            pg_us / sqlite_us,
            "<= 1.5",
        )
        _two_workers(work, data, rows, postgres)


def _two_workers(work: Path, data: Path, rows: int, postgres: Cluster) -> None:
    """One worker, then two on the same file, then two on its halves, one PostgreSQL
    journal each time, against an API that allows 1,000 requests a second."""
    lines = data.read_text().splitlines(keepends=True)
    halves = [work / "half1.csv", work / "half2.csv"]
    middle = 1 + (len(lines) - 1) // 2
    halves[0].write_text("".join(lines[:middle]))
    halves[1].write_text("".join([lines[0], *lines[middle:]]))
    argv, port = minimal("--rate-limit", "1000")
    walls: dict[str, float] = {}
    for name, files in (("one worker", [data]), ("two, one file", [data, data]),
                        ("two, halves", halves)):  # fmt: skip
        journal = postgres.new_database()
        with server(argv, port) as api:

            def worker(at: int, csv_path: Path, api: str = api, journal: str = journal) -> Ran:
                folder = work / f"worker{at}"
                folder.mkdir(exist_ok=True)
                return import_(csv_path, folder, "--base-url", api, "--concurrency", "32",
                               journal=journal)  # fmt: skip

            started = time.perf_counter()
            with ThreadPoolExecutor(len(files)) as pool:
                done = list(pool.map(worker, range(len(files)), files))
            walls[name] = time.perf_counter() - started
        created = sum(counts(ran).get("created", 0) for ran in done)
        if created != rows:
            raise RuntimeError(f"{name}: {created} created of {rows}")
    print(
        "two workers, one postgresql journal, an API allowing 1,000 requests/s: "
        + "; ".join(f"{name} {rows / wall:,.0f} rows/s" for name, wall in walls.items())
    )


def compile_the_importer() -> int:
    """Compile the importer's modules to bytecode, as a regular install does (pip
    compiles them as it installs): the importer is measured as users run it. An
    editable install in an environment that sets PYTHONDONTWRITEBYTECODE (as this
    machine's does) would compile every one of its modules at every start: 0.07 s a
    process here, in every figure that counts start-up. The modules, as installed, may be
    links to the checkout (`make install`): followed. How many were compiled."""
    import compileall

    import affelios_import

    count = 0
    for folder, _, names in os.walk(Path(affelios_import.__file__).parent, followlinks=True):
        for name in names:
            if name.endswith(".py"):
                count += bool(compileall.compile_file(Path(folder) / name, quiet=2))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", help="pacing: only the cells of these limiter shapes")
    args = parser.parse_args()
    chosen = set(args.only) or set(BENCHMARKS)
    if unknown := chosen - set(BENCHMARKS):
        parser.error(f"no such benchmark: {', '.join(sorted(unknown))}")
    started = time.monotonic()
    print(f"affelios-import benchmarks, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"the importer's {compile_the_importer()} modules compiled to bytecode, as installed")
    with tempfile.TemporaryDirectory(prefix="affelios-bench-") as folder:
        work = Path(folder)
        if "latency" in chosen:
            bench_latency(work, rows=10_000, latency_ms=100, concurrency=64, repeats=args.repeats)
        if "cpu" in chosen:
            bench_cpu(work, rows=20_000, concurrency=64, repeats=args.repeats)
        if "pacing" in chosen:
            cells = (
                PACING
                if args.shapes is None
                else tuple(c for c in PACING if c.shape in args.shapes.split(","))
            )
            bench_pacing(work, cells, seconds=15)
        if "dry-run" in chosen:
            bench_dry_run(work, rows=1_000_000, small=100_000, repeats=args.repeats)
        if "workbook" in chosen:
            bench_workbook(work, rows=100_000, repeats=args.repeats)
        if "journal" in chosen:
            bench_journal(work, rows=20_000, concurrency=64, repeats=args.repeats)
    print(f"{time.monotonic() - started:.0f} s in all; "
          + (f"missed: {', '.join(MISSES)}" if MISSES else "every target met"))  # fmt: skip
    sys.exit(1 if MISSES else 0)


if __name__ == "__main__":
    main()
