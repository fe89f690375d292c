"""The analyst's round trip through a spreadsheet: an errors file opened the default way
in Excel or LibreOffice and saved as CSV loses what makes an id text (`0000100` comes
back as `100`, a 16-digit id as `1.23457E+15`). It re-imported with exit 0 and created
customers that do not exist; now each row carries a check of its key, and a row whose
key changed is refused, saying what the spreadsheet did."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from affelios_import.input.columns import resolve
from affelios_import.input.keycheck import KeyChecks, check
from affelios_import.kinds import get
from affelios_import.output.results import errors_header
from tests.conftest import HEADER, RunningSandbox, read_results, run_cli, write_csv


def _keys(kind: str = "customers") -> KeyChecks:
    fields = get(kind)
    columns = resolve(list(fields.required), brand=None, source="f", kind=fields)
    return KeyChecks(columns, brand=None, kind=fields)


def test_a_check_is_text_no_spreadsheet_takes_for_a_number() -> None:
    made = check(("casino-x", "0000100"))
    assert made.startswith("K-") and len(made) == 10 and made[2:].isalnum()
    assert made == check(("casino-x", "0000100"))  # the same key, the same check
    assert made != check(("casino-x", "100"))


@pytest.mark.parametrize(
    ("written", "read", "said"),
    [
        ("0000100", "100", "externalId '100' was '0000100' when this file was written: "
         "a spreadsheet dropped its leading zeros"),
        ("1234567890123456", "1.23457E+15", "externalId '1.23457E+15' is a long number as "
         "a spreadsheet rounds it: its digits are lost"),
        ("C-1", "C-2", "externalBrandId, externalId of this row are not what they were"),
    ],
)  # fmt: skip
def test_a_changed_key_says_what_the_spreadsheet_did(written: str, read: str, said: str) -> None:
    keys = _keys()
    expected = check(("casino-x", written))
    assert keys.changed(("casino-x", written), expected) is None
    why = keys.changed(("casino-x", read), expected)
    assert why is not None and why.startswith(said)


def _as_a_spreadsheet_saves_it(path: Path) -> None:
    """What LibreOffice (and Excel) make of the errors CSV opened the default way,
    fixed and saved as CSV: numeric-looking ids become numbers."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    for row in rows[1:]:
        if row[0].isdigit():
            number = int(row[0])
            row[0] = str(number) if number < 10**15 else f"{number:.5E}"
        row[2] = "2025-06-28T19:29:48Z"  # the analyst's fix
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def test_an_errors_file_mangled_by_a_spreadsheet_creates_no_customer_under_another_id(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    ids = ["0000100", "0000200", "1234567890123456", "C-4"]
    source = write_csv(tmp_path / "export.csv", [
        [i, "casino-x", "28/06/2025", "", f"user{n}"] for n, i in enumerate(ids)
    ])  # fmt: skip
    journal = tmp_path / "j.db"
    errors = tmp_path / "export.errors.csv"
    first = run_cli(source, "--base-url", sandbox.url, "--journal", journal)
    assert first.returncode == 1, first.stderr
    with errors.open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [r["key_check"] for r in written] == [check(("casino-x", i)) for i in ids]

    _as_a_spreadsheet_saves_it(errors)
    again = run_cli(
        errors, "--base-url", sandbox.url, "--journal", journal, "-o", tmp_path / "again.csv",
        "--errors-out", tmp_path / "again.errors.csv",
    )  # fmt: skip
    assert again.returncode == 1, again.stderr
    results = read_results(tmp_path / "again.csv")
    assert [r["status"] for r in results] == ["invalid", "invalid", "invalid", "created"]
    assert {r["error_kind"] for r in results[:3]} == {"key_changed"}
    assert "'100' was '0000100'" in results[0]["error"]
    assert "'1.23457E+15' is a long number" in results[2]["error"]
    assert sorted(c["externalId"] for c in sandbox.server.customers.values()) == ["C-4"]

    # Fixed in the text (the ids as they were), or with the check emptied on purpose.
    with (tmp_path / "again.errors.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[1][0], rows[2][0] = "0000100", "200"
    rows[2][rows[0].index("key_check")] = ""  # the analyst means 200
    rows[3][0] = "1234567890123456"
    with (tmp_path / "again.errors.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    third = run_cli(tmp_path / "again.errors.csv", "--base-url", sandbox.url, "--journal", journal,
                    "-o", tmp_path / "third.csv")  # fmt: skip
    assert third.returncode == 0, third.stderr
    taken = sorted(c["externalId"] for c in sandbox.server.customers.values())
    assert taken == ["0000100", "1234567890123456", "200", "C-4"]


def test_a_results_file_is_no_input(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """A results file carries no check of its keys: refused, saying what to import."""
    source = write_csv(tmp_path / "export.csv", [["0000100", "casino-x", "28/06/2025", "", "u"]])
    run_cli(source, "--base-url", sandbox.url, "--journal", tmp_path / "j.db")
    again = run_cli(tmp_path / "export.results.csv", "--base-url", sandbox.url,
                    "--journal", tmp_path / "j.db")  # fmt: skip
    assert again.returncode == 2
    assert "this is a results file of affelios-import" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert not sandbox.server.customers


def test_the_errors_file_header_keeps_its_own_columns_once() -> None:
    once = errors_header(list(HEADER))
    assert once[-4:] == ["source_row", "key_check", "to_do", "error"]
    assert errors_header(once) == once


def test_a_changed_key_is_caught_whatever_else_the_row_has_and_is_never_skipped(
    tmp_path: Path,
) -> None:
    """A mangled row still invalid for another reason was written back with a check of
    its mangled key: fixed otherwise, it would have gone out under that key. And one
    whose mangled key is another customer's the journal holds was `skipped`."""
    import json

    import httpx

    from affelios_import.settings import Settings
    from tests.conftest import run

    sent: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["externalId"])
        return httpx.Response(201, json={"id": f"id-{sent[-1]}"})

    def imported(source: Path, name: str) -> list[dict[str, str]]:
        settings = Settings(
            input=source, out=tmp_path / f"{name}.csv", errors_out=tmp_path / f"{name}.e.csv",
            journal=tmp_path / "j.db", base_url="https://api.test", api_key="k",
        )  # fmt: skip
        run(settings, transport=httpx.MockTransport(api))
        return read_results(tmp_path / f"{name}.csv")

    ok = "2025-06-28T19:29:48Z"
    imported(write_csv(tmp_path / "other.csv", [["100", "casino-x", ok, "", "u"]]), "r0")
    imported(write_csv(tmp_path / "x.csv", [["0000100", "casino-x", "28/06/2025", "", "u"]]), "r1")
    assert sent == ["100"]

    def mangled(path: Path, *, date: str) -> Path:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        rows[1][0], rows[1][2] = "100", date
        out = tmp_path / f"m-{path.name}"
        with out.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        return out

    second = imported(mangled(tmp_path / "r1.e.csv", date="28/06/2025"), "r2")
    assert second[0]["status"] == "invalid"
    assert second[0]["error_kind"].startswith("key_changed; date_not_zulu")
    third = imported(mangled(tmp_path / "r2.e.csv", date=ok), "r3")  # the date fixed
    assert (third[0]["status"], third[0]["error_kind"]) == ("invalid", "key_changed")
    assert sent == ["100"]  # never sent again under the changed key
