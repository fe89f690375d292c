"""--acknowledged: rows a person said will never be importable, so that a nightly job
whose other rows are all done exits 0, while the summary and report list them apart."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import RunningSandbox, good_rows, read_results, run_cli, write_csv

ROWS = [
    *good_rows(2),
    ["", "casino-x", "2025-06-01T00:00:00Z", "", "test account"],  # no id: never importable
    ["C00009", "casino-y", "2025-06-01T00:00:00Z", "", "other brand"],  # not this job's
    ["C00010", "casino-x", "yesterday", "", "a date to fix"],  # fixable
]


def _nightly(sandbox: RunningSandbox, tmp_path: Path, *more: str | Path) -> tuple[int, str]:
    done = run_cli(
        tmp_path / "export.csv", "--brand", "casino-x", "--base-url", sandbox.url,
        "--journal", tmp_path / "j.db", "--errors-out", tmp_path / "export.errors.csv",
        "--summary-json", tmp_path / "summary.json", *more,
    )  # fmt: skip
    return done.returncode, done.stderr


def _acknowledge(errors: Path, target: Path, keep: set[str], reason: str) -> Path:
    """What an analyst does: the rows of the errors file not to be fixed, copied with a
    reason beside them."""
    with errors.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    header = rows[0]
    kept = [[*row, reason] for row in rows[1:] if row[header.index("username")] in keep]
    return write_csv(target, kept, header=(*header, "reason"))


def test_acknowledged_rows_let_the_nightly_job_converge_to_exit_0(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Rows that can never go green (an empty id, a row of another brand) came back
    invalid every night: the job could never exit 0."""
    write_csv(tmp_path / "export.csv", ROWS)
    code, _ = _nightly(sandbox, tmp_path)
    assert code == 1
    known = _acknowledge(
        tmp_path / "export.errors.csv", tmp_path / "known.csv",
        {"test account", "other brand"}, "not ours: kept out by the CRM team",
    )  # fmt: skip
    fixed = [*ROWS[:4], ["C00010", "casino-x", "2025-06-02T00:00:00Z", "", "a date to fix"]]
    write_csv(tmp_path / "export.csv", fixed)  # the source system fixed the date
    sent_before = len(sandbox.server.customers)
    code, stderr = _nightly(sandbox, tmp_path, "--acknowledged", known)
    assert code == 0, stderr
    statuses = [r["status"] for r in read_results(tmp_path / "export.results.csv")]
    assert statuses == ["skipped", "skipped", "acknowledged", "acknowledged", "created"]
    assert len(sandbox.server.customers) == sent_before + 1  # C00010 alone
    first = read_results(tmp_path / "export.results.csv")[2]
    assert first["error"].startswith("acknowledged: not ours: kept out by the CRM team; not sent")
    assert "externalId" in first["error"]  # what is wrong with it is still said
    assert "acknowledged: 2 rows, not sent as" in stderr
    assert read_results(tmp_path / "export.errors.csv") == []  # nothing to fix
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["counts"]["acknowledged"], summary["rows_to_fix"]) == (2, 0)
    assert summary["acknowledged_unmatched"] == 0


def test_a_row_changed_since_it_was_acknowledged_is_checked_and_sent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    write_csv(tmp_path / "export.csv", ROWS[2:3])
    code, _ = _nightly(sandbox, tmp_path)
    assert code == 1
    known = _acknowledge(
        tmp_path / "export.errors.csv", tmp_path / "known.csv", {"test account"}, "no id"
    )
    write_csv(tmp_path / "export.csv", [["C00077", *ROWS[2][1:]]])  # it got an id after all
    code, stderr = _nightly(sandbox, tmp_path, "--acknowledged", known)
    assert code == 0, stderr
    assert [r["status"] for r in read_results(tmp_path / "export.results.csv")] == ["created"]
    assert f"{known}: 1 of its rows is not in " in stderr


def test_a_key_alone_acknowledges_that_record_whatever_its_values(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    write_csv(tmp_path / "export.csv", good_rows(3))
    known = write_csv(
        tmp_path / "known.csv",
        [["casino-x", "C00002", "the API refuses this one"]],
        header=("externalBrandId", "externalId", "reason"),
    )
    code, stderr = _nightly(sandbox, tmp_path, "--acknowledged", known)
    assert code == 0, stderr
    results = read_results(tmp_path / "export.results.csv")
    assert [r["status"] for r in results] == ["created", "acknowledged", "created"]
    assert sorted(c["_request"]["externalId"] for c in sandbox.server.customers.values()) == [
        "C00001", "C00003",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (("externalId",), [["C1"]], "no column 'reason': each acknowledged row says why"),
        (("externalId", "reason"), [["C1", " "]], "row 1, column 'reason' is empty"),
        (("Kundennummer", "reason"), [["C1", "x"]], "column 'Kundennummer' is neither a column"),
        (("reason", "error"), [["x", "y"]], "no column of the input beside 'reason'"),
    ],
)
def test_a_mistake_in_the_acknowledged_file_is_exit_2_before_anything_is_sent(
    sandbox: RunningSandbox,
    tmp_path: Path,
    header: tuple[str, ...],
    rows: list[list[str]],
    message: str,
) -> None:
    write_csv(tmp_path / "export.csv", good_rows(2))
    known = write_csv(tmp_path / "known.csv", rows, header=header)
    code, stderr = _nightly(sandbox, tmp_path, "--acknowledged", known)
    assert code == 2
    assert stderr.strip().splitlines()[-1].startswith(f"affelios-import: {known}: ")
    assert message in stderr
    assert not sandbox.server.customers


def test_an_empty_export_with_an_acknowledged_file_is_a_quiet_night(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """An empty export (no header: nothing to import) with the job's acknowledged file
    was exit 2, the file's columns being "neither a column of the input nor a field"."""
    (tmp_path / "export.csv").write_text("", encoding="utf-8")
    known = write_csv(tmp_path / "known.csv", [["C1", "x"]], header=("externalId", "reason"))
    code, stderr = _nightly(sandbox, tmp_path, "--acknowledged", known)
    assert code == 0, stderr
    assert "0 rows: nothing to import" in stderr


def test_an_acknowledged_fifo_is_refused_not_waited_on(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A FIFO given as the acknowledged file held the run before its first request, past
    SIGTERM."""
    import os

    write_csv(tmp_path / "export.csv", good_rows(2))
    os.mkfifo(tmp_path / "known.csv")
    code, stderr = _nightly(sandbox, tmp_path, "--acknowledged", tmp_path / "known.csv")
    assert code == 2
    assert f"{tmp_path / 'known.csv'}: not a regular file" in stderr
    assert not sandbox.server.customers


def test_no_output_is_written_over_the_acknowledged_file(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    write_csv(tmp_path / "export.csv", good_rows(2))
    known = write_csv(tmp_path / "known.csv", [["C1", "x"]], header=("externalId", "reason"))
    done = run_cli(
        tmp_path / "export.csv", "--brand", "casino-x", "--base-url", sandbox.url,
        "--journal", tmp_path / "j.db", "--acknowledged", known, "--errors-out", known,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"--errors-out {known}: that is the acknowledged file" in done.stderr
    assert known.read_text(encoding="utf-8").splitlines()[0] == "externalId,reason"


def test_the_python_api_takes_an_acknowledged_file(tmp_path: Path) -> None:
    import httpx

    from affelios_import import ConfigError, ImportConfig, Importer

    with pytest.raises(ConfigError, match="acknowledged=42: expected a file's path"):
        ImportConfig(acknowledged=42)  # type: ignore[arg-type]
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    known = write_csv(tmp_path / "known.csv", [["C00001", "test"]], header=("externalId", "reason"))
    config = ImportConfig(
        base_url="https://api.test", api_key="k", journal=tmp_path / "j.db", acknowledged=known
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(201, json={"id": "a1"}))
    result = Importer(config, transport=transport).run(source)
    assert (result.counts["acknowledged"], result.counts["created"], result.exit_code) == (1, 1, 0)
