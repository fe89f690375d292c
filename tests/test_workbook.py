"""Spreadsheets both ways: a workbook read as its cells' text, and results and errors
written as workbooks whose every cell is text."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import httpx
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl.cell.cell import Cell

from affelios_import.cli.main import main
from affelios_import.cli.summary import main as summary_main
from affelios_import.errors import InputError, SetupError
from affelios_import.input.keycheck import check
from affelios_import.input.sheet import CELL_CHARS_MAX, CUT_MARK, cell_text, sheet_rows, spool_sheet
from affelios_import.output.workbook import MAX_ROWS, check_rows, exact_number
from affelios_import.settings import Settings
from tests.conftest import (
    API_KEY,
    RunningSandbox,
    good_rows,
    read_results,
    run,
    run_cli,
    write_csv,
)
from tests.kinds import TX_HEADER, transactions

HEADER = ["External ID", "External Brand ID", "Registration Date", "Username", "Country"]


def workbook(path: Path, rows: Sequence[Sequence[object]], *, title: str = "Export") -> Path:
    """A workbook as a back office or Excel saves one (openpyxl types each cell)."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def notes_then(path: Path, customers: Sequence[Sequence[object]]) -> Path:
    """A workbook whose first sheet is not the customers: they are on `Customers`."""
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["not the customers"])
    sheet = book.create_sheet("Customers")
    for row in customers:
        sheet.append(list(row))
    book.save(path)
    return path


def cells(path: Path) -> list[list[Cell]]:
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    return [[c for c in row if isinstance(c, Cell)] for row in sheet.iter_rows()]


def texts(path: Path) -> list[list[str]]:
    return [["" if c.value is None else str(c.value) for c in row] for row in cells(path)]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("000123", "000123"),
        ("  spaced ", "  spaced "),
        (123, "123"),
        (123.0, "123"),
        (-0.0, "0"),
        (4.5, "4.5"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1.5e-07, "1.5e-07"),
        (10.1 + 20.2, "30.3"),  # the double 30.299999999999997, as Excel shows it
        (0.1 * 3 * 10, "3"),  # 3.0000000000000004
        (1268.4 - 0.0000000000001, "1268.4"),
        (1234567.891, "1234567.891"),
        (True, "true"),
        (False, "false"),
        (datetime(2025, 6, 28, 19, 29, 48, 174000), "2025-06-28T19:29:48.174Z"),
        (datetime(2025, 6, 28, 19, 29, 48, 173999), "2025-06-28T19:29:48.174Z"),
        (datetime(2025, 12, 31, 23, 59, 59, 999900), "2026-01-01T00:00:00.000Z"),
        (datetime(2025, 6, 28, 19, 29, 48), "2025-06-28T19:29:48.000Z"),
        (datetime(2025, 6, 28, 19, 29, 48, 173999, tzinfo=UTC), "2025-06-28T19:29:48.174Z"),
        (date(2025, 6, 28), "2025-06-28T00:00:00.000Z"),
        (time(19, 29, 48), "19:29:48"),
        (time(19, 29, 48, 500000), "19:29:48.500"),
        (timedelta(hours=30, seconds=5), "30:00:05"),
        ("", ""),
    ],
)
def test_a_cell_reads_as_the_text_the_sheet_shows(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_a_sheet_is_read_as_text_with_blank_rows_skipped(tmp_path: Path) -> None:
    source = workbook(
        tmp_path / "in.xlsx",
        [
            HEADER,
            ["000123", "b", datetime(2025, 6, 28, 19, 29, 48, 174000), "João\nMüller", 4.5],
            [],
            [123, "b", date(2025, 6, 28), "+34 600 000 000", True],
        ],
    )
    spooled = spool_sheet(source, name="in.xlsx", sheet=None, folder=tmp_path)
    assert spooled.sheet == "Export" and not spooled.faults
    with spooled.path.open(newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [
            HEADER,
            ["000123", "b", "2025-06-28T19:29:48.174Z", "João\nMüller", "4.5"],
            [],
            ["123", "b", "2025-06-28T00:00:00.000Z", "+34 600 000 000", "true"],
        ]


def test_sheet_picks_a_sheet_by_name_and_a_wrong_name_lists_them(tmp_path: Path) -> None:
    notes_then(tmp_path / "two.xlsx", [["externalId"]])
    name, rows = sheet_rows(tmp_path / "two.xlsx", name="two.xlsx", sheet="Customers")
    assert (name, list(rows)) == ("Customers", [["externalId"]])
    with pytest.raises(InputError) as error:
        sheet_rows(tmp_path / "two.xlsx", name="two.xlsx", sheet="Sheet1")
    assert str(error.value) == "two.xlsx: no sheet named 'Sheet1'; its sheets: 'Notes', 'Customers'"


def test_an_ods_sheet_is_read_like_an_xlsx_one(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "externalId": ["000123", 123],
            "registrationDate": [datetime(2025, 6, 28, 19, 29, 48, 174000), "x"],
            "username": ["Zoë", 4.5],
        },
        dtype=object,
    )
    with pd.ExcelWriter(tmp_path / "in.ods", engine="odf") as out:
        frame.to_excel(out, index=False, sheet_name="S")
    _, rows = sheet_rows(tmp_path / "in.ods", name="in.ods", sheet=None)
    assert list(rows) == [
        ["externalId", "registrationDate", "username"],
        ["000123", "2025-06-28T19:29:48.174Z", "Zoë"],
        ["123", "x", "4.5"],
    ]


def test_a_zip_that_is_no_workbook_is_one_clear_error(tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "export.xlsx", "w") as archive:
        archive.writestr("customers.csv", "externalId\nC1\n")
    with pytest.raises(InputError, match=r"^export\.xlsx: cannot be read as a workbook \("):
        sheet_rows(tmp_path / "export.xlsx", name="export.xlsx", sheet=None)


def test_a_workbook_output_refuses_more_rows_than_a_sheet_holds() -> None:
    check_rows("--out", Path("r.xlsx"), MAX_ROWS - 1)
    with pytest.raises(SetupError) as error:
        check_rows("--out", Path("r.xlsx"), MAX_ROWS)
    assert str(error.value) == (
        "--out r.xlsx: 1,048,576 rows do not fit in a workbook (Excel's sheets hold "
        "1,048,575 rows below the header); write a .csv instead"
    )


def settings(tmp_path: Path, source: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "input": source,
        "out": tmp_path / "results.xlsx",
        "errors_out": tmp_path / "errors.xlsx",
        "journal": tmp_path / "journal.sqlite3",
        "base_url": "https://api.test",
        "api_key": API_KEY,
        "brand": "casino-x",
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def api(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(201, json={"id": f"id-{body['externalId']}"})


def test_results_and_errors_workbooks_hold_every_cell_as_text(tmp_path: Path) -> None:
    rows = good_rows(3)
    rows[1][2] = "28/06/2025"  # invalid
    rows[2][4] = "=HYPERLINK(1)"  # a formula in a CSV: text in the workbook, not a formula
    source = write_csv(tmp_path / "in.csv", [["000123", *rows[0][1:]], *rows[1:]])
    summary = run(settings(tmp_path, source), transport=httpx.MockTransport(api))
    assert summary.exit_code == 1

    results = cells(tmp_path / "results.xlsx")
    assert [c.value for c in results[0]][:7] == [
        "row", "status", "affelios_id", "http_status", "attempts", "error", "error_kind"
    ]  # fmt: skip
    assert [[c.value for c in row][:3] for row in results[1:]] == [
        ["1", "created", "id-000123"],
        ["2", "invalid", None],
        ["3", "created", "id-C00003"],
    ]
    assert results[1][7].value == "000123"
    assert results[3][-1].value == "=HYPERLINK(1)"
    filled = [c for row in results for c in row if c.value is not None]
    assert {c.data_type for c in filled} == {"s"}
    assert {c.number_format for c in filled} == {"@"}
    sheet = openpyxl.load_workbook(tmp_path / "results.xlsx").active
    assert sheet is not None
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{results[0][-1].column_letter}4"
    coloured = {rule.formula[0] for rule in sheet.conditional_formatting["B2:B4"]}
    assert {'"created"', '"invalid"', '"failed"'} <= coloured
    assert sheet.column_dimensions["F"].width > sheet.column_dimensions["A"].width
    # Empty cells too are text: what an analyst types there stays as typed.
    assert sheet.column_dimensions["C"].number_format == "@"

    errors = cells(tmp_path / "errors.xlsx")
    assert [c.value for c in errors[0]] == [
        "externalId", "externalBrandId", "registrationDate", "clickKey", "username",
        "source_row", "key_check", "to_do", "error",
    ]  # fmt: skip
    assert len(errors) == 2
    assert [c.value for c in errors[1]][:6] == [
        "C00002",
        "casino-x",
        "28/06/2025",
        *rows[1][3:],
        "2",
    ]
    assert errors[1][6].value == check(("casino-x", "C00002"))
    assert errors[1][7].value == "fix"
    assert str(errors[1][8].value).startswith("registrationDate '28/06/2025': expected")
    assert {c.data_type for c in errors[1]} == {"s"}


def test_a_cell_too_long_for_a_workbook_is_found_while_planning(tmp_path: Path) -> None:
    """It was found only after its chunk was sent: exit 3, and the summary said 0 rows.
    Now the row is invalid before anything is sent, the rest goes on, the workbooks show
    the cell cut (and say so), and the cut cell imported again is refused."""
    rows = good_rows(3)
    rows[1][4] = "x" * 40_000
    source = write_csv(tmp_path / "in.csv", rows)
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["externalId"])
        return api(request)

    summary = run(settings(tmp_path, source), transport=httpx.MockTransport(answer))
    assert summary.exit_code == 1, summary.stop_detail
    assert sent == [rows[0][0], rows[2][0]]
    results = texts(tmp_path / "results.xlsx")
    assert [row[1] for row in results[1:]] == ["created", "invalid", "created"]
    assert results[2][5].startswith("username has 40,000 characters, more than a workbook cell")
    assert results[2][6] == "cell_too_long:username"
    cut = results[2][7 + 4]
    assert len(cut) == CELL_CHARS_MAX and cut.endswith(CUT_MARK) and cut.startswith("xxx")

    # The errors workbook imported as it is: the cut cell is not the row's text.
    again = settings(tmp_path, tmp_path / "errors.xlsx", out=tmp_path / "r2.csv", errors_out=None)
    assert run(again, transport=httpx.MockTransport(answer)).exit_code == 1
    (row,) = read_results(tmp_path / "r2.csv")
    assert (row["status"], row["error_kind"]) == ("invalid", "cell_cut:username")
    assert row["error"].startswith("username was cut to fit a workbook cell")
    assert len(sent) == 2

    # With CSV outputs, the long cell is sent as it is.
    csv_out = settings(tmp_path, source, out=tmp_path / "r3.csv", errors_out=None,
                       journal=tmp_path / "j3.db")  # fmt: skip
    assert run(csv_out, transport=httpx.MockTransport(answer)).exit_code == 0
    assert sent[2:] == [r[0] for r in rows]


def test_bom_starts_the_csv_outputs_with_a_byte_order_mark(tmp_path: Path) -> None:
    rows = good_rows(2)
    rows[1][2] = "bad"
    source = write_csv(tmp_path / "in.csv", rows)
    out, errors = tmp_path / "r.csv", tmp_path / "e.csv"
    run(
        settings(tmp_path, source, out=out, errors_out=errors, bom=True),
        transport=httpx.MockTransport(api),
    )
    assert out.read_bytes().startswith(b"\xef\xbb\xbfrow,status,")
    assert errors.read_bytes().startswith(b"\xef\xbb\xbfexternalId,")
    assert "Zoë" not in out.read_text(encoding="utf-8-sig")  # read back as UTF-8
    # A file with the mark summarises as one without.
    result = CliRunner().invoke(summary_main, [str(out)])
    assert result.exit_code == 1, result.output
    assert "2 rows: 1 created, 1 invalid" in result.output


def test_summary_reads_a_results_workbook(tmp_path: Path) -> None:
    rows = good_rows(3)
    rows[0][2] = "bad"
    source = write_csv(tmp_path / "in.csv", rows)
    run(settings(tmp_path, source), transport=httpx.MockTransport(api))
    result = CliRunner().invoke(summary_main, [str(tmp_path / "results.xlsx"), "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.output)["counts"]["created"] == 2
    assert json.loads(result.output)["counts"]["invalid"] == 1


def test_sheet_on_a_csv_is_a_usage_error(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", good_rows(1))
    result = CliRunner().invoke(main, [str(source), "--sheet", "Export", "--dry-run"])
    assert result.exit_code == 2
    assert f"--sheet Export: {source} is not a workbook" in result.output


def test_a_workbook_read_from_standard_input(tmp_path: Path) -> None:
    source = workbook(tmp_path / "in.xlsx", [HEADER, ["000123", "casino-x", "x", "Zoë", "MT"]])
    result = CliRunner().invoke(
        main,
        ["-", "--dry-run", "-o", str(tmp_path / "r.csv")],
        input=source.read_bytes(),
    )
    assert result.exit_code == 1, result.output
    (row,) = read_results(tmp_path / "r.csv")
    assert (row["External ID"], row["Username"], row["status"]) == ("000123", "Zoë", "invalid")


def test_a_workbooks_outputs_default_to_workbooks_and_the_report_names_its_sheet(
    tmp_path: Path,
) -> None:
    source = workbook(tmp_path / "export.xlsx", [HEADER, ["C1", "casino-x", "bad date", "a", "MT"]])
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, [str(source), "--dry-run", "--report-html", str(report), "--journal", ":memory:"]
    )
    assert result.exit_code == 1, result.output
    assert (tmp_path / "export.dry-run.results.xlsx").exists()
    assert (tmp_path / "export.dry-run.errors.xlsx").exists()
    assert "read: sheet 'Export' of" in result.output
    assert "Read: sheet &#x27;Export&#x27; of the workbook" in report.read_text(encoding="utf-8")


def test_the_analysts_loop_in_a_workbook_over_real_http(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = workbook(
        tmp_path / "export.xlsx",
        [
            HEADER,
            ["000123", "casino-x", datetime(2025, 6, 28, 19, 29, 48, 174000), "João Müller", "PT"],
            [123, "casino-x", "2025-06-28T10:00:00Z", "Zoë Ødegård", "NO"],
            ["C-3", "casino-x", "28/06/2025", "Ann", "MT"],
        ],
    )
    journal = tmp_path / "journal.db"
    first = run_cli(source, "--base-url", sandbox.url, "--journal", journal)
    assert first.returncode == 1, first.stderr
    errors = tmp_path / "export.errors.xlsx"
    found = cells(errors)
    assert len(found) == 2  # the header and the bad row only
    assert [c.value for c in found[1]][:5] == ["C-3", "casino-x", "28/06/2025", "Ann", "MT"]
    assert {c.data_type for c in found[1]} == {"s"}

    # Fixed in place, as Excel would save it.
    book = openpyxl.load_workbook(errors)
    sheet = book.active
    assert sheet is not None
    sheet["C2"] = "2025-06-28T08:00:00Z"
    book.save(errors)
    second = run_cli(errors, "--base-url", sandbox.url, "--journal", journal)
    assert second.returncode == 0, second.stderr

    store = {c["externalId"]: c for c in sandbox.server.customers.values()}
    assert sorted(store) == ["000123", "123", "C-3"]
    assert store["000123"]["_request"]["registrationDate"] == "2025-06-28T19:29:48.174Z"
    assert store["000123"]["_request"]["username"] == "João Müller"
    assert store["123"]["_request"]["username"] == "Zoë Ødegård"
    assert store["C-3"]["_request"]["registrationDate"] == "2025-06-28T08:00:00Z"
    results = texts(tmp_path / "export.results.xlsx")
    assert [row[1] for row in results[1:]] == ["created", "created", "invalid"]


def test_a_config_file_names_the_sheet_and_asks_for_the_mark(tmp_path: Path) -> None:
    notes_then(
        tmp_path / "export.xlsx",
        [HEADER, ["000123", "casino-x", "2025-06-28T19:29:48Z", "Zoë", "MT"]],
    )
    config = tmp_path / "job.toml"
    config.write_text('sheet = "Customers"\nbom = true\n', encoding="utf-8")
    out = tmp_path / "r.csv"
    args = [str(tmp_path / "export.xlsx"), "--config", str(config), "--dry-run", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbfrow,")
    with out.open(newline="", encoding="utf-8-sig") as f:
        (row,) = csv.DictReader(f)
    assert (row["External ID"], row["Username"], row["status"]) == ("000123", "Zoë", "valid")

    config.write_text('bom = "yes"\n', encoding="utf-8")
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "bom" in refused.output and "true or false" in refused.output


def test_a_copy_of_the_sheet_that_cannot_be_written_is_a_setup_error(tmp_path: Path) -> None:
    source = workbook(tmp_path / "in.xlsx", [HEADER])
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(SetupError, match=r"^in\.xlsx: cannot write a copy of sheet 'Export' in "):
        spool_sheet(source, name="in.xlsx", sheet=None, folder=not_a_folder)


@pytest.mark.parametrize("far", ["XFD1048576", "ZZ1048576", "XFD2"])
def test_a_stray_cell_far_from_the_data_is_refused_not_an_abort(tmp_path: Path, far: str) -> None:
    """A 5 KB workbook with one cell at XFD1048576 made calamine ask for 512 GB and abort
    the process (exit 134, no message). Its extent is checked first: exit 2, one line."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Export"
    for row in [HEADER, ["C1", "casino-x", "2025-06-28T19:29:48.174Z", "k", "u"]]:
        sheet.append(list(row))
    sheet[far] = "x"
    source = tmp_path / "export.xlsx"
    book.save(source)
    assert source.stat().st_size < 10_000
    result = CliRunner().invoke(main, [str(source), "--dry-run", "--journal", ":memory:"])
    if far == "XFD2":  # 16,384 columns of 2 rows: wide, not too big
        assert result.exit_code == 0, result.stderr[-500:]
        # The columns without a name are counted, not listed 16,379 times.
        (columns,) = [line for line in result.stderr.splitlines() if line.startswith("columns:")]
        assert columns.endswith("; not sent: 16,379 columns without a name")
        return
    assert result.exit_code == 2, result.stderr
    assert f"(a cell far from the data, at {far}?)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_workbook_that_unzips_past_the_bound_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = workbook(tmp_path / "export.xlsx", [HEADER, *(["C1", "b", "d", "k", "u"],) * 500])
    monkeypatch.setattr("affelios_import.input.sheet.UNZIPPED_MAX", 20_000)
    result = CliRunner().invoke(main, [str(source), "--dry-run", "--journal", ":memory:"])
    assert result.exit_code == 2, result.stderr
    assert "the workbook unzips to" in result.stderr and "save the sheet as CSV" in result.stderr


def test_the_sheet_read_is_the_one_the_analyst_sees(tmp_path: Path) -> None:
    """A hidden first sheet was imported instead of the visible, active one."""
    path = notes_then(tmp_path / "two.xlsx", [["externalId"], ["C1"]])
    book = openpyxl.load_workbook(path)
    book["Notes"].sheet_state = "hidden"
    book.active = 1
    book.save(path)
    assert sheet_rows(path, name="two.xlsx", sheet=None)[0] == "Customers"
    book["Notes"].sheet_state = "visible"  # both visible: the one it opens on
    book.save(path)
    assert sheet_rows(path, name="two.xlsx", sheet=None)[0] == "Customers"
    book.active = 0
    book.save(path)
    assert sheet_rows(path, name="two.xlsx", sheet=None)[0] == "Notes"


def _tx_book_showing_what_its_text_does_not(path: Path) -> Path:
    """Transactions whose sent cells the analyst sees, but calamine reads as empty: a
    formula with no value stored (as openpyxl and report generators write them), an
    error, the lower cell of a merged amount, a hidden row; and one error in a column
    that is not sent."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([*TX_HEADER, "Checked by"])
    for row in transactions(7):
        sheet.append([*row, "ok"])
    sheet["F2"] = "=10+5"  # no cached value: openpyxl writes none
    sheet["F3"] = "#N/A"
    sheet["F3"].data_type = "e"
    sheet.merge_cells("F4:F5")  # F5, covered, shows F4's amount
    sheet.row_dimensions[6].hidden = True
    sheet["H7"] = "#DIV/0!"
    sheet["H7"].data_type = "e"  # not sent: the row goes
    book.save(path)
    return path


def test_cells_that_show_what_their_text_does_not_are_faults_of_their_rows(
    tmp_path: Path,
) -> None:
    source = _tx_book_showing_what_its_text_does_not(tmp_path / "tx.xlsx")
    spooled = spool_sheet(source, name="tx.xlsx", sheet=None, folder=tmp_path)
    found = {row: [(f.column, f.code, f.where, f.detail) for f in faults]
             for row, faults in spooled.faults.items()}  # fmt: skip
    assert found == {
        0: [(5, "formula_without_value", "F2", "")],
        1: [(5, "cell_error", "F3", "#N/A")],
        3: [(5, "merged_cell", "F5", "F4:F5")],
        4: [(-1, "hidden_row", "6", "")],
        5: [(7, "cell_error", "H7", "#DIV/0!")],
    }


def test_a_workbook_s_formula_without_value_error_merged_or_hidden_cell_is_never_sent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Each was sent as a transaction without its amount, exit 0, once and for ever."""
    source = _tx_book_showing_what_its_text_does_not(tmp_path / "tx.xlsx")
    out = tmp_path / "tx.results.csv"
    result = run_cli(
        source, "--kind", "transactions", "--base-url", sandbox.url, "--new-journal",
        "--journal", tmp_path / "j.db", "-o", out,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    rows = read_results(out)
    assert [r["status"] for r in rows] == [
        "invalid", "invalid", "accepted", "invalid", "invalid", "accepted", "accepted",
    ]  # fmt: skip
    assert rows[0]["error"].startswith("depositAmount (F2) holds a formula whose value")
    assert rows[0]["error_kind"] == "formula_without_value:depositAmount"
    assert rows[1]["error"].startswith("depositAmount (F3) shows #N/A, an error")
    assert rows[3]["error"].startswith("depositAmount (F5) is inside the merged cell F4:F5")
    assert rows[4]["error"].startswith("row 6 of the sheet is hidden")
    sent = sorted(t["externalId"] for t in sandbox.server.transactions)
    assert sent == ["T00003", "T00006", "T00007"]


@pytest.mark.parametrize(
    ("text", "number"),
    [("12.50", 12.5), ("-3.03", -3.03), ("1000", 1000.0), ("0.000000000000001", 1e-15),
     ("123456789012345", 123456789012345.0), ("1234567890123456", None), ("1.5e3", None),
     ("0000100", 100.0), ("", None), ("12,50", None)],
)  # fmt: skip
def test_an_amount_is_a_number_only_where_a_number_holds_it_exactly(
    text: str, number: float | None
) -> None:
    assert exact_number(text) == number


def test_a_results_workbook_holds_amounts_as_numbers_and_ids_as_text(tmp_path: Path) -> None:
    """Results workbooks stored amounts as text: a spreadsheet could not sum them."""
    rows = transactions(3)
    rows[0][0], rows[0][5] = "000123", "1234567890.123456789"  # too many digits: text
    source = write_csv(tmp_path / "tx.csv", rows, header=TX_HEADER)
    out = tmp_path / "tx.results.xlsx"
    args = [str(source), "--kind", "transactions", "--dry-run", "--new-journal",
            "--journal", ":memory:", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    found = cells(out)
    header = [c.value for c in found[0]]
    deposit, ident = header.index("depositAmount"), header.index("External Transaction ID")
    assert [(c.value, c.data_type) for c in (r[deposit] for r in found[1:])] == [
        ("1234567890.123456789", "s"), (2.02, "n"), (3.03, "n"),
    ]  # fmt: skip
    assert (found[1][ident].value, found[1][ident].data_type) == ("000123", "s")
