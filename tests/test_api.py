"""The Python front door, as a caller's script uses it: real HTTP against the sandbox."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import threading
import warnings
from pathlib import Path
from types import FrameType

import pytest

import affelios_import
from affelios_import import ConfigError, ImportConfig, Importer, RunResult, Status, StopReason
from tests.conftest import API_KEY, RunningSandbox, good_rows, read_results, write_csv

ROOT = Path(__file__).resolve().parent.parent


def test_the_exported_names_are_locked() -> None:
    assert affelios_import.__all__ == [
        "AffeliosImportError",
        "ConfigError",
        "ImportConfig",
        "Importer",
        "InputError",
        "Outcome",
        "OutputFailed",
        "Progress",
        "RunResult",
        "RunStopped",
        "SetupError",
        "Status",
        "StopReason",
        "__version__",
    ]
    for name in affelios_import.__all__:
        assert getattr(affelios_import, name) is not None
    assert (ROOT / "etl" / "py.typed").exists()
    with pytest.raises(AttributeError):
        affelios_import.Nothing  # noqa: B018


def config(sandbox: RunningSandbox, tmp_path: Path, **more: object) -> ImportConfig:
    values: dict[str, object] = {
        "base_url": sandbox.url,
        "api_key": API_KEY,
        "brand": "casino-x",
        "journal": tmp_path / "j.db",
    }
    return ImportConfig(**(values | more))  # type: ignore[arg-type]


def test_a_script_imports_and_gets_counts(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(30))
    result = Importer(config(sandbox, tmp_path)).run(source, out=tmp_path / "r.csv")
    assert isinstance(result, RunResult)
    assert (result.ok, result.stopped, result.rows) == (True, None, 30)
    assert result.counts[Status.CREATED] == 30 == len(sandbox.server.customers)
    assert result.results == tmp_path / "r.csv"
    assert len(read_results(tmp_path / "r.csv")) == 30
    when, counts = result.to_text().splitlines()[:2]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, run \d{8}T\d{6}Z-[0-9a-f]{6}", when)
    assert counts.startswith("30 rows: 30 created in")
    again = Importer(config(sandbox, tmp_path)).run(source, out=tmp_path / "r.csv")
    assert again.counts["skipped"] == 30


@pytest.mark.skipif(os.name == "nt", reason="uvloop is a dependency on Linux and macOS only")
def test_run_sends_on_uvloop(sandbox: RunningSandbox, tmp_path: Path) -> None:
    loops: set[str] = set()

    def progress(state: affelios_import.Progress) -> None:
        loops.add(type(asyncio.get_running_loop()).__module__)

    source = write_csv(tmp_path / "c.csv", good_rows(5))
    Importer(config(sandbox, tmp_path), progress=progress).run(source, out=tmp_path / "r.csv")
    assert loops == {"uvloop"}


def test_arun_works_inside_the_callers_event_loop(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(20))
    ticks = 0

    async def heartbeat() -> None:  # the caller's own work goes on meanwhile
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def main() -> RunResult:
        beating = asyncio.create_task(heartbeat())
        try:
            return await Importer(config(sandbox, tmp_path)).arun(source)
        finally:
            beating.cancel()

    result = asyncio.run(main())
    assert result.counts["created"] == 20
    assert ticks > 1


def test_the_callers_signal_handlers_stay_theirs(sandbox: RunningSandbox, tmp_path: Path) -> None:
    def mine(signum: int, frame: FrameType | None) -> None:
        pass

    source = write_csv(tmp_path / "c.csv", good_rows(20))
    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGINT, signal.SIGTERM)}
    seen_during: list[object] = []
    try:
        Importer(
            config(sandbox, tmp_path),
            progress=lambda n: seen_during.append(signal.getsignal(signal.SIGTERM)),
        ).run(source)
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is mine
        assert seen_during and all(h is mine for h in seen_during)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_stop_from_another_thread_stops_the_run_and_accounts_for_every_row(
    tmp_path: Path,
) -> None:
    from affelios_import.sandbox import Faults, Sandbox, serve_in_thread

    server = Sandbox(api_key=API_KEY, faults=Faults(latency_ms=50))
    source = write_csv(tmp_path / "c.csv", good_rows(2000))
    with serve_in_thread(server) as url:
        importer = Importer(ImportConfig(base_url=url, api_key=API_KEY, journal=tmp_path / "j.db"))
        timer = threading.Timer(1.0, importer.stop)
        timer.start()
        result = importer.run(source)
        timer.join()
    assert result.stopped is StopReason.INTERRUPTED
    assert result.stop_detail.startswith("stopped by the caller")
    assert result.counts["created"] + result.counts["not_sent"] == 2000
    assert 0 < result.counts["created"] == len(server.customers) < 2000
    assert not result.ok


def test_a_refused_key_is_a_stop_reason_not_an_exception(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(5))
    result = Importer(config(sandbox, tmp_path, api_key="wrong-key-0000")).run(source)
    assert result.stopped is StopReason.KEY_REFUSED
    assert '"stop_kind": "key_refused"' in result.to_json()


def test_bad_settings_raise_before_anything_happens(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="concurrency=0"):
        ImportConfig(concurrency=0)
    with pytest.raises(ConfigError, match="plain http would send the API key unencrypted"):
        ImportConfig(base_url="http://example.invalid", api_key="k")


def python_blocks(section: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    text = readme.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readmes_python_examples_run(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = python_blocks("Python API")
    assert len(blocks) == 3
    shutil.copy(ROOT / "sample_data" / "customers.csv", tmp_path / "customers.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AFFELIOS_BASE_URL", sandbox.url)
    monkeypatch.setenv("AFFELIOS_API_KEY", API_KEY)
    scope: dict[str, object] = {"__name__": "readme"}
    for block in blocks:  # one script, as a reader would paste it
        exec(compile(block, "README.md", "exec"), scope)
    assert len(sandbox.server.customers) == 191  # the sample's good rows, once
    assert Path("customers.results.csv").exists() and Path("async.results.csv").exists()
    assert os.path.getsize("summary.json") > 0


def test_the_plan_does_not_load_the_journal() -> None:
    import subprocess
    import sys

    code = (
        "import sys, affelios_import.plan;"
        "print('affelios_import.journal' in sys.modules, 'sqlite3' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_progress_is_told_before_the_first_request_then_often_within_a_chunk(
    tmp_path: Path,
) -> None:
    from affelios_import import Progress
    from affelios_import.sandbox import Faults, Sandbox, serve_in_thread

    server = Sandbox(api_key=API_KEY, faults=Faults(latency_ms=50))
    seen: list[tuple[Progress, int]] = []
    source = write_csv(tmp_path / "c.csv", good_rows(120))
    with serve_in_thread(server) as url:
        sandbox = RunningSandbox(url=url, server=server)
        importer = Importer(
            config(sandbox, tmp_path, concurrency=4),
            progress=lambda state: seen.append((state, server.stats["requests"])),
        )
        result = importer.run(source)
    assert result.counts["created"] == 120
    first, requests_then = seen[0]
    assert (first.rows_done, first.rows_total, requests_then) == (0, 120, 0)
    assert first.columns.startswith("columns: externalId → externalId, ")
    last = seen[-1][0]
    assert last.rows_done == 120 and {k: v for k, v in last.counts.items() if v} == {"created": 120}
    # 120 rows, one chunk, 30 round trips of 50 ms: told how far it is as rows finish,
    # not once per chunk.
    done = [state.rows_done for state, _ in seen]
    assert done == sorted(done)
    assert len({n for n in done if 0 < n < 120}) >= 3


def test_a_progress_callback_that_fails_does_not_stop_the_import(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    calls: list[int] = []

    def broken(state: object) -> None:
        calls.append(1)
        raise OSError("stderr closed")

    source = write_csv(tmp_path / "c.csv", good_rows(5))
    result = Importer(config(sandbox, tmp_path), progress=broken).run(source)
    assert result.counts["created"] == 5 and result.stopped is None
    assert calls == [1]  # told once, then left alone


def test_run_inside_a_running_loop_says_to_use_arun(tmp_path: Path) -> None:
    """It raised asyncio's bare RuntimeError, and warned of a coroutine never awaited."""
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    importer = Importer(ImportConfig(api_key=API_KEY, journal=":memory:", dry_run=True))

    async def in_a_notebook() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a "never awaited" warning fails the test
            with pytest.raises(RuntimeError, match=r"use `await importer.arun\(...\)`"):
                importer.run(source)

    asyncio.run(in_a_notebook())
    assert importer.run(source).exit_code == 0  # and outside one, it runs
