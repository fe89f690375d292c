"""Transactions: the checks and the request body, where money needs exactness."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pandas as pd
import pytest

from affelios_import.config import ImportConfig
from affelios_import.errors import ConfigError
from affelios_import.input.read import TEXT
from affelios_import.input.validate import near_amount, row_errors
from affelios_import.kinds import get
from affelios_import.kinds.transactions import body as transaction_body
from affelios_import.kinds.transactions import json_number
from affelios_import.outcome import Outcome, Status
from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from affelios_import.schemas.transaction import transaction_schema
from affelios_import.send.submit import Submitter
from affelios_import.settings import Settings
from affelios_import.wire.endpoint import Endpoint
from tests.conftest import API_KEY, RunningSandbox, read_results, run, run_cli, write_csv
from tests.test_faults import start, wait_for

GOOD = {
    "externalId": "T1",
    "externalBrandId": "casino-x",
    "externalCustomerId": "C1",
    "transactionDate": "2025-06-28T19:29:48.174Z",
}


def errors_of(**cells: str) -> list[str]:
    frame = pd.DataFrame([GOOD | cells], dtype=TEXT)
    found = row_errors(frame, brand=None, schema=transaction_schema)
    return [] if found.empty else str(found["error"].iloc[0]).split("; ")


@pytest.mark.parametrize("amount", ["19.99", "-12.50", "0", "007.5", " 3.25 ", "", "1000000"])
def test_a_decimal_written_with_a_point_is_an_amount(amount: str) -> None:
    assert errors_of(depositAmount=amount) == []


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("12,50", "depositAmount '12,50': expected a decimal number written with a point, "
         "such as 1234.50 or -12.5 (did you mean 12.50?)"),
        ("1.234,50", "depositAmount '1.234,50': expected a decimal number written with a "
         "point, such as 1234.50 or -12.5 (did you mean 1234.50?)"),
        ("1e3", "depositAmount '1e3': expected a decimal number written with a point, "
         "such as 1234.50 or -12.5 (did you mean 1000?)"),
        ("abc", "depositAmount 'abc': expected a decimal number written with a point, "
         "such as 1234.50 or -12.5"),
    ],
)  # fmt: skip
def test_other_ways_of_writing_an_amount_are_invalid_and_show_how(
    amount: str, message: str
) -> None:
    assert errors_of(depositAmount=amount) == [message]


@pytest.mark.parametrize(
    ("text", "fix"),
    [("12,5", "12.5"), ("1,234.50", "1234.50"), ("1.234.567,00", "1234567.00"),
     ("€12.50", "12.50"), ("12.50 EUR", "12.50"), ("+5", "5"), (".5", "0.5"),
     ("1,234", None), ("abc", None), ("12.50", None)],
)  # fmt: skip
def test_near_amount_suggests_one_likely_meaning_or_none(text: str, fix: str | None) -> None:
    assert near_amount(text) == fix


def test_every_problem_of_a_row_in_one_message() -> None:
    found = errors_of(externalCustomerId="", transactionDate="28/06/2025", grossRevenue="x")
    assert [m.split(":")[0] for m in found] == [
        "externalCustomerId empty",
        "transactionDate '28/06/2025'",
        "grossRevenue 'x'",
    ]


def test_amounts_are_sent_as_json_numbers_of_exactly_the_written_value() -> None:
    body = transaction_body(
        GOOD | {"depositAmount": "19.99", "grossRevenue": "-0.10", "cpaCommission": "007.50",
                "note": "Zoë", "label": " ", "wageredAmount": ""}
    )  # fmt: skip
    assert body.decode() == (
        '{"externalId":"T1","externalCustomerId":"C1","externalBrandId":"casino-x",'
        '"transactionDate":"2025-06-28T19:29:48.174Z","note":"Zoë",'
        '"depositAmount":19.99,"grossRevenue":-0.10,"cpaCommission":7.50}'
    )
    sent = json.loads(body, parse_float=Decimal)
    assert sent["depositAmount"] == Decimal("19.99")
    assert json.loads(body)["depositAmount"] == 19.99  # and as a float, the nearest one


def test_json_number_drops_leading_zeros_only() -> None:
    assert [json_number(a) for a in ("0", "00", "-007.50", "10.0", "0.05")] == [
        "0", "0", "-7.50", "10.0", "0.05"
    ]  # fmt: skip


# End to end: the real command, over real HTTP, against the sandbox.

TX_HEADER = (
    "External Transaction ID", "External Brand ID", "External Customer ID",
    "transaction_date", "type", "depositAmount", "grossRevenue",
)  # fmt: skip


def transactions(n: int, *, start: int = 1) -> list[list[str]]:
    return [
        [f"T{i:05d}", "casino-x", f"C{i % 50:05d}", f"2025-06-{1 + i % 28:02d}T10:00:00Z",
         "deposit", f"{i}.{i % 100:02d}", f"-{i % 7}.1" if i % 3 else ""]
        for i in range(start, start + n)
    ]  # fmt: skip


def sent_once(server: Sandbox) -> Counter[str]:
    """How many times the sandbox took each transaction; asserts none twice."""
    taken = Counter(str(t["externalId"]) for t in server.transactions)
    twice = [external_id for external_id, n in taken.items() if n > 1]
    assert not twice, f"sent twice: {twice[:10]}"
    return taken


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
        source, "--kind", "transactions", "--base-url", sandbox.url, "--journal", journal,
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
    taken = sent_once(sandbox.server)
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


def test_faults_never_make_a_transaction_arrive_twice(tmp_path: Path) -> None:
    faults = Faults(
        fail_rate=0.05,
        fail_statuses=(503,),
        throttle_rate=0.05,
        drop_rate=0.02,
        late_rate=0.02,
        late_seconds=1.0,
        seed=5,
    )
    server = Sandbox(api_key=API_KEY, faults=faults)
    source = write_csv(tmp_path / "tx.csv", transactions(2000), header=TX_HEADER)
    with serve_in_thread(server) as url:
        done = run_cli(
            source, "--kind", "transactions", "--base-url", url, "--journal", tmp_path / "j.db",
            "--timeout", "0.5", "--retries", "8",
        )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the unconfirmed ones are rows to look at
    results = read_results(tmp_path / "tx.results.csv")
    assert len(results) == 2000
    assert {r["status"] for r in results} == {"accepted", "unconfirmed"}
    taken = sent_once(server)
    stats = server.stats
    assert min(stats["429"], stats["503"], stats["dropped"], stats["late"]) > 10
    unconfirmed = [r for r in results if r["status"] == "unconfirmed"]
    # Only the faults that lose an answer leave a row unconfirmed: a drop or a late one.
    assert len(unconfirmed) == stats["dropped"] + stats["late"]
    late = [r["External Transaction ID"] for r in unconfirmed if "timed out" in r["error"]]
    assert len(late) == stats["late"] and all(taken[t] == 1 for t in late)
    assert all("affelios-journal forget --kind transactions" in r["error"] for r in unconfirmed)
    accepted = [r for r in results if r["status"] == "accepted"]
    assert all(taken[r["External Transaction ID"]] == 1 for r in accepted)


def test_killed_then_rerun_sends_no_transaction_twice(tmp_path: Path) -> None:
    server = Sandbox(api_key=API_KEY, faults=Faults(latency_ms=20))
    source = write_csv(tmp_path / "tx.csv", transactions(1500), header=TX_HEADER)
    journal = tmp_path / "j.db"
    with serve_in_thread(server) as url:
        args: list[str | Path] = [
            source, "--kind", "transactions", "--base-url", url, "--journal", journal,
        ]  # fmt: skip
        run = start([*args, "--concurrency", "8"])
        wait_for(lambda: len(server.transactions) >= 300)
        run.send_signal(signal.SIGKILL)
        assert run.wait(10) == -signal.SIGKILL
        in_doubt = (
            sqlite3.connect(journal)
            .execute("SELECT count(*) FROM transactions WHERE status = 'sending'")
            .fetchone()[0]
        )
        time.sleep(0.2)  # let the requests the dead process left behind land
        again = run_cli(*args)
        assert again.returncode == 1, again.stderr  # rows in doubt are to look at
        results = read_results(tmp_path / "tx.results.csv")
        assert len(results) == 1500
        assert {r["status"] for r in results} == {"accepted", "skipped", "unconfirmed"}
        sent_once(server)
        unconfirmed = [r for r in results if r["status"] == "unconfirmed"]
        assert len(unconfirmed) == in_doubt > 0
        assert all(r["error_kind"] == "unconfirmed_earlier" for r in unconfirmed)
        # A person checks one in Affelios, finds it did not arrive, and releases it.
        arrived = {t["externalId"] for t in server.transactions}
        missing = next(
            r["External Transaction ID"]
            for r in unconfirmed
            if r["External Transaction ID"] not in arrived
        )
        forget = subprocess.run(
            [sys.executable, "-m", "affelios_import.cli.journal", "forget", missing,
             "--brand", "casino-x", "--kind", "transactions", "--journal", str(journal), "--yes"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert forget.returncode == 0, forget.stderr
        third = run_cli(*args)
    row = next(
        r for r in read_results(tmp_path / "tx.results.csv")
        if r["External Transaction ID"] == missing
    )  # fmt: skip
    assert row["status"] == "accepted", third.stderr
    sent_once(server)


# The at-most-once policy, answer by answer (httpx.MockTransport).

TX_BODY = b'{"externalId":"T1","externalBrandId":"b","depositAmount":19.99}'


def send_transaction(*answers: httpx.Response | Exception) -> tuple[Outcome, int]:
    """The outcome of sending one transaction to an API that answers `answers` in turn
    (an exception is raised by the transport), and how many requests were made."""
    queue = list(answers)
    made = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal made
        made += 1
        assert request.url.path == "/api/v1/transaction"
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def go() -> Outcome:
        endpoint = Endpoint(
            httpx.MockTransport(handler), base_url="https://api.test", headers={}, timeout=5,
            path="/api/v1/transaction",
        )  # fmt: skip
        config = ImportConfig(kind="transactions", retries=3, backoff_base=0.001, backoff_max=0.01)
        return await Submitter(endpoint, kind=get("transactions"), config=config).send(TX_BODY)

    return asyncio.run(go()), made


def test_202_is_accepted_and_200_or_201_created_with_the_id_if_any() -> None:
    accepted, _ = send_transaction(httpx.Response(202))
    assert (accepted.status, accepted.http_status) == (Status.ACCEPTED, 202)
    created, _ = send_transaction(httpx.Response(201, json={"id": "tx9"}))
    assert (created.status, created.affelios_id) == (Status.CREATED, "tx9")
    assert send_transaction(httpx.Response(200))[0].status is Status.CREATED


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(503),
     httpx.ConnectError("refused")],
)  # fmt: skip
def test_what_provably_did_not_reach_the_api_is_retried(
    answer: httpx.Response | Exception,
) -> None:
    outcome, made = send_transaction(answer, httpx.Response(202))
    assert (outcome.status, made) == (Status.ACCEPTED, 2)


@pytest.mark.parametrize(
    ("answer", "said"),
    [(httpx.Response(500), "HTTP 500"), (httpx.Response(502), "HTTP 502"),
     (httpx.Response(504), "HTTP 504"), (httpx.ReadTimeout("slow"), "timed out"),
     (httpx.RemoteProtocolError("dropped"), "after the request was sent"),
     (httpx.Response(204), "HTTP 204"),
     (httpx.Response(200, text="<html>maintenance</html>"), "HTTP 200 (<html>maintenance")],
)  # fmt: skip
def test_what_may_have_reached_the_api_is_unconfirmed_and_never_sent_again(
    answer: httpx.Response | Exception, said: str
) -> None:
    outcome, made = send_transaction(answer, httpx.Response(202))
    assert (outcome.status, made) == (Status.UNCONFIRMED, 1)
    assert said in outcome.error
    assert "affelios-journal forget --kind transactions" in outcome.error
    assert outcome.code == "unconfirmed"


def test_a_refusal_is_failed_and_429s_without_end_give_up_unsent() -> None:
    refused, _ = send_transaction(httpx.Response(422, json={"errors": ["bad"]}))
    assert (refused.status, refused.http_status) == (Status.FAILED, 422)
    throttled = [httpx.Response(429, headers={"Retry-After": "0"})] * 4
    gave_up, made = send_transaction(*throttled)
    assert (gave_up.status, made, gave_up.maybe_created) == (Status.FAILED, 4, False)


def test_a_refusal_after_a_503_is_failed_with_nothing_taken() -> None:
    outcome, made = send_transaction(httpx.Response(503), httpx.Response(422))
    assert (outcome.status, made, outcome.maybe_created) == (Status.FAILED, 2, False)


def test_a_transaction_of_a_customer_the_journal_does_not_know_gets_a_note(
    tmp_path: Path,
) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/customer":
            return httpx.Response(201, json={"id": "c-1"})
        return httpx.Response(202)

    def settings(source: Path, kind: str) -> Settings:
        return Settings(
            input=source, out=tmp_path / f"{kind}.results.csv", kind=kind,
            journal=tmp_path / "j.db", base_url="https://api.test", api_key=API_KEY,
            brand="casino-x",
        )  # fmt: skip

    customers = write_csv(
        tmp_path / "c.csv",
        [["C00001", "casino-x", "2025-06-28T19:29:48Z"]],
        header=("externalId", "externalBrandId", "registrationDate"),
    )
    run(settings(customers, "customers"), transport=httpx.MockTransport(api))
    rows = transactions(2)  # of customers C00001 (known) and C00002 (not)
    source = write_csv(tmp_path / "tx.csv", rows, header=TX_HEADER)
    summary = run(settings(source, "transactions"), transport=httpx.MockTransport(api))
    assert summary.exit_code == 0
    known, unknown = read_results(tmp_path / "transactions.results.csv")
    assert (known["status"], known["error"]) == ("accepted", "")
    assert unknown["status"] == "accepted"
    assert unknown["error"] == (
        "customer 'C00002' of brand 'casino-x' is not in this journal "
        "(it may have been registered another way)"
    )


def test_accept_changes_is_for_customers_only() -> None:
    with pytest.raises(ConfigError, match="only customers can be changed"):
        ImportConfig(kind="transactions", accept_changes=True)
