"""`affelios-journal`: stats, show, export and forget, on journals real runs wrote."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from affelios_import.cli.journal import main
from affelios_import.journal import Journal
from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from tests.conftest import API_KEY, RunningSandbox, good_rows, read_results, run_cli, write_csv
from tests.kinds import TRANSACTIONS, TX_HEADER, transactions


@pytest.fixture
def imported(sandbox: RunningSandbox, tmp_path: Path) -> Path:
    """A journal after a real import of three customers."""
    journal = tmp_path / "j.db"
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    done = run_cli(source, "--base-url", sandbox.url, "--journal", journal)
    assert done.returncode == 0, done.stderr
    return journal


def test_stats_show_and_export(imported: Path, sandbox: RunningSandbox) -> None:
    runner = CliRunner()
    stats = runner.invoke(main, ["stats", "--journal", str(imported)])
    assert stats.exit_code == 0
    assert stats.output.splitlines()[1].split() == ["3", "created", "casino-x", sandbox.url]

    show = runner.invoke(main, ["show", "C00002", "--journal", str(imported), "--json"])
    assert show.exit_code == 0
    entry = json.loads(show.output)
    ids = {c["externalId"]: c["id"] for c in sandbox.server.customers.values()}
    assert entry["affelios_id"] == ids["C00002"] and entry["status"] == "created"
    assert json.loads(entry["sent"])["clickId"] == "clk_2"
    missing = runner.invoke(main, ["show", "nobody", "--journal", str(imported)])
    assert missing.exit_code == 1 and "no customer 'nobody'" in missing.stderr
    args = ["--journal", str(imported), "--kind", "transactions"]
    missing = runner.invoke(main, ["show", "T1", *args])  # transactions speak of them
    assert missing.exit_code == 1 and "no transaction 'T1'" in missing.stderr
    written = runner.invoke(main, ["export", "-o", str(imported.parent / "t.csv"), *args])
    assert "0 transactions written to" in written.stderr

    export = runner.invoke(main, ["export", "--journal", str(imported)])
    assert export.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(export.output)))
    assert {r["externalId"]: r["affelios_id"] for r in rows} == ids
    assert list(rows[0]) == [
        "externalBrandId", "externalId", "affelios_id", "status",
        "first_recorded_at", "last_recorded_at", "base_url", "sent",
    ]  # fmt: skip


def test_reading_never_writes_the_journal(imported: Path) -> None:
    before = imported.read_bytes()
    for args in (["stats"], ["show", "C00001"], ["export"]):
        assert CliRunner().invoke(main, [*args, "--journal", str(imported)]).exit_code == 0
    assert imported.read_bytes() == before
    # ... and works while an import holds the journal's lock.
    holder = Journal.open(imported, base_url="u", kind="customers")
    try:
        assert CliRunner().invoke(main, ["stats", "--journal", str(imported)]).exit_code == 0
    finally:
        holder.close()


def test_forget_asks_for_yes_then_the_next_import_sends_again(
    imported: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = ["forget", "C00001", "--brand", "casino-x", "--journal", str(imported)]
    asked = runner.invoke(main, args)
    assert asked.exit_code == 1
    assert "would forget 1 customer; nothing was changed: add --yes" in asked.stderr
    done = runner.invoke(main, [*args, "--yes"])
    assert done.exit_code == 0, done.stderr
    assert "forgot 1 customer: the next import sends it again" in done.stderr
    again = run_cli(tmp_path / "c.csv", "--base-url", sandbox.url, "--journal", imported)
    assert again.returncode == 0
    statuses = [r["status"] for r in read_results(tmp_path / "c.results.csv")]
    assert statuses == ["exists", "skipped", "skipped"]  # sent again: the API had it


def test_forget_by_a_keys_file_and_refused_while_an_import_runs(
    imported: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.csv"
    keys.write_text("External ID;External Brand ID\nC00002;casino-x\nC00003;casino-x\n")
    holder = Journal.open(imported, base_url="u", kind="customers")
    try:
        refused = CliRunner().invoke(
            main, ["forget", "--keys", str(keys), "--journal", str(imported), "--yes"]
        )
    finally:
        holder.close()
    assert refused.exit_code == 2
    assert "is in use by another affelios-import run" in refused.stderr
    done = CliRunner().invoke(
        main, ["forget", "--keys", str(keys), "--journal", str(imported), "--yes"]
    )
    assert done.exit_code == 0, done.stderr
    with sqlite3.connect(imported) as db:
        left = [row[0] for row in db.execute("SELECT external_id FROM customers")]
    db.close()
    assert left == ["C00001"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forget", "C1"], "give --brand with the ids"),
        (["forget"], "give the ids (with --brand), or --keys FILE"),
    ],
)
def test_usage_mistakes_are_exit_2(imported: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [*args, "--journal", str(imported)])
    assert result.exit_code == 2 and message in result.stderr


def test_a_missing_journal_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["stats", "--journal", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"affelios-journal: journal {tmp_path / 'none.db'}: no such file "
        "(no import has written it yet)\n"
    )


def test_a_keys_file_of_ids_alone_takes_the_brand_from_brand(
    imported: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "ids.csv"
    keys.write_text("externalId\nC00001\nC00003\n")  # one column: no delimiter to sniff
    args = ["forget", "--keys", str(keys), "--brand", "casino-x", "--journal", str(imported)]
    done = CliRunner().invoke(main, [*args, "--yes"])
    assert done.exit_code == 0, done.stderr
    assert "forgot 2 customers" in done.stderr


def test_an_unconfirmed_transaction_released_by_forget_is_sent_next_run(tmp_path: Path) -> None:
    """A person checks an unconfirmed transaction in Affelios, finds it did not arrive,
    releases it with `forget --kind transactions --yes`: the next run sends it, once."""
    server = Sandbox(api_key=API_KEY, faults=Faults(drop_rate=0.2, seed=3))
    source = write_csv(tmp_path / "tx.csv", transactions(50), header=TX_HEADER)
    journal = tmp_path / "j.db"
    with serve_in_thread(server) as url:
        args: list[str | Path] = [
            source, "--kind", "transactions", "--new-journal", "--base-url", url,
            "--journal", journal,
        ]  # fmt: skip
        first = run_cli(*args)
        assert first.returncode == 1, first.stderr
        arrived = set(TRANSACTIONS.taken(server))
        unconfirmed = [
            r[TRANSACTIONS.id_column]
            for r in read_results(tmp_path / "tx.results.csv")
            if r["status"] == "unconfirmed"
        ]
        missing = [t for t in unconfirmed if t not in arrived]
        assert missing, "a dropped request arrives nowhere"
        forget = subprocess.run(
            [sys.executable, "-m", "affelios_import.cli.journal", "forget", missing[0],
             "--brand", "casino-x", "--kind", "transactions", "--journal", str(journal), "--yes"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert forget.returncode == 0, forget.stderr
        server.faults = Faults()  # the API is well again
        run_cli(*args)
    again = {r[TRANSACTIONS.id_column]: r for r in read_results(tmp_path / "tx.results.csv")}
    assert again[missing[0]]["status"] == "accepted"
    assert {again[t]["status"] for t in unconfirmed if t != missing[0]} == {"unconfirmed"}
    assert TRANSACTIONS.taken(server)[missing[0]] == 1  # asserts none twice


def transactions_journal(path: Path) -> Path:
    """A journal holding one transaction of each status a run leaves."""
    journal = Journal.open(path, base_url="https://api.test", kind="transactions")
    for external_id, status in (("T1", "accepted"), ("T2", "created"), ("T3", "unconfirmed")):
        journal.record(("b", external_id), affelios_id=None, status=status, sent=b"{}")
    journal.flush()
    journal.db.execute(  # a crash's entry: sent, never answered
        "INSERT INTO transactions VALUES ('https://api.test','b','T4',NULL,'sending',"
        "'2026-12-01T00:00:00.000Z','2026-12-01T00:00:00.000Z',NULL)"
    )
    journal.db.commit()
    journal.close()
    return path


def held(path: Path) -> dict[str, str]:
    rows = sqlite3.connect(path).execute("SELECT external_id, status FROM transactions")
    return dict(rows.fetchall())


def test_forgetting_transactions_releases_only_those_in_doubt_unless_told(tmp_path: Path) -> None:
    journal = transactions_journal(tmp_path / "j.db")
    runner = CliRunner()
    base = ["forget", "T1", "T2", "T3", "T4", "--brand", "b", "--kind", "transactions"]
    asked = runner.invoke(main, [*base, "--journal", str(journal)])
    assert asked.exit_code == 1
    assert "2 transactions in the journal are not sending, unconfirmed: kept" in asked.stderr
    assert "would forget 2 transactions" in asked.stderr
    done = runner.invoke(main, [*base, "--journal", str(journal), "--yes"])
    assert done.exit_code == 0, done.stderr
    assert held(journal) == {"T1": "accepted", "T2": "created"}  # the API took these
    told = runner.invoke(main, [*base, "--status", "accepted", "--journal", str(journal), "--yes"])
    assert told.exit_code == 0, told.stderr
    assert held(journal) == {"T2": "created"}


def test_forget_keys_of_a_results_file_releases_only_its_rows_in_doubt(tmp_path: Path) -> None:
    journal = transactions_journal(tmp_path / "j.db")
    results = write_csv(
        tmp_path / "tx.results.csv",
        [["1", "skipped", "", "", "0", "sent", "", "T1", "b"],
         ["2", "unconfirmed", "", "", "1", "in doubt", "unconfirmed", "T3", "b"],
         ["3", "unconfirmed", "", "", "0", "in doubt", "unconfirmed_earlier", "T4", "b"],
         ["4", "skipped", "", "", "0", "sent", "", "T2", "b"]],
        header=("row", "status", "affelios_id", "http_status", "attempts", "error",
                "error_kind", "externalId", "externalBrandId"),
    )  # fmt: skip
    done = CliRunner().invoke(
        main,
        ["forget", "--keys", str(results), "--kind", "transactions", "--status", "accepted",
         "--status", "created", "--status", "unconfirmed", "--status", "sending",
         "--journal", str(journal), "--yes"],
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    # Even with every status named, the skipped rows of the results were not asked for.
    assert held(journal) == {"T1": "accepted", "T2": "created"}


@pytest.mark.parametrize("own", ["j.db", "j.db-wal", "j.db-shm", "j.db.lock", "c.csv"])
def test_export_writes_over_nothing_but_an_earlier_export(tmp_path: Path, own: str) -> None:
    journal = transactions_journal(tmp_path / "j.db")
    write_csv(tmp_path / "c.csv", good_rows(2))
    target = tmp_path / own
    before = target.read_bytes() if own in ("j.db", "c.csv") else None
    runner = CliRunner()
    refused = runner.invoke(
        main, ["export", "--kind", "transactions", "--journal", str(journal), "-o", str(target)]
    )
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"affelios-journal: -o {target}: ")
    if before is not None:
        assert target.read_bytes() == before
    export = tmp_path / "export.csv"
    for _ in range(2):  # a new path, then over the export written the first time
        done = runner.invoke(
            main,
            ["export", "--kind", "transactions", "--journal", str(journal), "-o", str(export)],
        )
        assert done.exit_code == 0, done.stderr
        assert len(list(csv.DictReader(export.open()))) == 4


@pytest.mark.parametrize(
    "args",
    [
        ["forget", "T1", "--brand", "b", "--base-url", "http://[::1"],
        ["same-api", "http://[::1", "https://api.test"],
        ["same-api", "https://api.test", "not a url"],
    ],
)
def test_a_url_that_cannot_be_read_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    journal = transactions_journal(tmp_path / "j.db")
    done = CliRunner().invoke(main, [*args, "--kind", "transactions", "--journal", str(journal)])
    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert "expected https://host" in done.stderr


def test_same_api_takes_one_urls_entries_as_the_others(tmp_path: Path) -> None:
    journal = transactions_journal(tmp_path / "j.db")
    base = ["same-api", "https://api.test", "https://new.test", "--kind", "transactions",
            "--journal", str(journal)]  # fmt: skip
    asked = CliRunner().invoke(main, base)
    assert asked.exit_code == 1 and "would take 4 transactions" in asked.stderr
    done = CliRunner().invoke(main, [*base, "--yes"])
    assert done.exit_code == 0, done.stderr
    apis = sqlite3.connect(journal).execute("SELECT DISTINCT base_url FROM transactions")
    assert apis.fetchall() == [("https://new.test",)]


def test_a_journal_that_fails_after_it_opened_is_one_line_and_exit_2(
    imported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost connection (or a disk error) in the middle of a command was a traceback."""

    def lost(journal: Journal) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("affelios_import.journal.queries.stats", lost)
    result = CliRunner().invoke(main, ["stats", "--journal", str(imported)])
    assert result.exit_code == 2
    assert result.stderr == f"affelios-journal: journal {imported}: disk I/O error\n"


def test_the_import_jobs_config_file_says_which_journal_kind_and_brand(
    imported: Path, tmp_path: Path
) -> None:
    """affelios-journal had no --config: the advice after a fix landed in the default
    journal while the nightly job's config named another."""
    job = tmp_path / "nightly.toml"
    job.write_text(
        f'journal = "{imported}"\nbrand = "casino-x"\nkind = "customers"\n'
        'concurrency = 8\n[map]\n"Shop" = "-"\n',  # the import's own keys are left alone
        encoding="utf-8",
    )
    runner = CliRunner()
    stats = runner.invoke(main, ["--config", str(job), "stats"])
    assert stats.exit_code == 0, stats.output
    assert stats.output.startswith(f"3 customers in {imported}")
    forget = runner.invoke(main, ["--config", str(job), "forget", "C00002"])  # its brand
    assert forget.exit_code == 1 and "C00002" in forget.output + forget.stderr
    other = runner.invoke(main, ["--config", str(job), "stats", "--journal", str(tmp_path / "x")])
    assert other.exit_code == 2 and "no such file" in other.stderr  # the command line wins
    job.write_text("brand = 42\n", encoding="utf-8")
    wrong = runner.invoke(main, ["--config", str(job), "stats"])
    assert wrong.exit_code == 2 and "brand = 42: expected text" in wrong.output


def test_the_config_files_table_of_a_kind_says_its_journal_and_map(tmp_path: Path) -> None:
    """A config file's settings were one for every kind: the transactions job's own
    journal and [map] could not be named beside the customers'."""
    journal = transactions_journal(tmp_path / "tx.db")
    job = tmp_path / "nightly.toml"
    job.write_text(
        f'journal = "{tmp_path / "customers.db"}"\nbrand = "b"\n'
        f'[transactions]\njournal = "{journal}"\n[transactions.map]\n"Txn" = "externalId"\n',
        encoding="utf-8",
    )
    keys = write_csv(tmp_path / "keys.csv", [["T3"]], header=("Txn",))
    runner = CliRunner()
    stats = runner.invoke(main, ["--config", str(job), "stats", "--kind", "transactions"])
    assert stats.exit_code == 0, stats.stderr
    assert f"transactions in {journal}" in stats.output
    done = runner.invoke(
        main,
        ["--config", str(job), "forget", "--keys", str(keys), "--kind", "transactions", "--yes"],
    )
    assert done.exit_code == 0, done.stderr
    assert "T3" not in held(journal)
    customers = runner.invoke(main, ["--config", str(job), "stats"])
    assert customers.exit_code == 2 and "customers.db: no such file" in customers.stderr


@pytest.mark.parametrize(
    ("id_column", "more"),
    [("External Transaction ID", []), ("Txn", ["--map", "Txn=externalId"])],
)
def test_forget_keys_reads_the_results_of_a_mapped_input_as_the_import_did(
    tmp_path: Path, id_column: str, more: list[str]
) -> None:
    """forget --keys refused the results file of a mapped input (`External Transaction ID`,
    or a column the import's --map named), although its help says it will do."""
    journal = transactions_journal(tmp_path / "j.db")
    results = write_csv(
        tmp_path / "tx.results.csv",
        [["1", "unconfirmed", "", "", "1", "in doubt", "unconfirmed", "T3", "b"],
         ["2", "skipped", "", "", "0", "sent", "", "T1", "b"]],
        header=("row", "status", "affelios_id", "http_status", "attempts", "error",
                "error_kind", id_column, "Brand"),
    )  # fmt: skip
    done = CliRunner().invoke(
        main,
        ["forget", "--keys", str(results), "--kind", "transactions", *more,
         "--journal", str(journal), "--yes"],
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert "T3" not in held(journal) and held(journal)["T1"] == "accepted"


def test_the_advice_for_rows_to_check_is_a_command_that_pastes(tmp_path: Path) -> None:
    """The advice for unconfirmed transactions gave no id, brand, journal or --yes."""
    import shlex

    import httpx

    from affelios_import.settings import Settings
    from tests.conftest import run

    source = write_csv(tmp_path / "tx.csv", transactions(3), header=TX_HEADER)

    def api(request: httpx.Request) -> httpx.Response:
        doubtful = json.loads(request.content)["externalId"] == "T00002"
        return httpx.Response(500 if doubtful else 202)  # a 500: it may have been taken

    settings = Settings(
        input=source, out=tmp_path / "r.csv", errors_out=tmp_path / "tx errors.csv",
        journal=tmp_path / "j.db", base_url="https://api.test", api_key="k",
        kind="transactions", new_journal=True, retries=0,
    )  # fmt: skip
    summary = run(settings, transport=httpx.MockTransport(api))
    said = [line for line in summary.to_text().splitlines() if "once checked:" in line]
    assert len(said) == 1
    command = shlex.split(said[0].split("once checked: ", 1)[1])
    assert command[0] == "affelios-journal" and "tx errors.csv" in said[0]
    done = CliRunner().invoke(main, command[1:])
    assert done.exit_code == 0, done.stderr
    assert "forgot 1 transaction:" in done.stderr
    assert set(held(tmp_path / "j.db")) == {"T00001", "T00003"}  # T00002 released


def test_each_row_to_check_ends_with_the_command_that_releases_it(tmp_path: Path) -> None:
    """A results line in doubt said `affelios-journal forget --kind transactions`: no id,
    brand, journal or --yes."""
    import shlex

    import httpx

    from affelios_import.settings import Settings
    from tests.conftest import run

    source = write_csv(tmp_path / "tx.csv", transactions(3), header=TX_HEADER)

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if b'"T00002"' in request.content else 202)

    settings = Settings(
        input=source, out=tmp_path / "r.csv", journal=tmp_path / "my journal.db",
        base_url="https://api.test", api_key="k", kind="transactions", new_journal=True,
        retries=0, brand="casino-x",
    )  # fmt: skip
    run(settings, transport=httpx.MockTransport(api))
    doubtful = [r for r in read_results(tmp_path / "r.csv") if r["status"] == "unconfirmed"]
    assert len(doubtful) == 1
    command = shlex.split(doubtful[0]["error"].rsplit("; to release it: ", 1)[1])
    assert command[:5] == ["affelios-journal", "forget", "T00002", "--brand", "casino-x"]
    done = CliRunner().invoke(main, command[1:])
    assert done.exit_code == 0, done.stderr
    assert set(held(tmp_path / "my journal.db")) == {"T00001", "T00003"}
