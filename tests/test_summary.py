"""The summary, live and from a results file: the same counts and the same error groups."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from affelios_import import codes
from affelios_import.cli.summary import main as summary_main
from affelios_import.codes import CODES, labels
from affelios_import.outcome import tally
from affelios_import.output.summary import Summary
from tests.conftest import RunningSandbox, good_rows, run_cli, write_csv


@pytest.mark.parametrize(
    ("error_kind", "http_status", "expected"),
    [
        ("", "", []),
        (
            "required_missing:externalId; date_not_zulu:registrationDate",
            "",
            [
                "externalId: expected a value (it is required)",
                "registrationDate: expected an ISO-8601 Zulu timestamp such as "
                "2025-06-28T19:29:48.174Z",
            ],
        ),
        ("boolean_invalid:cpaExcluded", "",
         ["cpaExcluded: expected true/false, 1/0, yes/no or empty"]),
        ("duplicate_row", "", ["duplicate of an earlier row"]),
        ("wrong_field_count", "", ["wrong number of fields"]),
        ("gave_up_http", "503", ["gave up: HTTP 503"]),
        ("gave_up_timeout", "", ["gave up: timed out"]),
        ("refused", 422, ["HTTP 422"]),
        ("key_refused", "401", ["HTTP 401: the API refused the key"]),
        ("interrupted_in_flight", "", ["interrupted with the request in flight"]),
        ("a_code_from_a_newer_version", "", ["a_code_from_a_newer_version"]),
    ],
)  # fmt: skip
def test_error_kinds_are_labelled_from_the_table(
    error_kind: str, http_status: object, expected: list[str]
) -> None:
    assert list(labels(error_kind, http_status)) == expected


def test_every_code_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("| `error_kind` | when |", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^\| `(\w+)` \|", table, flags=re.M) == list(CODES)


def test_summarising_a_results_file_prints_what_the_run_did(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = good_rows(30)
    rows[3][2] = "28/06/2025"
    rows[7][0] = ""
    rows[9][2] = "=1+1"
    rows.append(list(rows[5]))
    source = write_csv(tmp_path / "c.csv", rows)
    done = run_cli(source, "--base-url", sandbox.url, "--journal", tmp_path / "j.db")
    assert done.returncode == 1
    summary = subprocess.run(
        [sys.executable, "-c", "from affelios_import.cli.summary import main; main()",
         str(tmp_path / "c.results.csv")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert summary.returncode == 1
    columns, when, *run_lines = done.stderr.splitlines()
    assert columns.startswith("columns: externalId → externalId, ")
    assert when.endswith(" UTC, run " + json_run_id(when))
    file_lines = summary.stdout.splitlines()
    assert file_lines[0] == "31 rows: 27 created, 4 invalid"
    assert run_lines[0].startswith("31 rows: 27 created, 4 invalid in ")
    assert file_lines[1:4] == run_lines[1:4]  # the same error groups and rows
    assert "2 x registrationDate: expected an ISO-8601 Zulu timestamp" in file_lines[1]
    assert "(rows 4, 10)" in file_lines[1]  # =1+1 was shown as '=1+1 and read back as is


def json_run_id(line: str) -> str:
    return line.rsplit(" ", 1)[-1]


def test_summary_json_and_mistakes(tmp_path: Path) -> None:
    results = tmp_path / "r.csv"
    results.write_text(
        "row,status,affelios_id,http_status,attempts,error,externalId\n"
        "1,created,abc,201,1,,C1\n"
        "2,not_sent,,,0,,C2\n"
    )
    runner = CliRunner()
    result = runner.invoke(summary_main, [str(results), "--json"])
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["counts"]["created"] == 1
    assert data["counts"]["not_sent"] == 1
    assert data["stopped"] == "the run stopped before every row was sent"
    assert data["seconds"] is None
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    result = runner.invoke(summary_main, [str(other)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"affelios-summary: {other}: not a results file")


def test_amounts_are_summed_exactly_at_any_size() -> None:
    """The default decimal context keeps 28 digits: a sum of 37 lost its tail."""
    summary = Summary()
    tiny, big = "0." + "0" * 17 + "1", "9" * 18 + "." + "9" * 18
    status = np.array(["accepted"] * 3, dtype=object)
    summary.add_amounts(status, {"depositAmount": np.array(["1", tiny, big], dtype=object)})
    assert str(summary.amounts["depositAmount"]) == "1000000000000000001.000000000000000000"


def test_the_rate_counts_no_row_a_stop_left_unsent() -> None:
    """After Ctrl-C the summary said 617 rows/s, counting rows never sent."""
    summary = Summary()
    status = np.array(["created"] * 100 + ["not_sent"] * 900, dtype=object)
    empty = np.full(1000, "", dtype=object)
    summary.add_chunk(np.arange(1, 1001), status, empty, empty)
    summary.seconds = 10.0
    assert "in 10.0s, 10 rows/s sent" in summary.to_text()


def test_the_rate_of_a_resume_is_that_of_the_rows_it_sent() -> None:
    """A resume said `20,000 rows: 16,937 created, 3,063 skipped in 61.4s, 326 rows/s`:
    the skipped rows, which cost nothing, counted as speed (the bar said 276)."""
    summary = Summary()
    status = np.array(["created"] * 600 + ["skipped"] * 300 + ["invalid"] * 100, dtype=object)
    empty = np.full(1000, "", dtype=object)
    summary.add_chunk(np.arange(1, 1001), status, empty, empty)
    summary.seconds = 10.0
    assert "in 10.0s, 60 rows/s sent" in summary.to_text()
    summary.counts = Counter({"valid": 1000})
    summary.dry_run = True
    assert "in 10.0s, 100 rows/s checked" in summary.to_text()


@pytest.mark.parametrize(
    ("status", "kinds", "action"),
    [
        ("invalid", "date_not_zulu:registrationDate", "fix"),
        ("corrected", "corrected", "fix"),
        ("failed", "refused", "fix"),
        ("failed", "conflict", "fix"),
        ("failed", "gave_up_http", "retry"),
        ("failed", "gave_up_timeout; refused", "fix"),
        ("not_sent", "", "retry"),
        ("unconfirmed", "unconfirmed", "check"),
        ("created", "", ""),
    ],
)
def test_each_row_asks_one_thing(status: str, kinds: str, action: str) -> None:
    assert codes.to_do(status, kinds) == action


def test_the_summary_says_how_many_kinds_of_error_it_leaves_out() -> None:
    """It dropped the 6th and later kinds without a word."""
    summary = Summary()
    kinds = [f"required_missing:f{i}" for i in range(8)]
    status = np.full(8, "invalid", dtype=object)
    empty = np.full(8, "", dtype=object)
    summary.add_chunk(np.arange(1, 9), status, np.array(kinds, dtype=object), empty)
    assert "  and 3 more kinds of error (3 times): see error_kind in the results" in (
        summary.to_text()
    )


@pytest.mark.parametrize(
    ("n", "said"), [(1, "1 row: 1 created"), (2000, "2,000 rows: 2,000 created")]
)
def test_numbers_are_written_one_way(n: int, said: str) -> None:
    """It said `1 rows`, and `2000 rows` beside `2,000` elsewhere."""
    summary = Summary()
    empty = np.full(n, "", dtype=object)
    summary.add_chunk(np.arange(1, n + 1), np.full(n, "created", dtype=object), empty, empty)
    assert summary.to_text().startswith(said)


def test_429s_without_a_limit_learned_are_said_as_such() -> None:
    """Random 429s were reported as "paced by the API's limit: about 347 requests per
    1 s"; now no limit is claimed that was not learned, and the 429s are still said."""
    summary = Summary(rows=10, throttled=12)
    assert "the API answered 429 (too many requests) 12 times, each tried again; no steady " in (
        summary.to_text()
    )
    summary.rate_limit = "about 40 requests per 1 s, learned from its 429s"
    text = summary.to_text()
    assert "paced by the API's limit: about 40" in text and "answered 429" not in text


def test_the_commonest_errors_name_the_inputs_column() -> None:
    """The summary said `12 x registrationDate: expected …` of a column the file calls
    `Registered`, while each row's message named the column."""
    summary = Summary(columns={"registrationDate": "column 'Registered' (registrationDate)"})
    rows = np.arange(1, 3)
    status = np.array(["invalid", "invalid"], dtype=object)
    kinds = np.array(
        ["date_not_zulu:registrationDate", "required_missing:externalId"], dtype=object
    )
    summary.add_chunk(rows, status, kinds, np.full(2, "", dtype=object))
    text = summary.to_text()
    assert "1 x column 'Registered' (registrationDate): expected an ISO-8601 Zulu" in text
    assert "1 x externalId: expected a value" in text  # the input calls it externalId
    assert summary.to_dict()["top_errors"][0]["error"].startswith("registrationDate: ")


def test_a_column_is_tallied_whether_one_value_fills_it_or_many() -> None:
    one = np.array(["valid"] * 5, dtype=object)
    mixed = np.array(["created", "invalid", "created", "exists", "invalid"], dtype=object)
    assert tally(one) == Counter({"valid": 5})
    assert tally(mixed) == Counter(mixed.tolist())
    assert tally(mixed[1:]) == Counter({"invalid": 2, "created": 1, "exists": 1})
    assert tally(np.array([], dtype=object)) == Counter()
