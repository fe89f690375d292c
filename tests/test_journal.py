from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from etl.errors import SetupError
from etl.journal import Entry, Journal


def test_records_are_found_after_flush_and_per_base_url(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal.open(path, base_url="https://a")
    journal.record(("b", "1"), affelios_id="id1", status="created")
    journal.record(("b", "2"), affelios_id=None, status="exists")
    journal.close()
    again = Journal.open(path, base_url="https://a")
    keys = [("b", "1"), ("b", "2"), ("b", "3"), ("c", "1")]
    assert again.lookup(keys) == {
        ("b", "1"): Entry("created", "id1"),
        ("b", "2"): Entry("exists", None),
    }
    again.close()
    other = Journal.open(path, base_url="https://other")
    assert other.lookup(keys) == {}
    other.close()


def test_entries_are_stamped_in_utc_to_the_millisecond(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal.open(path, base_url="u")
    before = datetime.now(UTC)
    journal.record(("b", "1"), affelios_id="id1", status="created")
    journal.close()
    with sqlite3.connect(path) as db:
        (stamp,) = db.execute("SELECT recorded_at FROM customers").fetchone()
    assert len(stamp) == len("2026-11-25T14:30:12.345Z") and stamp.endswith("Z"), stamp
    when = datetime.fromisoformat(stamp)
    assert when.tzinfo == UTC
    assert before - timedelta(seconds=1) <= when <= datetime.now(UTC) + timedelta(seconds=1)


def test_lookup_works_across_batches(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.db", base_url="u")
    for i in range(1234):
        journal.record(("b", str(i)), affelios_id=f"id{i}", status="created")
    journal.flush()
    found = journal.lookup(("b", str(i)) for i in range(0, 2000, 3))
    assert len(found) == len(range(0, 1234, 3))
    assert found[("b", "1233")] == Entry("created", "id1233")
    journal.close()


def test_a_second_run_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = Journal.open(path, base_url="u")
    # The lock is per open file, so even this same process is refused a second time.
    with pytest.raises(SetupError, match=r"is in use by another affelios-import run \(pid \d+\)"):
        Journal.open(path, base_url="u")
    # Another process is refused too, and a dry run (read only) is not.
    code = (
        "import sys; from etl.journal import Entry, Journal; from etl.errors import SetupError\n"
        f"try: Journal.open({str(path)!r}, base_url='u')\n"
        "except SetupError as e: print(e); sys.exit(7)"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.returncode == 7, other.stderr
    Journal.open(path, base_url="u", read_only=True).close()
    first.close()
    Journal.open(path, base_url="u").close()  # free again


def test_a_dry_run_never_creates_the_journal(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.db", base_url="u", read_only=True)
    assert journal.lookup([("b", "1")]) == {}
    journal.close()
    assert list(tmp_path.iterdir()) == []
