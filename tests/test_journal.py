from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from affelios_import.errors import SetupError
from affelios_import.journal import Journal, queries
from affelios_import.keys import Entry, Key


def brief(found: dict[Key, Entry]) -> dict[Key, tuple[str, str | None]]:
    """Entries as (status, affelios_id): the parts these tests are about."""
    return {key: (entry.status, entry.affelios_id) for key, entry in found.items()}


def test_records_are_found_after_flush_and_per_base_url(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal.open(path, base_url="https://a", kind="customers")
    journal.record(("b", "1"), affelios_id="id1", status="created")
    journal.record(("b", "2"), affelios_id=None, status="exists")
    journal.close()
    again = Journal.open(path, base_url="https://a", kind="customers")
    keys = [("b", "1"), ("b", "2"), ("b", "3"), ("c", "1")]
    assert brief(again.lookup(keys)) == {
        ("b", "1"): ("created", "id1"),
        ("b", "2"): ("exists", None),
    }
    again.close()
    other = Journal.open(path, base_url="https://other", kind="customers")
    assert other.lookup(keys) == {}
    other.close()


def test_entries_are_stamped_in_utc_to_the_millisecond(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal.open(path, base_url="u", kind="customers")
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
    journal = Journal.open(tmp_path / "j.db", base_url="u", kind="customers")
    for i in range(1234):
        journal.record(("b", str(i)), affelios_id=f"id{i}", status="created")
    journal.flush()
    found = journal.lookup(("b", str(i)) for i in range(0, 2000, 3))
    assert len(found) == len(range(0, 1234, 3))
    assert found[("b", "1233")][:2] == ("created", "id1233")
    journal.close()


def test_a_second_run_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = Journal.open(path, base_url="u", kind="customers")
    # The lock is per open file, so even this same process is refused a second time.
    with pytest.raises(SetupError, match=r"is in use by another affelios-import run \(pid \d+\)"):
        Journal.open(path, base_url="u", kind="customers")
    # Another process is refused too, and a dry run (read only) is not.
    code = (
        "import sys; from affelios_import.journal import Journal\n"
        "from affelios_import.errors import SetupError\n"
        f"try: Journal.open({str(path)!r}, base_url='u', kind='customers')\n"
        "except SetupError as e: print(e); sys.exit(7)"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.returncode == 7, other.stderr
    Journal.open(path, base_url="u", kind="customers", read_only=True).close()
    first.close()
    Journal.open(path, base_url="u", kind="customers").close()  # free again


def test_a_dry_run_never_creates_the_journal(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.db", base_url="u", kind="customers", read_only=True)
    assert journal.lookup([("b", "1")]) == {}
    journal.close()
    assert list(tmp_path.iterdir()) == []


def test_the_lock_follows_the_file_through_symbolic_and_hard_links(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = Journal.open(path, base_url="u", kind="customers")
    (tmp_path / "soft.db").symlink_to(path)
    os.link(path, tmp_path / "hard.db")
    for name in ("soft.db", "hard.db"):
        with pytest.raises(SetupError, match=r"is in use by another affelios-import run"):
            Journal.open(tmp_path / name, base_url="u", kind="customers")
    first.close()
    Journal.open(tmp_path / "hard.db", base_url="u", kind="customers").close()  # free again


def legacy_journal(path: Path, rows: list[tuple[str, str, str, str, str]]) -> None:
    """A journal as an earlier version wrote it: base URLs as they were given."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (base_url TEXT NOT NULL, external_brand_id TEXT NOT NULL,"
            " external_id TEXT NOT NULL, affelios_id TEXT, status TEXT NOT NULL,"
            " recorded_at TEXT NOT NULL,"
            " PRIMARY KEY (base_url, external_brand_id, external_id)) WITHOUT ROWID"
        )
        db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,'2026-01-01T00:00:00Z')", rows)
    db.close()


def test_one_api_under_every_spelling_of_its_url_and_old_journals_still_work(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    legacy_journal(
        path,
        [
            ("http://LOCALHOST:8080/", "b", "1", "id1", "created"),
            ("HTTPS://u:secret@API.test:443/./", "b", "2", "id2", "created"),
            ("https://other.test", "b", "3", "id3", "created"),
        ],
    )
    # A dry run reads an old journal as it is, without rewriting it.
    dry = Journal.open(path, base_url="http://localhost:8080", kind="customers", read_only=True)
    assert brief(dry.lookup([("b", "1")])) == {("b", "1"): ("created", "id1")}
    dry.close()
    journal = Journal.open(path, base_url="http://localhost:8080/", kind="customers")
    assert brief(journal.lookup([("b", "1")])) == {("b", "1"): ("created", "id1")}
    journal.close()
    with sqlite3.connect(path) as db:
        urls = sorted(url for (url,) in db.execute("SELECT base_url FROM customers"))
    db.close()
    assert urls == ["http://localhost:8080", "https://api.test", "https://other.test"]
    again = Journal.open(path, base_url="https://user:pw@Api.Test/", kind="customers")
    assert brief(again.lookup([("b", "2")])) == {("b", "2"): ("created", "id2")}
    again.record(("b", "4"), affelios_id="id4", status="created")
    again.close()
    assert b"secret" not in path.read_bytes() and b"pw" not in path.read_bytes()


def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.close()
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(SetupError, match=r"not a journal of affelios-import.*users"):
            Journal.open(path, base_url="u", kind="customers", read_only=read_only)
    assert path.read_bytes() == before


@pytest.mark.parametrize("read_only", [False, True])
def test_a_damaged_journal_is_refused_with_one_line(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "j.db"
    journal = Journal.open(path, base_url="u", kind="customers")
    for i in range(5000):
        journal.record(("brand", f"customer-{i:06d}"), affelios_id=f"id{i}", status="created")
    journal.close()
    data = bytearray(path.read_bytes())
    data[8192 : 8192 + 3000] = bytes(range(256)) * 11 + bytes(184)  # garble pages 3 and 4
    path.write_bytes(bytes(data))
    with pytest.raises(SetupError, match=r"^journal .*: not a readable journal \(") as caught:
        Journal.open(path, base_url="u", kind="customers", read_only=read_only)
    assert "\n" not in str(caught.value)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_text("externalId,externalBrandId\n1,b\n")
    with pytest.raises(SetupError, match="not a readable journal"):
        Journal.open(path, base_url="u", kind="customers")
    assert path.read_text() == "externalId,externalBrandId\n1,b\n"


def test_an_old_journal_is_migrated_and_keeps_what_was_sent_from_now_on(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    legacy_journal(path, [("https://a", "b", "1", "id1", "created")])
    journal = Journal.open(path, base_url="https://a", kind="customers")
    journal.record(("b", "2"), affelios_id="id2", status="created", sent=b'{"externalId":"2"}')
    journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (1,)
    db.close()
    again = Journal.open(path, base_url="https://a", kind="customers", read_only=True)
    found = again.lookup([("b", "1"), ("b", "2")])
    again.close()
    # From before the migration: its first record is its only one; nothing to compare.
    assert found[("b", "1")] == Entry("created", "id1", "2026-01-01T00:00:00Z", None)
    assert found[("b", "2")].sent == '{"externalId":"2"}'
    assert found[("b", "2")].first_recorded_at.endswith("Z")


def test_the_first_record_stays_the_first(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.db", base_url="u", kind="customers")
    journal.db.execute(
        "INSERT INTO customers VALUES (?,'b','1',NULL,'sending','2026-01-02T00:00:00Z',"
        "'2026-01-02T00:00:00Z',NULL)",
        (journal._base_url,),
    )
    journal.record(("b", "1"), affelios_id="id1", status="created", sent=b"{}")
    journal.flush()
    (entry,) = journal.lookup([("b", "1")]).values()
    journal.close()
    assert entry.first_recorded_at == "2026-01-02T00:00:00Z" and entry.sent == "{}"


def test_a_journal_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal.open(path, base_url="u", kind="customers").close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=7")
    db.close()
    for read_only in (False, True):
        with pytest.raises(SetupError, match="written by a newer affelios-import"):
            Journal.open(path, base_url="u", kind="customers", read_only=read_only)


def test_a_migration_cut_short_is_taken_up_again(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    legacy_journal(path, [("https://a", "b", "1", "id1", "created")])
    with sqlite3.connect(path) as db:  # the first column added, then the process died
        db.execute("ALTER TABLE customers ADD COLUMN first_recorded_at TEXT")
    db.close()
    dry = Journal.open(path, base_url="https://a", kind="customers", read_only=True)
    assert brief(dry.lookup([("b", "1")])) == {("b", "1"): ("created", "id1")}
    dry.close()
    journal = Journal.open(path, base_url="https://a", kind="customers")
    (entry,) = journal.lookup([("b", "1")]).values()
    journal.close()
    assert entry == Entry("created", "id1", "2026-01-01T00:00:00Z", None)


def test_transactions_have_a_table_of_their_own_and_an_older_journal_holds_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    customers = Journal.open(path, base_url="https://api.test", kind="customers")
    customers.record(("b", "X1"), affelios_id="c1", status="created")
    customers.close()
    transactions = Journal.open(path, base_url="https://api.test", kind="transactions")
    assert transactions.lookup([("b", "X1")]) == {}  # the customer X1 is not a transaction
    assert brief(transactions.lookup([("b", "X1")], kind="customers")) == {
        ("b", "X1"): ("created", "c1")
    }
    transactions.record(("b", "X1"), affelios_id=None, status="unconfirmed")
    transactions.close()
    # A journal written before transactions were: read-only, it simply holds none.
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE transactions")
    older = Journal.open(path, base_url="https://api.test", kind="transactions", read_only=True)
    assert older.was_empty
    assert older.lookup([("b", "X1")]) == {}
    assert queries.stats(older) == []
    older.close()
