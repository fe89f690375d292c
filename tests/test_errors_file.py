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
        "External ID;externalBrandId;Registration Date;note;source_row;key_check;error",
        f"C2;casino-x;28/06/2025;=fix me;2;{check(('casino-x', 'C2'))};column 'Registration "
        "Date' (registrationDate) '28/06/2025': expected an ISO-8601 Zulu timestamp such as "
        "2025-06-28T19:29:48.174Z",  # the column as the file calls it, and the API field
        ";casino-x;2025-06-28T19:29:48Z;no id;4;;"  # no key to check: it is to be fixed
        "column 'External ID' (externalId) empty: expected a value (it is required)",
    ]  # original cells unchanged (no apostrophe before =), in the input's delimiter
    data = json.loads(summary.read_text())
    assert data["schema_version"] == 1
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
            "key_check", "error",
        ]  # fmt: skip
    with (tmp_path / "export.errors.results.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header[-7:] == [
        "External ID", "externalBrandId", "Registration Date", "note", "source_row",
        "key_check", "input_error",
    ]  # fmt: skip
    assert len(header) == len(set(header))
    assert [r["error"] for r in again] == ["", ""]
    assert [r["source_row"] for r in again] == ["2", "4"]
