"""The core without the CLI: a whole run over httpx.MockTransport."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from pathlib import Path

import httpx
import hypothesis
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from affelios_import.errors import InputError, SetupError
from affelios_import.plan import SeenKeys
from affelios_import.settings import Settings
from tests.conftest import API_KEY, good_rows, read_results, run, write_csv
from tests.kinds import CUSTOMERS, SAMPLES, TRANSACTIONS, TX_HEADER, Sample, transactions


def settings(tmp_path: Path, source: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "input": source,
        "out": tmp_path / "out.csv",
        "journal": tmp_path / "journal.sqlite3",
        "base_url": "https://api.test",
        "api_key": "secret-key",
        "chunk_size": 7,
        "concurrency": 4,
        "backoff_base": 0.001,
        "new_journal": True,  # a fresh journal (see test_a_blind_transactions_run_...)
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def counting_api(sample: Sample = CUSTOMERS) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A mock API that takes every good row of `sample`'s kind, and what it was sent."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert request.url.path == sample.kind.path
        return sample.answer(request)

    return httpx.MockTransport(handler), seen


def write_sample(path: Path, sample: Sample, rows: list[list[str]]) -> Path:
    return write_csv(path, rows, header=sample.header)


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_row_gets_one_result_in_input_order_across_chunks(
    tmp_path: Path, sample: Sample
) -> None:
    source = write_sample(tmp_path / "in.csv", sample, sample.rows(50))
    transport, seen = counting_api(sample)
    summary = run(settings(tmp_path, source, kind=sample.name), transport=transport)
    results = read_results(tmp_path / "out.csv")
    assert [r["row"] for r in results] == [str(i) for i in range(1, 51)]
    if sample.created_answer == 201:
        assert [r["affelios_id"] for r in results] == [f"id-{r[sample.id_column]}" for r in results]
    assert {r["status"] for r in results} == {sample.created}
    assert len(seen) == 50
    sent = sorted(json.loads(r.content)["externalId"] for r in seen)  # in any order
    assert sent == [r[sample.id_column] for r in results]
    assert all(r.headers["X-Api-Key"] == "secret-key" for r in seen)
    assert all(r.headers["Content-Type"] == "application/json" for r in seen)
    assert summary.exit_code == 0
    assert summary.counts[sample.created] == 50


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_journal_records_what_was_taken_and_a_rerun_skips_it(
    tmp_path: Path, sample: Sample
) -> None:
    source = write_sample(tmp_path / "in.csv", sample, sample.rows(10))
    transport, seen = counting_api(sample)
    run(settings(tmp_path, source, kind=sample.name), transport=transport)
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite3")) as db:
        first = db.execute(
            f"SELECT base_url, external_brand_id, external_id, status FROM {sample.name}"
            " ORDER BY external_id"
        ).fetchone()
    assert first == ("https://api.test", "casino-x", sample.rows(1)[0][0], sample.created)

    summary = run(settings(tmp_path, source, kind=sample.name), transport=transport)
    assert len(seen) == 10
    results = read_results(tmp_path / "out.csv")
    assert {r["status"] for r in results} == {"skipped"}
    if sample.created_answer == 201:
        assert results[3]["affelios_id"] == "id-C00004"
    assert summary.exit_code == 0

    # The journal is per API: another base URL knows none of these records. A kind whose
    # repeat may be counted sends them only once told that URL is another API.
    other = settings(tmp_path, source, kind=sample.name, base_url="https://other.test")
    run(other, transport=transport)
    if sample.kind.needs_history:
        assert len(seen) == 10  # perhaps this API under another URL: not sent
        told = settings(
            tmp_path, source, kind=sample.name, base_url="https://other.test",
            not_the_same_api=("https://api.test",),
        )  # fmt: skip
        run(told, transport=transport)
    assert len(seen) == 20


@pytest.mark.parametrize("sample", SAMPLES)
def test_a_repeated_key_is_sent_once_and_the_repeat_says_why(
    tmp_path: Path, sample: Sample
) -> None:
    rows = sample.rows(3)
    rows.append(list(rows[1]))
    source = write_sample(tmp_path / "in.csv", sample, rows)
    transport, seen = counting_api(sample)
    summary = run(settings(tmp_path, source, kind=sample.name), transport=transport)
    results = read_results(tmp_path / "out.csv")
    assert len(seen) == 3
    assert results[3]["status"] == "invalid"
    assert results[3]["error"] == (
        "duplicate of row 2 (same externalBrandId and externalId); not sent"
    )
    assert summary.exit_code == 1


@pytest.mark.parametrize("sample", SAMPLES)
def test_auth_refusal_sends_nothing_more_and_marks_the_rest_not_sent(
    tmp_path: Path, sample: Sample
) -> None:
    source = write_sample(tmp_path / "in.csv", sample, sample.rows(100))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"errors": ["bad key"]})

    outcome = run(
        settings(tmp_path, source, kind=sample.name), transport=httpx.MockTransport(handler)
    )
    assert outcome.exit_code == 3
    assert len(seen) == 1  # until the API first answers, one request goes alone
    results = read_results(tmp_path / "out.csv")
    assert len(results) == 100
    assert outcome.counts["failed"] == 1
    assert outcome.counts["not_sent"] == 99
    assert "secret-key" not in (tmp_path / "out.csv").read_text()
    assert "secret-key" not in outcome.to_json() + outcome.to_text()


@pytest.mark.parametrize("sample", SAMPLES)
def test_dry_run_sends_nothing_needs_no_key_and_creates_no_journal(
    tmp_path: Path, sample: Sample
) -> None:
    bad = sample.rows(1, start=9)[0]
    bad[0] = ""  # no externalId
    source = write_sample(tmp_path / "in.csv", sample, [*sample.rows(3), bad])
    transport, seen = counting_api(sample)
    dry = settings(tmp_path, source, kind=sample.name, dry_run=True, api_key=None)
    summary = run(dry, transport=transport)
    assert seen == []
    assert [r["status"] for r in read_results(tmp_path / "out.csv")] == [
        "valid",
        "valid",
        "valid",
        "invalid",
    ]
    assert summary.exit_code == 1
    assert not (tmp_path / "journal.sqlite3").exists()


def test_checks_before_the_first_request(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", good_rows(1))
    transport, seen = counting_api()
    with pytest.raises(SetupError, match="no API key"):
        run(settings(tmp_path, source, api_key=None), transport=transport)
    with pytest.raises(InputError, match="no such file"):
        run(settings(tmp_path, tmp_path / "missing.csv"), transport=transport)
    (tmp_path / "dir").mkdir()
    with pytest.raises(SetupError, match="is a directory; give a file name"):
        run(settings(tmp_path, source, out=tmp_path / "dir"), transport=transport)
    (tmp_path / "file").write_text("")
    with pytest.raises(SetupError, match="file is a file, not a folder"):
        run(settings(tmp_path, source, out=tmp_path / "file" / "out.csv"), transport=transport)
    assert seen == []


def test_formula_cells_are_text_in_the_results_and_original_in_the_request(
    tmp_path: Path,
) -> None:
    dangerous = [
        '=HYPERLINK("http://x")', "+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\tx", "\rx",
    ]  # fmt: skip
    plain = ["plain = text", "-2", "-10.00"]  # negative numbers stay numbers to sum
    rows = [
        [f"C{i}", "b", "2025-06-28T19:29:48Z", "", v] for i, v in enumerate([*dangerous, *plain])
    ]
    source = write_csv(tmp_path / "in.csv", rows)
    transport, seen = counting_api()
    run(settings(tmp_path, source), transport=transport)
    sent = {json.loads(r.content)["username"] for r in seen}
    assert sent == {*dangerous, *plain}
    results = read_results(tmp_path / "out.csv")
    assert [r["username"] for r in results] == [*("'" + v for v in dangerous), *plain]


def test_an_id_the_api_returns_is_defused_too(tmp_path: Path) -> None:
    """An `affelios_id` of `=cmd|' /C calc'!A0` was written to the results as it was."""
    source = write_csv(tmp_path / "in.csv", good_rows(1))
    hostile = "=cmd|' /C calc'!A0"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": hostile})

    run(settings(tmp_path, source), transport=httpx.MockTransport(handler))
    (result,) = read_results(tmp_path / "out.csv")
    assert (result["status"], result["affelios_id"]) == ("created", "'" + hostile)


def test_a_redirect_is_not_followed_so_the_key_stays_home(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", good_rows(1))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "https://elsewhere.test/api/v1/customer"})

    summary = run(settings(tmp_path, source), transport=httpx.MockTransport(handler))
    assert [r.url.host for r in seen] == ["api.test"]
    (result,) = read_results(tmp_path / "out.csv")
    assert (result["status"], result["http_status"]) == ("failed", "307")
    assert summary.exit_code == 1


def test_the_journal_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", good_rows(2))
    transport, _ = counting_api()
    run(settings(tmp_path, source), transport=transport)
    assert (tmp_path / "journal.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "journal.sqlite3.lock").stat().st_mode & 0o777 == 0o600


def test_a_resent_row_that_is_not_sent_again_keeps_its_journal_entry(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", good_rows(2))
    journal_path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(journal_path)
    db.execute(
        "CREATE TABLE customers (base_url TEXT NOT NULL, external_brand_id TEXT NOT NULL,"
        " external_id TEXT NOT NULL, affelios_id TEXT, status TEXT NOT NULL,"
        " recorded_at TEXT NOT NULL, PRIMARY KEY (base_url, external_brand_id, external_id))"
        " WITHOUT ROWID"
    )
    with db:  # an earlier run died while sending row 2
        db.execute(
            "INSERT INTO customers VALUES ('https://api.test','casino-x','C00002',NULL,"
            "'sending','2026-01-01T00:00:00Z')"
        )
    db.close()

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401)

    summary = run(settings(tmp_path, source), transport=httpx.MockTransport(refuse))
    assert summary.exit_code == 3
    results = read_results(tmp_path / "out.csv")
    assert [r["status"] for r in results] == ["failed", "not_sent"]
    assert (
        results[1]["error"]
        == "an earlier run was sending this row and never learned whether it was created"
    )
    status = sqlite3.connect(journal_path).execute(
        "SELECT external_id, status FROM customers ORDER BY external_id"
    )
    assert status.fetchall() == [("C00002", "sending")]  # row 1's refused intent is gone


def test_the_results_may_not_overwrite_the_input(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", good_rows(2))
    before = source.read_bytes()
    transport, seen = counting_api()
    with pytest.raises(SetupError, match="that is the input file"):
        run(settings(tmp_path, source, out=tmp_path / "." / "in.csv"), transport=transport)
    assert source.read_bytes() == before
    assert seen == []


@pytest.mark.parametrize("last", ['C2,"b,x\n', 'C2,b,"2025-06-28T19:29:48Z\n'])
def test_an_unclosed_quote_makes_its_row_invalid_before_anything_is_sent(
    tmp_path: Path, last: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "externalId,externalBrandId,registrationDate\nC1,b,2025-06-28T19:29:48Z\n" + last
    )
    transport, seen = counting_api()
    summary = run(settings(tmp_path, source), transport=transport)
    assert summary.exit_code == 1
    results = read_results(tmp_path / "out.csv")
    assert [r["status"] for r in results] == ["created", "invalid"]
    assert results[1]["error"] == (
        "a quote opened in this row is never closed: the row runs to the end of the file"
    )
    assert len(seen) == 1


def test_a_row_waiting_out_its_backoff_holds_no_worker(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", good_rows(6))
    order: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        external_id = json.loads(request.content)["externalId"]
        order.append(external_id)
        if external_id == "C00001" and order.count(external_id) == 1:
            return httpx.Response(503, headers={"Retry-After": "1"})
        return httpx.Response(201, json={"id": f"id-{external_id}"})

    # One request in flight, so one worker: the other rows go while row 1 waits its 1 s.
    summary = run(settings(tmp_path, source, concurrency=1), transport=httpx.MockTransport(handler))
    assert order == ["C00001", "C00002", "C00003", "C00004", "C00005", "C00006", "C00001"]
    assert summary.counts["created"] == 6
    assert summary.retries == 1


def test_a_transaction_of_a_customer_the_journal_does_not_know_gets_a_note(
    tmp_path: Path,
) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/customer":
            return httpx.Response(201, json={"id": "c-1"})
        return httpx.Response(202)

    def settings(source: Path, kind: str) -> Settings:
        return Settings(
            input=source, out=tmp_path / f"{kind}.results.csv", kind=kind, new_journal=True,
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
    assert json.loads(summary.to_json())["unknown_customers"] == 1
    assert "1 transaction names a customer this journal does not know" in summary.to_text()


def test_transaction_keys_that_differ_by_case_or_spaces_are_reported_not_sent_twice(
    tmp_path: Path,
) -> None:
    """`T1`, `" T1"`, `t1 ` were three transactions: an API that trims or folds case
    books them three times. The first is sent, the others are invalid, naming it."""
    rows = transactions(4)
    for i, external_id in enumerate(["T1", " T1", "t1 ", "T2"]):
        rows[i][0] = external_id
    rows[3][1] = "Casino-X "  # the brand, too
    rows[3][0] = "T1"
    source = write_csv(tmp_path / "tx.csv", rows, header=TX_HEADER)
    transport, seen = counting_api(TRANSACTIONS)
    done = run(settings(tmp_path, source, kind="transactions"), transport=transport)
    assert len(seen) == 1 and done.exit_code == 1
    results = read_results(tmp_path / "out.csv")
    assert [r["status"] for r in results] == ["accepted", "invalid", "invalid", "invalid"]
    assert {r["error_kind"] for r in results[1:]} == {"near_duplicate_row"}
    assert results[1]["error"].startswith("the same externalBrandId and externalId as row 1 ")
    # Customers keep their keys as written: the API's 409 tells a repeat.
    customers = CUSTOMERS.rows(2)
    customers[1][0] = customers[0][0].lower()
    source = write_csv(tmp_path / "c.csv", customers, header=CUSTOMERS.header)
    transport, seen = counting_api(CUSTOMERS)
    run(settings(tmp_path, source, journal=tmp_path / "c.db"), transport=transport)
    assert len(seen) == 2


def test_a_transaction_sent_before_with_other_values_today_is_reported_not_sent(
    tmp_path: Path,
) -> None:
    """A correction (another amount, another customer) was `skipped`, exit 0: nothing
    said today's row differs from what the API took."""
    source = write_csv(tmp_path / "tx.csv", transactions(3), header=TX_HEADER)
    transport, seen = counting_api(TRANSACTIONS)
    run(settings(tmp_path, source, kind="transactions"), transport=transport)
    rows = transactions(3)
    rows[1][5] = "9.99"  # depositAmount was 2.02
    rows[2][5] = rows[2][5] + "0"  # 3.03 -> 3.030: the same amount, written another way
    write_csv(source, rows, header=TX_HEADER)
    again = run(settings(tmp_path, source, kind="transactions"), transport=transport)
    assert len(seen) == 3  # nothing sent again
    results = read_results(tmp_path / "out.csv")
    assert [r["status"] for r in results] == ["skipped", "corrected", "skipped"]
    assert "changed since: depositAmount: '2.02' → '9.99'; not sent again" in results[1]["error"]
    assert results[1]["error_kind"] == "corrected"
    assert again.exit_code == 1 and again.rows_to_fix == 1
    assert "1 transaction sent before now holds other values" in again.to_text()


def test_a_transaction_key_the_journal_holds_but_for_case_or_spaces_is_not_sent(
    tmp_path: Path,
) -> None:
    """Night 1 sent `T00001`; night 2's export says `t00001 ` (another system, a
    spreadsheet): an API that trims or folds keys would count it twice."""
    source = write_csv(tmp_path / "tx.csv", transactions(3), header=TX_HEADER)
    transport, seen = counting_api(TRANSACTIONS)
    run(settings(tmp_path, source, kind="transactions"), transport=transport)
    rows = transactions(4)
    rows[0][0] = "t00001 "
    rows[1][1] = " CASINO-X"
    write_csv(source, rows, header=TX_HEADER)
    again = run(settings(tmp_path, source, kind="transactions"), transport=transport)
    results = read_results(tmp_path / "out.csv")
    assert [r["status"] for r in results] == ["invalid", "invalid", "skipped", "accepted"]
    assert {r["error_kind"] for r in results[:2]} == {"near_duplicate_row"}
    assert results[0]["error"].startswith(
        "the journal holds externalBrandId 'casino-x' and externalId 'T00001' (the API "
        "accepted it on "
    )
    assert len(seen) == 4 and again.exit_code == 1  # only T00004 was sent


def test_formula_cells_are_found_in_any_arrow_column_the_results_are_made_of() -> None:
    """Cells are judged by their first byte in the column's own buffers: a column that is
    a slice of a larger one, in several pieces, with empty and missing cells and
    characters of several bytes, is judged cell by cell as Python would."""
    import pyarrow as pa

    from affelios_import.output.results import FORMULA_CHARS, NEGATIVE_NUMBER, _defused

    for cells in (
        ["=1", "", None, "é=", "+x", "-2", "-2+3", "ok", "@", "\t", "日本", "-"] * 3,
        ["ok", "=1", "", "é=", "+x", "-2", "-2+3", "ok", "@", "\t", "日本", "-"] * 3,
    ):
        whole = pa.array(["=skipped", *cells, "=after"], pa.string())
        pieces = pa.chunked_array([whole.slice(1, 17), whole.slice(18, len(cells) - 17)])
        for column in (whole.slice(1, len(cells)), pieces):
            found = _defused(column).to_pylist()
            expected = [
                "'" + c
                if c and c[0] in FORMULA_CHARS and not re.fullmatch(NEGATIVE_NUMBER, c)
                else c
                for c in cells
            ]
            assert found == expected


@hypothesis.settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.integers(-3, 3) | st.integers(-(2**63), 2**63 - 1), max_size=12),
        max_size=6,
    )
)
def test_each_key_s_first_row_is_found_across_chunks(chunks: list[list[int]]) -> None:
    seen, row = SeenKeys(), 0
    first_of: dict[int, int] = {}
    for chunk in chunks:
        rows = np.arange(row + 1, row + 1 + len(chunk), dtype=np.int64)
        found = seen.first_rows(np.array(chunk, dtype=np.int64), rows)
        expected = []
        for key, at in zip(chunk, rows.tolist(), strict=True):
            expected.append(first_of.setdefault(key, at) if key in first_of else 0)
            first_of.setdefault(key, at)
        assert found.tolist() == expected
        row += len(chunk)
