"""Night after night: the nightly export imported again and again, with an analyst's
fixes in between, against a real sandbox over HTTP (issue 13's week of nights)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import HEADER, RunningSandbox, read_results, run_cli, write_csv

BRAND = "casino-x"


def metrics(folder: Path) -> dict[str, float]:
    """The metrics file as node_exporter's textfile collector would read it."""
    text = (folder / "metrics" / "import.prom").read_text(encoding="utf-8")
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            status = sample.labels.get("status")
            found[sample.name + (f"[{status}]" if status else "")] = sample.value
    return found


def export(*, click_for_2: str = "", extra: int = 0) -> list[list[str]]:
    """The operator's full export: ten customers, the fourth with a date in the wrong
    form (the source system is never fixed), the second without a click id at first."""
    rows = [
        [f"C{i}", BRAND, f"2025-06-{i:02d}T19:29:48.174Z", f"clk_{i}", f"user{i}"]
        for i in range(1, 11 + extra)
    ]
    rows[3][2] = "28/06/2025"
    rows[1][3] = click_for_2
    return rows


def night(
    path: Path, sandbox: RunningSandbox, journal: Path, *more: str | Path
) -> tuple[int, list[dict[str, str]], dict[str, object], str]:
    summary = path.with_suffix(".summary.json")
    done = run_cli(
        path, "--brand", BRAND, "--base-url", sandbox.url, "--journal", journal,
        "--summary-json", summary, "--metrics-file", journal.parent / "metrics" / "import.prom",
        *more,
    )  # fmt: skip
    results = path.with_name(path.name.removesuffix(".csv") + ".results.csv")
    if "--dry-run" in more:
        results = path.with_name(path.name.removesuffix(".csv") + ".dry-run.results.csv")
    return done.returncode, read_results(results), json.loads(summary.read_text()), done.stderr


def test_a_week_of_nights_converges(sandbox: RunningSandbox, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    requests = sandbox.server.stats

    # Night 1: the first import; one row to fix.
    source = write_csv(tmp_path / "export.csv", export())
    code, results, summary, _ = night(source, sandbox, journal)
    assert code == 1
    assert [r["status"] for r in results].count("created") == 9
    assert results[3]["status"] == "invalid"
    assert summary["rows_to_fix"] == 1 and summary["rows_to_retry"] == 0
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", str(summary["run_id"]))
    assert summary["input"] == str(source)
    assert str(summary["started_at"]) <= str(summary["finished_at"])
    night_1 = metrics(tmp_path)
    assert night_1["affelios_import_last_run_exit_code"] == 1
    assert night_1["affelios_import_rows[created]"] == 9
    assert night_1["affelios_import_rows[invalid]"] == 1
    assert night_1["affelios_import_last_run_rows_to_fix"] == 1
    assert night_1["affelios_import_last_success_timestamp_seconds"] == 0
    assert night_1["affelios_import_last_completed_timestamp_seconds"] > 0

    # The analyst fixes the errors file and imports it.
    errors = tmp_path / "export.errors.csv"
    fixed = errors.read_text(encoding="utf-8").replace("28/06/2025", "2025-06-28T00:00:00Z")
    errors.write_text(fixed, encoding="utf-8")
    code, results, _, _ = night(errors, sandbox, journal)
    assert code == 0 and [r["status"] for r in results] == ["created"]
    ids = {c["externalId"]: c["id"] for c in sandbox.server.customers.values()}
    assert len(ids) == 10

    # Night 2: the same export, the source system not fixed: nothing is sent, and the
    # fixed row is skipped with its id and a note, not a row to fix.
    sent_before = requests["requests"]
    code, results, summary, _ = night(source, sandbox, journal)
    assert code == 0
    assert requests["requests"] == sent_before
    assert [r["status"] for r in results] == ["skipped"] * 10
    assert [r["affelios_id"] for r in results] == [ids[f"C{i}"] for i in range(1, 11)]
    assert re.fullmatch(
        r"imported \d{4}-\d\d-\d\d; today's row has registrationDate '28/06/2025': expected .*",
        results[3]["error"],
    )
    assert results[3]["error_kind"] == ""
    assert summary["rows_to_fix"] == 0 and summary["exit_code"] == 0
    night_2 = metrics(tmp_path)
    assert night_2["affelios_import_last_run_exit_code"] == 0
    assert night_2["affelios_import_rows[skipped]"] == 10
    start, end = (
        night_2[f"affelios_import_last_run_{w}_timestamp_seconds"] for w in ("start", "end")
    )
    assert start <= end == night_2["affelios_import_last_success_timestamp_seconds"]
    assert night_2["affelios_import_last_run_duration_seconds"] == end - start

    # A night that cannot even start (the export is missing) is seen too, and keeps the
    # time of the last success.
    missing = run_cli(
        tmp_path / "nowhere.csv", "--brand", BRAND, "--base-url", sandbox.url,
        "--journal", journal, "--metrics-file", tmp_path / "metrics" / "import.prom",
    )  # fmt: skip
    assert missing.returncode == 2
    failed = metrics(tmp_path)
    assert failed["affelios_import_last_run_exit_code"] == 2
    assert failed["affelios_import_last_success_timestamp_seconds"] == end

    # Night 3: the click id of customer 2 arrived, and a new customer: the first is
    # changed (not sent), the second created.
    write_csv(source, export(click_for_2="k7", extra=1))
    code, results, summary, stderr = night(source, sandbox, journal)
    assert code == 0, stderr
    assert requests["requests"] == sent_before + 1
    assert results[1]["status"] == "changed"
    assert results[1]["affelios_id"] == ids["C2"]
    assert "clickId: '' → 'k7'" in results[1]["error"]
    assert results[10]["status"] == "created"
    assert summary["counts"]["changed"] == 1  # type: ignore[index]
    assert "1 customer changed since it was imported: see the results" in stderr

    # A dry run of the same export, default paths: its own files; night 3's untouched.
    night_3 = (tmp_path / "export.results.csv").read_bytes()
    night_3_metrics = metrics(tmp_path)
    code, results, summary, _ = night(source, sandbox, journal, "--dry-run")
    assert code == 0 and summary["dry_run"] is True
    assert (tmp_path / "export.results.csv").read_bytes() == night_3
    assert metrics(tmp_path) == night_3_metrics  # a dry run is not a night's import
    assert [r["status"] for r in results].count("changed") == 1
    assert requests["requests"] == sent_before + 1

    # Customer 2 changed in Affelios by hand: the journal takes today's values once, and
    # the next night it is skipped.
    code, results, _, stderr = night(source, sandbox, journal, "--accept-changes")
    assert code == 0 and results[1]["status"] == "changed"
    # The summary says what was accepted (it said the customer changed, as if it were not).
    assert "1 customer changed since it was imported: accepted (--accept-changes)" in stderr
    assert results[1]["error"].endswith(
        "accepted (--accept-changes): the journal now holds today's values"
    )
    code, results, _, _ = night(source, sandbox, journal)
    assert code == 0 and [r["status"] for r in results] == ["skipped"] * 11
    assert requests["requests"] == sent_before + 1

    # The journal lists every customer with the id the sandbox gave it.
    listed = subprocess.run(
        [sys.executable, "-m", "affelios_import.cli.journal", "export", "--journal", str(journal)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    exported = {
        r["externalId"]: r["affelios_id"] for r in csv.DictReader(io.StringIO(listed.stdout))
    }
    assert exported == {c["externalId"]: c["id"] for c in sandbox.server.customers.values()}
    assert len(exported) == 11


def test_a_customer_journaled_before_the_journal_kept_what_was_sent_is_not_changed(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Entries from before the journal kept what was sent have nothing to compare."""
    import sqlite3

    journal = tmp_path / "journal.db"
    source = write_csv(tmp_path / "e.csv", export()[:3])
    assert night(source, sandbox, journal)[0] == 0
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE customers SET sent = NULL")
    db.close()
    write_csv(source, export(click_for_2="k7")[:3])
    code, results, _, _ = night(source, sandbox, journal)
    assert code == 0 and [r["status"] for r in results] == ["skipped"] * 3


def test_a_row_whose_key_cannot_be_read_is_invalid_whatever_the_journal_holds(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    source = write_csv(tmp_path / "e.csv", export()[:3])
    assert night(source, sandbox, journal)[0] == 0
    rows = export()[:3]
    rows[0][0] = " "  # no externalId
    rows[1][1] = "sportsbook-y"  # not the brand given with --brand
    write_csv(source, rows)
    code, results, summary, _ = night(source, sandbox, journal)
    assert code == 1
    assert [r["status"] for r in results] == ["invalid", "invalid", "skipped"]
    assert summary["rows_to_fix"] == 2


def test_a_repeat_of_a_journaled_customer_is_skipped_with_a_note(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    source = write_csv(tmp_path / "e.csv", export()[:2])
    assert night(source, sandbox, journal)[0] == 0
    write_csv(source, [*export()[:2], export()[0]], HEADER)
    code, results, _, _ = night(source, sandbox, journal)
    assert code == 0
    assert [r["status"] for r in results] == ["skipped"] * 3
    assert "today's row is a duplicate of row 1" in results[2]["error"]


def test_a_brand_column_with_brand_sends_no_row_to_another_brand(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A `Brand` column is externalBrandId: --brand fills its empty cells, and a row
    naming another brand is invalid; no customer reaches the wrong brand."""
    rows = [
        ["C0", BRAND, "2025-06-28T19:29:48Z"],
        ["C1", "", "2025-06-28T19:29:48Z"],
        ["C2", "sportsbook-y", "2025-06-28T19:29:48Z"],
    ]
    source = write_csv(tmp_path / "e.csv", rows, ["externalId", "Brand", "registrationDate"])
    done = run_cli(source, "--brand", BRAND, "--base-url", sandbox.url, "--journal", tmp_path / "j")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("columns: externalId → externalId, Brand → externalBrandId, ")
    results = read_results(tmp_path / "e.results.csv")
    assert [r["status"] for r in results] == ["created", "created", "invalid"]
    assert results[2]["error_kind"] == "brand_mismatch:externalBrandId"
    sent = sorted(
        (c["externalId"], c["externalBrandId"]) for c in sandbox.server.customers.values()
    )
    assert sent == [("C0", BRAND), ("C1", BRAND)]
