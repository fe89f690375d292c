"""The journal on PostgreSQL (issue 23): a real server the tests start and stop
(tests/pg.py), the real command against the sandbox, and workers sharing one ledger."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from affelios_import.errors import SetupError
from affelios_import.journal import open_journal
from affelios_import.journal.postgres import SharedJournal
from affelios_import.keys import CLAIMED, SENDING
from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from affelios_import.urls import shown_journal
from tests import pg
from tests.conftest import API_KEY, RunningSandbox, good_rows, read_results, run_cli, write_csv
from tests.kinds import SAMPLES, TRANSACTIONS, TX_HEADER, Sample, transactions
from tests.test_faults import start, wait_for

JOURNAL_CLI = "affelios_import.cli.journal"


def _without_password(url: str) -> str:
    return url.replace(f":{pg.PASSWORD}@", "@")


def _everything_shown(*runs: object, files: tuple[Path, ...] = ()) -> str:
    texts = [f"{getattr(r, 'stdout', '')}{getattr(r, 'stderr', '')}" for r in runs]
    texts += [f.read_text(encoding="utf-8", errors="replace") for f in files if f.exists()]
    return "\n".join(texts)


@pytest.mark.parametrize("sample", SAMPLES)
def test_a_run_on_postgres_sends_each_record_once_and_shows_no_password(
    sandbox: RunningSandbox, postgres: str, tmp_path: Path, sample: Sample
) -> None:
    source = write_csv(tmp_path / "in.csv", sample.rows(120), header=sample.header)
    log = tmp_path / "run.log"
    args: list[str | Path] = [
        source, "--kind", sample.name, "--base-url", sandbox.url, "--log-file", log,
    ]  # fmt: skip
    env = {"AFFELIOS_JOURNAL": postgres}  # the password from the environment
    first = run_cli(*args, "--new-journal", env=env)
    assert first.returncode == 0, first.stderr
    again = run_cli(*args, env=env)
    assert again.returncode == 0, again.stderr
    results = read_results(tmp_path / "in.results.csv")
    assert {r["status"] for r in results} == {"skipped"}
    assert sum(sample.taken(sandbox.server).values()) == 120  # none twice
    stats = run_cli("stats", "--kind", sample.name, env=env, module=JOURNAL_CLI)
    assert f"120 {sample.name} in {shown_journal(postgres)}" in stats.stdout, stats.stderr
    shown = _everything_shown(first, again, stats, files=(log, tmp_path / "in.results.csv"))
    assert shown_journal(postgres) in log.read_text()  # named, without its credentials
    assert pg.PASSWORD not in shown


def test_a_password_on_the_command_line_is_refused_and_not_shown(postgres: str) -> None:
    for module, args in (
        ("affelios_import", ["in.csv", "--dry-run", "--journal", postgres]),
        (JOURNAL_CLI, ["stats", "--journal", postgres]),
        (JOURNAL_CLI, ["copy", "j.db", postgres]),
    ):
        done = run_cli(*args, module=module)
        assert done.returncode == 2, done.stderr
        assert "seen by every user of this machine" in done.stderr
        assert pg.PASSWORD not in done.stdout + done.stderr


def test_a_database_that_cannot_be_reached_or_used_is_one_line_and_exit_2(
    pg_cluster: pg.Cluster, postgres: str, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "in.csv", [])
    wrong = pg_cluster.url("postgres").replace(pg.PASSWORD, "not-the-password")
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute("CREATE TABLE customers (id int)")  # another program's
    for url, said in (
        (wrong, "password authentication failed"),
        ("postgresql://127.0.0.1:1/none", "cannot connect"),
        (postgres, "holds a customers table that is not a journal's"),
    ):
        done = run_cli(source, "--dry-run", env={"AFFELIOS_JOURNAL": url})
        assert done.returncode == 2, done.stderr
        assert said in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "not-the-password" not in done.stderr and pg.PASSWORD not in done.stderr


def _intend(journal: SharedJournal, keys: list[tuple[str, str]], **kw: object) -> set[object]:
    async def go() -> set[object]:
        return set(await journal.intend(keys, **kw))  # type: ignore[arg-type]

    return asyncio.run(go())


def test_a_key_is_claimed_by_one_run_and_another_live_runs_rows_are_left_to_it(
    postgres: str,
) -> None:
    url, kind = "https://api.example", "transactions"
    first = SharedJournal.open(postgres, base_url=url, kind=kind)
    second = SharedJournal.open(postgres, base_url=url, kind=kind)
    keys = [("b", f"T{i}") for i in range(100)]
    assert _intend(first, keys[:60]) == set()
    assert _intend(second, keys[40:]) == set(keys[40:60])  # the first run's
    found = second.lookup(keys[:50])
    assert {entry.status for entry in found.values()} == {CLAIMED}
    assert "pid" in found[keys[0]].claimed_by
    # A run that dies lets go of its rows: they are `sending`, an earlier run's.
    first.db.connection.close()
    time.sleep(0.2)
    assert {entry.status for entry in second.lookup(keys[:50]).values()} == {SENDING}
    # Taken over only where the row is sent again (a customer's resend), never otherwise.
    assert _intend(second, keys[:10]) == set(keys[:10])
    assert _intend(second, keys[:10], resent=keys[:10]) == set()
    second.close()


@pytest.mark.parametrize("workers", [2])
def test_workers_on_one_ledger_send_each_transaction_once_through_faults_and_a_kill(
    postgres: str, tmp_path: Path, workers: int
) -> None:
    """Two workers import the same 3,000 transactions at once through 5% 503, 5% 429 and
    2% dropped connections; one is killed with SIGKILL, and run again. No transaction
    reaches the sandbox twice, and every one is either on it or said to be in doubt."""
    faults = Faults(
        fail_rate=0.05, fail_statuses=(503,), throttle_rate=0.05, drop_rate=0.02,
        retry_after="0", latency_ms=5, seed=7,
    )  # fmt: skip
    server = Sandbox(api_key=API_KEY, faults=faults)
    source = write_csv(tmp_path / "tx.csv", transactions(3000), header=TX_HEADER)
    env = {"AFFELIOS_JOURNAL": postgres}
    with serve_in_thread(server) as url:

        def args(name: str) -> list[str | Path]:
            return [
                source, "--kind", "transactions", "--base-url", url, "--new-journal",
                "--out", tmp_path / f"{name}.csv", "--errors-out", tmp_path / f"{name}.err.csv",
                "--concurrency", "8",
            ]  # fmt: skip

        runs = [start(args(f"w{i}"), env=env) for i in range(workers)]
        wait_for(lambda: len(server.transactions) >= 600, timeout=60)
        runs[0].send_signal(signal.SIGKILL)
        assert runs[0].wait(10) == -signal.SIGKILL
        for other in runs[1:]:
            _, err = other.communicate(timeout=120)
            assert other.returncode in (0, 1), err
        time.sleep(0.2)  # the dead worker's requests land
        before = set(TRANSACTIONS.taken(server))
        again = run_cli(*args("again"), env=env)
    assert again.returncode in (0, 1), again.stderr
    taken = TRANSACTIONS.taken(server)  # asserts none twice
    final = read_results(tmp_path / "again.csv")
    assert len(final) == 3000
    ids = {r["External Transaction ID"]: r for r in final}
    statuses = {r["status"] for r in final}
    assert statuses <= {"skipped", "unconfirmed", "accepted"}, statuses
    # Skipped: the API took it. Unconfirmed: sent, its answer lost (it may be there).
    assert all(i in taken for i, r in ids.items() if r["status"] == "skipped")
    # Accepted now: a row no earlier run sent, which the rerun may send (seen once in
    # CI: the other worker had reported it claimed by the dead one, whose entry was gone
    # by the rerun); never one the API had already taken.
    assert all(i not in before for i, r in ids.items() if r["status"] == "accepted")
    assert set(taken) <= set(ids)
    worker = read_results(tmp_path / "w1.csv")
    assert any(r["status"] == "claimed" for r in worker)  # the first worker's rows


def test_a_sqlite_journal_copied_to_postgres_then_a_run_on_it_sends_nothing(
    sandbox: RunningSandbox, postgres: str, tmp_path: Path
) -> None:
    customers = write_csv(tmp_path / "c.csv", good_rows(50))
    deposits = write_csv(tmp_path / "t.csv", transactions(80), header=TX_HEADER)
    local = tmp_path / "journal.sqlite3"
    for path, kind in ((customers, "customers"), (deposits, "transactions")):
        args: list[str | Path] = [path, "--kind", kind, "--base-url", sandbox.url]
        args += ["--journal", local]
        assert run_cli(*args, "--new-journal").returncode == 0
    bare = _without_password(postgres)
    env = {"PGPASSWORD": pg.PASSWORD}  # libpq's own place for it
    copied = run_cli("copy", local, bare, env=env, module=JOURNAL_CLI)
    assert copied.returncode == 0, copied.stderr
    assert "customers: 50 copied" in copied.stderr and "transactions: 80 copied" in copied.stderr
    before = len(sandbox.server.transactions), len(sandbox.server.customers)
    for path, kind in ((customers, "customers"), (deposits, "transactions")):
        done = run_cli(path, "--kind", kind, "--base-url", sandbox.url, "--journal", bare, env=env)
        assert done.returncode == 0, done.stderr  # not refused as blind: it knows this API
        assert {r["status"] for r in read_results(path.with_suffix(".results.csv"))} == {"skipped"}
    assert (len(sandbox.server.transactions), len(sandbox.server.customers)) == before
    # And back: a backup of the shared journal is a SQLite journal that knows it all.
    backup = tmp_path / "backup.sqlite3"
    saved = run_cli("backup", backup, "--journal", bare, env=env, module=JOURNAL_CLI)
    assert saved.returncode == 0, saved.stderr
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT count(*) FROM transactions").fetchone()[0] == 80
    again = run_cli(deposits, "--kind", "transactions", "--base-url", sandbox.url,
                    "--journal", backup)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(sandbox.server.transactions) == before[0]


def test_the_journal_commands_work_on_postgres(
    sandbox: RunningSandbox, postgres: str, tmp_path: Path
) -> None:
    deposits = write_csv(tmp_path / "t.csv", transactions(20), header=TX_HEADER)
    env = {"AFFELIOS_JOURNAL": postgres}
    first = run_cli(deposits, "--kind", "transactions", "--base-url", sandbox.url,
                    "--new-journal", env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    journal = ["--kind", "transactions"]
    shown = run_cli("show", "T00001", "--brand", "casino-x", *journal, env=env, module=JOURNAL_CLI)
    assert "accepted" in shown.stdout, shown.stderr
    export = run_cli("export", "-o", tmp_path / "j.csv", *journal, env=env, module=JOURNAL_CLI)
    assert export.returncode == 0 and len((tmp_path / "j.csv").read_text().splitlines()) == 21
    # Accepted transactions are kept unless --status names them; then forgotten.
    kept = run_cli("forget", "T00001", "--brand", "casino-x", *journal, "--yes", env=env,
                   module=JOURNAL_CLI)  # fmt: skip
    assert kept.returncode == 1 and "kept" in kept.stderr
    gone = run_cli("forget", "T00001", "--brand", "casino-x", *journal, "--status", "accepted",
                   "--yes", env=env, module=JOURNAL_CLI)  # fmt: skip
    assert gone.returncode == 0 and "forgot 1 transaction:" in gone.stderr, gone.stderr
    alias = sandbox.url.replace("127.0.0.1", "localhost")
    moved = run_cli("same-api", sandbox.url, alias, *journal, "--yes", env=env, module=JOURNAL_CLI)
    assert moved.returncode == 0 and "19 transactions" in moved.stderr, moved.stderr
    assert pg.PASSWORD not in _everything_shown(shown, export, kept, gone, moved)


def test_a_reader_never_creates_tables_and_a_dry_run_reads_the_shared_journal(
    postgres: str,
) -> None:
    journal = open_journal(postgres, base_url="https://a", kind="customers", read_only=True)
    assert journal.lookup([("b", "1")]) == {}
    journal.close()
    with psycopg.connect(postgres) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)
    with pytest.raises(SetupError, match="cannot connect"):
        open_journal("postgresql://127.0.0.1:1/x", base_url="https://a", kind="customers")


def test_a_fresh_worker_on_a_new_shared_journal_is_refused_a_blind_transactions_run(
    sandbox: RunningSandbox, postgres: str, tmp_path: Path
) -> None:
    """A worker that starts clean with a shared journal that never saw this API is
    refused, as with a file; with --new-journal it imports, and the next worker (another
    process, nothing on its disk) sends nothing."""
    deposits = write_csv(tmp_path / "t.csv", transactions(30), header=TX_HEADER)
    args: list[str | Path] = [deposits, "--kind", "transactions", "--base-url", sandbox.url]
    env = {"AFFELIOS_JOURNAL": postgres}
    blind = run_cli(*args, env=env)
    assert blind.returncode == 2 and "--new-journal" in blind.stderr, blind.stderr
    assert len(sandbox.server.transactions) == 0
    assert run_cli(*args, "--new-journal", env=env).returncode == 0
    next_night = run_cli(*args, env=env, cwd=tmp_path)
    assert next_night.returncode == 0, next_night.stderr
    assert len(sandbox.server.transactions) == 30


def test_a_role_without_rights_is_one_line_that_a_short_password_does_not_mangle(
    postgres: str,
) -> None:
    """A password `r` was blanked in every form it could take: the message read
    "pe[key]mission denied fo[key] table". Short passwords are blanked as words."""
    open_journal(postgres, base_url="https://a", kind="customers").close()  # the tables
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute("CREATE ROLE reader LOGIN PASSWORD 'r'")
    reader = postgres.replace(f"postgres:{pg.PASSWORD}@", "reader:r@")
    done = run_cli("stats", env={"AFFELIOS_JOURNAL": reader}, module=JOURNAL_CLI)
    assert done.returncode == 2, done.stderr
    assert "cannot be used (permission denied for table affelios_journal)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
