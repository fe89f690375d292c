"""The real command, as a subprocess, over real HTTP against the sandbox on loopback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from tests.conftest import (
    API_KEY,
    RunningSandbox,
    good_rows,
    read_results,
    run_cli,
    write_csv,
)
from tests.kinds import TRANSACTIONS, TX_HEADER, transactions

ROOT = Path(__file__).resolve().parent.parent


def test_clean_file_creates_every_row_with_the_sandboxes_id_then_a_rerun_skips_all(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "customers.csv", good_rows(120))
    journal = tmp_path / "journal.db"
    done = run_cli(source, "--brand", "casino-x", "--base-url", sandbox.url, "--journal", journal)
    assert done.returncode == 0, done.stderr
    results = read_results(tmp_path / "customers.results.csv")
    assert len(results) == 120
    assert {r["status"] for r in results} == {"created"}
    store = sandbox.server.customers
    assert len(store) == 120
    for r in results:
        customer = store[r["affelios_id"]]
        assert (customer["externalBrandId"], customer["externalId"]) == (
            r["externalBrandId"],
            r["externalId"],
        )
        assert customer["_request"]["clickId"] == r["clickKey"]
        assert customer["_request"]["username"] == r["username"]
    assert "120 rows: 120 created in" in done.stderr

    requests_before = sandbox.server.stats["requests"]
    again = run_cli(source, "--brand", "casino-x", "--base-url", sandbox.url, "--journal", journal)
    assert again.returncode == 0, again.stderr
    assert sandbox.server.stats["requests"] == requests_before  # not one request
    rerun = read_results(tmp_path / "customers.results.csv")
    assert {r["status"] for r in rerun} == {"skipped"}
    assert [r["affelios_id"] for r in rerun] == [r["affelios_id"] for r in results]


def test_bad_rows_are_invalid_and_never_reach_the_server(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = good_rows(4)
    rows[1][2] = "28/06/2025"
    rows[3][0] = ""
    source = write_csv(tmp_path / "c.csv", rows)
    done = run_cli(source, "--base-url", sandbox.url, "--journal", tmp_path / "j.db")
    assert done.returncode == 1
    results = read_results(tmp_path / "c.results.csv")
    assert [r["status"] for r in results] == ["created", "invalid", "created", "invalid"]
    assert results[1]["error"].startswith("registrationDate '28/06/2025': expected")
    assert results[3]["error"] == "externalId empty: expected a value (it is required)"
    assert sorted(c["externalId"] for c in sandbox.server.customers.values()) == [
        "C00001",
        "C00003",
    ]
    assert sandbox.server.stats["400"] == 0


def test_a_wrong_key_stops_after_a_handful_and_leaks_nowhere(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    wrong = "wrong-key-d41d8cd98f00b204"
    source = write_csv(tmp_path / "c.csv", good_rows(500))
    journal = tmp_path / "j.db"
    summary = tmp_path / "summary.json"
    done = run_cli(
        source,
        "--base-url",
        sandbox.url,
        "--journal",
        journal,
        "--summary-json",
        summary,
        api_key=wrong,
    )
    assert done.returncode == 3
    assert sandbox.server.stats["requests"] == 1
    assert sandbox.server.customers == {}
    assert "stopped: the API rejected the API key (HTTP 401)" in done.stderr
    written = json.loads(summary.read_text())
    assert (written["stopped"][:31], written["stop_kind"]) == (
        "the API rejected the API key (H",
        "key_refused",
    )
    results = read_results(tmp_path / "c.results.csv")
    assert len(results) == 500
    assert {r["status"] for r in results} == {"failed", "not_sent"}
    for place in (
        done.stdout,
        done.stderr,
        (tmp_path / "c.results.csv").read_text(),
        summary.read_text(),
        journal.read_bytes().decode("latin-1"),
    ):
        assert wrong not in place
        assert API_KEY not in place


def test_the_sample_file_gets_its_expected_statuses(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    out = tmp_path / "sample.results.csv"
    done = run_cli(
        ROOT / "sample_data" / "customers.csv",
        "--brand",
        "casino-x",
        "--base-url",
        sandbox.url,
        "--journal",
        tmp_path / "j.db",
        "-o",
        out,
        "--errors-out",
        tmp_path / "sample.errors.csv",
    )
    assert done.returncode == 1
    results = read_results(out)
    assert len(results) == 200
    invalid = {int(r["row"]): r["error"].split(" ")[0] for r in results if r["status"] == "invalid"}
    assert invalid == {
        31: "registrationDate",  # 2025-06-28 19:29:48
        42: "registrationDate",  # 28/06/2025
        53: "registrationDate",  # 2025-02-30T10:00:00Z
        64: "registrationDate",  # +02:00 offset
        75: "externalId",  # blank
        86: "revShareExcluded",  # maybe
        97: "externalBrandId",  # another brand
        108: "duplicate",  # of row 8
        119: "externalId",  # and registrationDate, both empty
    }
    assert "registrationDate" in results[118]["error"]
    assert {r["status"] for r in results if int(r["row"]) not in invalid} == {"created"}
    assert len(sandbox.server.customers) == 191
    by_id = {r["externalId"]: r for r in results}
    # text survives as written: leading zeros, a number-looking id, quotes, newlines
    for external_id in ("000123", "1e5", "NA"):
        assert (
            sandbox.server.customers[by_id[external_id]["affelios_id"]]["externalId"] == external_id
        )
    sent = [c["_request"] for c in sandbox.server.customers.values()]
    assert 'O\'Brien, "Paddy"' in {c.get("username") for c in sent}
    assert "line one\nline two" in {c.get("username") for c in sent}
    assert all("signup_channel" not in c and "clickKey" not in c for c in sent)
    assert all(v != "" for c in sent for v in c.values())


def test_the_journal_holds_what_was_created(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    journal = tmp_path / "j.db"
    assert run_cli(source, "--base-url", sandbox.url, "--journal", journal).returncode == 0
    rows = (
        sqlite3.connect(journal)
        .execute(
            "SELECT base_url, external_brand_id, external_id, affelios_id, status FROM customers"
        )
        .fetchall()
    )
    assert {(r[0], r[1], r[2], r[4]) for r in rows} == {
        (sandbox.url, "casino-x", f"C0000{i}", "created") for i in (1, 2, 3)
    }
    assert {r[3] for r in rows} == set(sandbox.server.customers)


@pytest.mark.parametrize("name", ["same path", "symbolic link", "hard link"])
def test_two_runs_at_once_on_one_journal_never_both_send(tmp_path: Path, name: str) -> None:
    server = Sandbox(api_key=API_KEY, faults=Faults(latency_ms=40))
    source = write_csv(tmp_path / "c.csv", good_rows(200))
    journal = tmp_path / "j.db"
    journal.touch()
    other = {
        "same path": journal,
        "symbolic link": tmp_path / "s.db",
        "hard link": tmp_path / "h.db",
    }[name]
    if name == "symbolic link":
        other.symlink_to(journal)
    elif name == "hard link":
        os.link(journal, other)
    with serve_in_thread(server) as url:
        args = [sys.executable, "-m", "affelios_import", str(source), "--base-url", url]
        first = subprocess.Popen(
            [*args, "--journal", str(journal), "--concurrency", "4"],
            env=os.environ | {"AFFELIOS_API_KEY": API_KEY},
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while server.stats["requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        second = run_cli(source, "--base-url", url, "--journal", other, "-o", tmp_path / "2.csv")
        assert first.wait(60) == 0, first.stderr and first.stderr.read()
    assert second.returncode == 2
    shown = journal if name == "symbolic link" else other  # a link is shown as what it names
    assert second.stderr == (
        f"affelios-import: journal {shown.resolve()} is in use by another affelios-import run "
        f"(pid {first.pid if name != 'hard link' else 'unknown'}); nothing was sent: run again "
        "when it has finished\n"
    )
    assert not (tmp_path / "2.csv").exists()
    assert server.stats["requests"] == server.stats["201"] == 200
    assert len(server.customers) == 200


def test_bad_transactions_are_invalid_and_good_ones_arrive_exact_once(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = transactions(1000)
    rows[10][3] = "28/06/2025"  # a bad date
    rows[20][5] = "12,50"
    rows[30][6] = "abc"
    rows[40][2] = ""  # no customer
    rows[50][0] = ""  # no id
    source = write_csv(tmp_path / "tx.csv", rows, header=TX_HEADER)
    journal = tmp_path / "j.db"
    summary, report = tmp_path / "s.json", tmp_path / "r.html"
    done = run_cli(
        source, "--kind", "transactions", "--new-journal", "--base-url", sandbox.url,
        "--journal", journal,
        "--summary-json", summary, "--report-html", report,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    results = read_results(tmp_path / "tx.results.csv")
    assert len(results) == 1000
    invalid = {r["row"]: r["error_kind"] for r in results if r["status"] == "invalid"}
    assert invalid == {
        "11": "date_not_zulu:transactionDate",
        "21": "amount_invalid:depositAmount",
        "31": "amount_invalid:grossRevenue",
        "41": "required_missing:externalCustomerId",
        "51": "required_missing:externalId",
    }
    assert {r["status"] for r in results} == {"accepted", "invalid"}
    taken = TRANSACTIONS.taken(sandbox.server)
    assert len(taken) == 995
    by_id = {str(t["externalId"]): t for t in sandbox.server.transactions}
    assert str(by_id["T00001"]["depositAmount"]) == "1.01"
    assert str(by_id["T00999"]["depositAmount"]) == "999.99"
    assert str(by_id["T00002"]["grossRevenue"]) == "-2.1"
    assert "grossRevenue" not in by_id["T00003"]  # empty: left out
    deposits = sum(
        (Decimal(r[5]) for i, r in enumerate(rows) if results[i]["status"] == "accepted"),
        Decimal(0),
    )
    assert f"sums over the 995 transactions the API took: deposits {deposits:,}" in done.stderr
    written = json.loads(summary.read_text())
    assert written["amounts"]["depositAmount"] == str(deposits)
    assert written["counts"]["accepted"] == 995
    assert f"deposits {deposits:,}" in report.read_text(encoding="utf-8")
    errors = read_results(tmp_path / "tx.errors.csv")
    assert [r["source_row"] for r in errors] == ["11", "21", "31", "41", "51"]
    # Run again: nothing is sent twice; every accepted one is skipped.
    requests = sandbox.server.stats["requests"]
    again = run_cli(
        source, "--kind", "transactions", "--base-url", sandbox.url, "--journal", journal
    )
    assert again.returncode == 1, again.stderr
    assert sandbox.server.stats["requests"] == requests
    assert {r["status"] for r in read_results(tmp_path / "tx.results.csv")} == {
        "skipped", "invalid"
    }  # fmt: skip


def test_a_blind_transactions_run_is_refused_before_anything_is_sent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A fresh worker's journal, or another spelling of the API's URL, cannot tell what
    was sent before: refused (exit 2, one line) until --new-journal says this is the
    first import of transactions from anywhere."""
    source = write_csv(tmp_path / "tx.csv", transactions(20), header=TX_HEADER)
    journal = tmp_path / "j.db"
    args: list[str | Path] = [source, "--kind", "transactions", "--journal", journal]
    for extra in ([], ["--dry-run"], ["--brand", "casino-x"]):
        refused = run_cli(*args, "--base-url", sandbox.url, *extra)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(f"affelios-import: journal {journal}: it has never ")
        assert refused.stderr.count("\n") == 1 and "add --new-journal" in refused.stderr
    assert sandbox.server.stats["requests"] == 0
    first = run_cli(*args, "--base-url", sandbox.url, "--new-journal")
    assert first.returncode == 0, first.stderr
    assert len(TRANSACTIONS.taken(sandbox.server)) == 20
    # The next night needs no flag; a brand this journal never sent for is refused.
    again = run_cli(*args, "--base-url", sandbox.url)
    assert again.returncode == 0, again.stderr
    other = run_cli(*args, "--base-url", sandbox.url, "--brand", "other-brand")
    assert other.returncode == 2 and "for brand 'other-brand'" in other.stderr
    # The same API spelled another way: the journal never recorded it, so refused.
    port = sandbox.url.rsplit(":", 1)[1]
    alias = run_cli(*args, "--base-url", f"http://localhost:{port}")
    assert alias.returncode == 2 and f"sent to http://localhost:{port}" in alias.stderr
    assert sandbox.server.stats["requests"] == 20  # nothing more was sent


def test_a_transaction_sent_to_another_url_of_the_journal_is_not_sent_until_told(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """The same API under two spellings of its URL, both in the journal (the second
    first imported with --new-journal, say): a transaction sent under one is not sent
    under the other, until the journal is told they are one API (skipped) or not (sent)."""
    port = sandbox.url.rsplit(":", 1)[1]
    alias = f"http://localhost:{port}"
    journal = tmp_path / "j.db"
    first = write_csv(tmp_path / "a.csv", transactions(5), header=TX_HEADER)
    args: list[str | Path] = ["--kind", "transactions", "--journal", journal]
    assert run_cli(first, *args, "--base-url", sandbox.url, "--new-journal").returncode == 0
    both = write_csv(tmp_path / "b.csv", transactions(8), header=TX_HEADER)  # 3 new ones
    done = run_cli(both, *args, "--base-url", alias, "--new-journal")
    assert done.returncode == 1, done.stderr
    results = read_results(tmp_path / "b.results.csv")
    assert [r["status"] for r in results] == ["not_sent"] * 5 + ["accepted"] * 3
    assert {r["error_kind"] for r in results[:5]} == {"sent_to_other_api"}
    assert results[0]["error"].startswith(f"sent to {sandbox.url} on ")
    assert f"affelios-journal same-api {sandbox.url} {alias} --kind transactions" in done.stderr
    assert len(TRANSACTIONS.taken(sandbox.server)) == 8  # none twice
    # Told they are one API: skipped, nothing sent.
    same = subprocess.run(
        [sys.executable, "-m", "affelios_import.cli.journal", "same-api", sandbox.url, alias,
         "--kind", "transactions", "--journal", str(journal), "--yes"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert same.returncode == 0, same.stderr
    again = run_cli(both, *args, "--base-url", alias)
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in read_results(tmp_path / "b.results.csv")} == {"skipped"}
    assert sandbox.server.stats["requests"] == 8


def test_not_the_same_api_sends_what_another_url_took(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    port = sandbox.url.rsplit(":", 1)[1]
    journal = tmp_path / "j.db"
    source = write_csv(tmp_path / "a.csv", transactions(3), header=TX_HEADER)
    args: list[str | Path] = [source, "--kind", "transactions", "--journal", journal]
    assert run_cli(*args, "--base-url", sandbox.url, "--new-journal").returncode == 0
    staging = f"http://localhost:{port}"
    done = run_cli(*args, "--base-url", staging, "--new-journal", "--not-the-same-api", sandbox.url)
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in read_results(tmp_path / "a.results.csv")} == {"accepted"}
