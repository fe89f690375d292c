"""What a person at the terminal sees: a bar that tells the truth for each kind, and a
Ctrl-C acknowledged at once."""

from __future__ import annotations

import queue
import signal
import threading
import time
from pathlib import Path

import pytest

from affelios_import import Progress
from affelios_import.cli.watch import Watch, counts
from affelios_import.kinds import get
from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from tests.conftest import API_KEY, good_rows, write_csv
from tests.test_faults import start, wait_for


def state(kind: str, counts: dict[str, int], **more: object) -> Progress:
    values: dict[str, object] = {
        "rows_total": 1000,
        "rows_done": sum(counts.values()),
        "counts": counts,
        "retries": 0,
        "columns": "columns: …",
        "watched": get(kind).watched,
    }
    return Progress(**(values | more))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "counted", "shown"),
    [
        ("customers", {"created": 1204, "exists": 3},
         "created=1,204 exists=3 skipped=0 invalid=0 failed=0 retries=0"),
        # It said created=0 for a whole transactions run of 2,994 accepted.
        ("transactions", {"accepted": 2994, "skipped": 5},
         "accepted=2,994 skipped=5 unconfirmed=0 invalid=0 failed=0 retries=0"),
        ("transactions", {"accepted": 1, "corrected": 2},  # any other status, once it occurs
         "accepted=1 skipped=0 unconfirmed=0 invalid=0 failed=0 corrected=2 retries=0"),
    ],
)  # fmt: skip
def test_the_bar_counts_the_kinds_own_statuses(
    kind: str, counted: dict[str, int], shown: str
) -> None:
    assert counts(state(kind, counted)) == shown


def test_the_rate_and_time_left_are_those_of_rows_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a resume the rate froze at 24,142 rows/s and the time left at 0:00 with 20 s
    of sending to go: skipped rows were counted as speed."""
    clock = [100.0]
    monkeypatch.setattr("affelios_import.cli.watch.time.monotonic", lambda: clock[0])
    seen = Watch(bar=False)
    assert seen._pace(state("customers", {"skipped": 0})) == ""
    clock[0] += 1
    seen._pace(state("customers", {"skipped": 9000}))  # a second of skipped rows: no rate
    assert seen._pace(state("customers", {"skipped": 9000})) == ""
    clock[0] += 2
    paced = seen._pace(state("customers", {"skipped": 9000, "created": 100}, rows_total=10_000))
    assert paced == "33 rows/s sent, ~0:27 left"  # 100 sent in 3 s; 900 rows to go


def test_a_stopped_run_s_bar_does_not_fill_with_rows_never_sent() -> None:
    """After Ctrl-C the bar jumped to 100%, counting rows never sent."""
    seen = Watch(bar=True)
    seen(state("customers", {"created": 300, "not_sent": 700}, stopping=True))
    assert seen._bar.n == 300 and seen._bar.total == 1000
    assert seen._bar.desc.startswith("stopping")
    drawn = str(seen._bar)
    assert "300/1000 [00:00] created=300 exists=0" in drawn
    seen.close()


def test_the_time_left_comes_before_the_counts_that_a_narrow_terminal_cuts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 150 columns the bar's line was cut in its time left (`~0:36 le`); at 80 it lost
    the rate and the time left entirely: they came after every count."""
    clock = [100.0]
    monkeypatch.setattr("affelios_import.cli.watch.time.monotonic", lambda: clock[0])
    seen = Watch(bar=True)
    seen(state("customers", {"created": 0}, rows_total=20_000))
    clock[0] += 4
    seen(state("customers", {"created": 1000, "skipped": 3000}, rows_total=20_000))
    drawn = str(seen._bar)
    assert "4000/20000 [00:" in drawn
    assert ", 250 rows/s sent, ~1:04 left] created=1,000 exists=0 skipped=3,000" in drawn
    seen.close()


def test_a_ctrl_c_is_acknowledged_at_once(tmp_path: Path) -> None:
    """Against a 4 s API the screen sat silent for 4 s after Ctrl-C, which invites the
    second Ctrl-C that abandons the requests in flight."""
    server = Sandbox(api_key=API_KEY, faults=Faults(latency_ms=4000))
    source = write_csv(tmp_path / "c.csv", good_rows(20))
    lines: queue.Queue[str] = queue.Queue()
    with serve_in_thread(server) as url:
        run = start([source, "--base-url", url, "--journal", tmp_path / "j.db"])
        assert run.stderr is not None
        stream = run.stderr

        def pump() -> None:
            for line in stream:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        wait_for(lambda: server.stats["requests"] >= 1)
        asked = time.monotonic()
        run.send_signal(signal.SIGINT)
        said = ""
        while not said.startswith("stopping:") and time.monotonic() - asked < 2:
            try:
                said = lines.get(timeout=0.05)
            except queue.Empty:
                continue
        took = time.monotonic() - asked
        run.wait(timeout=30)
    assert said.startswith("stopping: nothing more is sent; the requests in flight get up to")
    assert "Ctrl-C again abandons them" in said
    assert took < 0.5, took
    assert run.returncode == 3
