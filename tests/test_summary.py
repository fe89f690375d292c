"""The summary, live and from a results file: the same counts and the same error groups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from etl.cli import summary_main
from etl.summary import error_kinds
from tests.conftest import RunningSandbox, good_rows, run_cli, write_csv


@pytest.mark.parametrize(
    ("status", "error", "kinds"),
    [
        ("created", "", []),
        ("exists", "an earlier attempt of this run may have created it", []),
        (
            "invalid",
            "externalId empty: expected a value (it is required); registrationDate "
            "'28/06/2025': expected an ISO-8601 Zulu timestamp such as 2025-06-28T19:29:48.174Z",
            [
                "externalId: expected a value (it is required)",
                "registrationDate: expected an ISO-8601 Zulu timestamp such as "
                "2025-06-28T19:29:48.174Z",
            ],
        ),
        (  # a value that holds "; ", quotes and what looks like another column
            "invalid",
            "cpaExcluded \"it's; x 'y': expected\": expected true/false, 1/0, yes/no or empty",
            ["cpaExcluded: expected true/false, 1/0, yes/no or empty"],
        ),
        ("invalid", "externalId '  ' (blank): expected a value (it is required)",
         ["externalId: expected a value (it is required)"]),
        ("invalid", "duplicate of row 8 (same externalBrandId and externalId); not sent",
         ["duplicate of an earlier row"]),
        ("invalid", "the row has 5 fields but the header has 3; check its delimiters and quotes",
         ["wrong number of fields"]),
        ("failed", "gave up after 6 attempts: HTTP 503", ["gave up: HTTP 503"]),
        ("failed", "HTTP 422: {\"errors\": [\"brand unknown\"]}", ["HTTP 422"]),
        ("failed", "HTTP 401: the API refused the key: nope",
         ["HTTP 401: the API refused the key"]),
        ("failed", "an earlier run sent this row and never learned whether it was created; "
         "HTTP 400: bad", ["HTTP 400"]),
        ("failed", "interrupted with the request in flight; the API may have created it: the "
         "next run will tell", ["interrupted with the request in flight"]),
    ],
)  # fmt: skip
def test_error_kinds(status: str, error: str, kinds: list[str]) -> None:
    assert list(error_kinds(status, error)) == kinds


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
        [sys.executable, "-c", "from etl.cli import summary_main; summary_main()",
         str(tmp_path / "c.results.csv")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert summary.returncode == 1
    run_lines = done.stderr.splitlines()
    file_lines = summary.stdout.splitlines()
    assert file_lines[0] == "31 rows: 27 created, 4 invalid"
    assert run_lines[0].startswith("31 rows: 27 created, 4 invalid in ")
    assert file_lines[1:4] == run_lines[1:4]  # the same error groups and rows
    assert "2 x registrationDate: expected an ISO-8601 Zulu timestamp" in file_lines[1]
    assert "(rows 4, 10)" in file_lines[1]  # =1+1 was shown as '=1+1 and read back as is


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
