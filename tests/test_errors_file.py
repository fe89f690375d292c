"""The errors file: the rows to fix, importable again as it is once fixed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from affelios_import.input.keycheck import check
from tests.conftest import RunningSandbox, read_results, run_cli

EXPORT = (
    "External ID;externalBrandId;Registration Date;note\n"
    "C1;casino-x;2025-06-28T19:29:48Z;ok\n"
    "C2;casino-x;28/06/2025;=fix me\n"
    "C3;casino-x;2025-06-28T19:29:48Z;ok\n"
    ";casino-x;2025-06-28T19:29:48Z;no id\n"
)


def test_fix_the_errors_file_and_import_it_again(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text(EXPORT, encoding="utf-8")
    journal = tmp_path / "j.db"
    summary = tmp_path / "summary.json"
    first = run_cli(
        source, "--base-url", sandbox.url, "--journal", journal, "--summary-json", summary
    )
    assert first.returncode == 1
    errors = tmp_path / "export.errors.csv"
    assert f"rows to fix: 2, in {errors}" in first.stderr
    text = errors.read_text(encoding="utf-8")
    assert text.splitlines() == [
        "External ID;externalBrandId;Registration Date;note;source_row;key_check;to_do;error",
        f"C2;casino-x;28/06/2025;=fix me;2;{check(('casino-x', 'C2'))};fix;column 'Registration "
        "Date' (registrationDate) '28/06/2025': expected an ISO-8601 Zulu timestamp such as "
        "2025-06-28T19:29:48.174Z",  # the column as the file calls it, and the API field
        ";casino-x;2025-06-28T19:29:48Z;no id;4;;fix;"  # no key to check: it is to be fixed
        "column 'External ID' (externalId) empty: expected a value (it is required)",
    ]  # original cells unchanged (no apostrophe before =), in the input's delimiter
    data = json.loads(summary.read_text())
    assert data["schema_version"] == 2
    assert data["errors_file"] == str(errors)
    assert data["rows_to_fix"] == 2

    # The analyst fixes the two rows in place, and imports that same file.
    fixed = text.replace("28/06/2025", "2025-06-28T00:00:00Z")
    fixed = fixed.replace("\n;casino-x;", "\nC4;casino-x;")
    errors.write_text(fixed, encoding="utf-8")
    second = run_cli(errors, "--base-url", sandbox.url, "--journal", journal)
    assert second.returncode == 0, second.stderr
    again = read_results(tmp_path / "export.errors.results.csv")
    assert [(r["External ID"], r["status"]) for r in again] == [
        ("C2", "created"),
        ("C4", "created"),
    ]
    assert sorted(c["externalId"] for c in sandbox.server.customers.values()) == [
        "C1", "C2", "C3", "C4",
    ]  # fmt: skip
    # Importing an errors file again: its own source_row and error columns get the new
    # values; in the results, its columns that the tool's share a name with are prefixed,
    # and a created row shows no old error.
    with (tmp_path / "export.errors.errors.csv").open(newline="", encoding="utf-8") as f:
        assert next(csv.reader(f, delimiter=";")) == [
            "External ID", "externalBrandId", "Registration Date", "note", "source_row",
            "key_check", "to_do", "error",
        ]  # fmt: skip
    with (tmp_path / "export.errors.results.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header[-8:] == [
        "External ID", "externalBrandId", "Registration Date", "note", "source_row",
        "key_check", "to_do", "input_error",
    ]  # fmt: skip
    assert len(header) == len(set(header))
    assert [r["error"] for r in again] == ["", ""]
    assert [r["source_row"] for r in again] == ["2", "4"]


def test_each_number_means_one_thing_and_the_errors_file_says_which_row_is_which(
    tmp_path: Path,
) -> None:
    """The summary said 12 rows to fix, the errors file held 54 (42 needed only another
    try) with nothing telling them apart."""
    import httpx

    from affelios_import.settings import Settings
    from tests.conftest import good_rows, run, write_csv

    rows = good_rows(4)
    rows[0][2] = "28/06/2025"  # invalid: fix
    source = write_csv(tmp_path / "c.csv", rows)

    def api(request: httpx.Request) -> httpx.Response:
        external = json.loads(request.content)["externalId"]
        if external == rows[1][0]:
            return httpx.Response(422, json={"title": "username not allowed"})  # refused: fix
        if external == rows[2][0]:
            return httpx.Response(503)  # at every try: retry
        return httpx.Response(201, json={"id": f"id-{external}"})

    settings = Settings(
        input=source, out=tmp_path / "r.csv", errors_out=tmp_path / "e.csv",
        summary_json=tmp_path / "s.json", journal=tmp_path / "j.db",
        base_url="https://api.test", api_key="k", retries=1, backoff_base=0.0,
    )  # fmt: skip
    summary = run(settings, transport=httpx.MockTransport(api))
    assert summary.exit_code == 1
    with (tmp_path / "e.csv").open(newline="", encoding="utf-8") as f:
        listed = [(r["source_row"], r["to_do"]) for r in csv.DictReader(f)]
    assert listed == [("1", "fix"), ("2", "fix"), ("3", "retry")]
    data = json.loads((tmp_path / "s.json").read_text())
    assert (data["rows_to_fix"], data["rows_to_retry"], data["rows_to_check"]) == (2, 1, 0)
    text = summary.to_text()
    assert f"rows to fix: 2, in {tmp_path / 'e.csv'} (to_do: fix)" in text
    assert "rows to retry: 1 (the next run sends them again)" in text
