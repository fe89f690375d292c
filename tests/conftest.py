from __future__ import annotations

import ast
import csv
import functools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from affelios_import import Importer, Progress, RunResult
from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from affelios_import.settings import Settings
from tests import pg

API_KEY = "test-key-6f1d0c2a9e"
HEADER = ("externalId", "externalBrandId", "registrationDate", "clickKey", "username")


@dataclass
class RunningSandbox:
    url: str
    server: Sandbox


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """click's CliRunner, with no AFFELIOS_* settings leaking in from the environment."""
    for name in ("AFFELIOS_API_KEY", "AFFELIOS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """A PostgreSQL server for the session's tests (see tests/pg.py)."""
    if pg.programs() is None:
        if os.environ.get("AFFELIOS_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's programs (initdb, pg_ctl) are not installed")
        pytest.skip("PostgreSQL's programs are not installed (apt-get install postgresql)")
    with pg.cluster() as running:
        yield running


@pytest.fixture
def postgres(pg_cluster: pg.Cluster) -> str:
    """The URL of a fresh PostgreSQL database (its password in it), for one test."""
    return pg_cluster.new_database()


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox API on a free loopback port, stopped after the test."""
    server = Sandbox(api_key=API_KEY, faults=Faults(seed=1))
    with serve_in_thread(server) as url:
        yield RunningSandbox(url=url, server=server)


def write_csv(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def good_rows(n: int, *, brand: str = "casino-x", start: int = 1) -> list[list[str]]:
    return [
        [f"C{i:05d}", brand, f"2025-06-{1 + i % 28:02d}T19:29:48.174Z", f"clk_{i}", f"user{i}"]
        for i in range(start, start + n)
    ]


def run_cli(
    *args: str | Path,
    api_key: str | None = API_KEY,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    module: str = "affelios_import",
) -> subprocess.CompletedProcess[str]:
    """The real command (or `module`'s: `affelios_import.cli.journal`), as a user runs
    it: a subprocess with the key in its environment (`env`: more variables)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AFFELIOS_")}
    if api_key is not None:
        clean["AFFELIOS_API_KEY"] = api_key
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env=clean | (env or {}),
        cwd=cwd,
        timeout=120,
    )


def run(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """A run through the front door, as a Python caller makes it: `settings` is the
    `ImportConfig`, with the files of the run."""
    importer = Importer(settings, transport=transport, progress=progress)
    return importer.run(
        settings.input,
        out=settings.out,
        errors_out=settings.errors_out,
        summary_json=settings.summary_json,
        report_html=settings.report_html,
    )


# What starts a server or another process. A test that calls one of these, or a function
# or fixture of its module that does, or uses the sandbox fixture, is `slow`: make
# test-fast leaves it out, make test runs everything.
_SLOW_CALLS = frozenset(
    {
        "subprocess.run",
        "subprocess.Popen",
        "run_cli",
        "serve",
        "serve_in_thread",
        "serve_app_in_thread",
    }
)


def _called(node: ast.AST) -> set[str]:
    found = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            if isinstance(call.func, ast.Name):
                found.add(call.func.id)
            elif isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                found.add(f"{call.func.value.id}.{call.func.attr}")
    return found


@functools.cache
def _slow_functions(path: str) -> frozenset[str]:
    """The module's functions (tests, helpers, fixtures) that start a server or process."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    calls = {
        node.name: _called(node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    slow = {name for name, called in calls.items() if called & _SLOW_CALLS}
    while grown := {name for name, called in calls.items() if called & slow} - slow:
        slow |= grown
    return frozenset(slow)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        slow = _slow_functions(str(item.path))
        names = {getattr(item, "originalname", item.name), *getattr(item, "fixturenames", ())}
        if names & {"sandbox", "postgres", "pg_cluster"} or names & slow:
            item.add_marker(pytest.mark.slow)
