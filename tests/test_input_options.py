"""--map, --config, --encoding, --delimiter, standard input: through the real command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from affelios_import.cli.config_file import CONFIG_KEYS
from affelios_import.cli.main import main
from tests.conftest import API_KEY, RunningSandbox, good_rows, read_results, run_cli, write_csv

WINDOWS_EXPORT = (
    "External ID;Brand;Registration Date;Click Key\r\n"
    "000123;casino-x;2025-06-28T19:29:48.174Z;clk-Zoë\r\n"
    'C-2;casino-x;2025-06-28T19:29:48Z;"a;b"\r\n'
    "C-3;;2025-06-28T19:29:48Z;Müller-€\r\n"
)


def test_a_windows_semicolon_export_imports_with_one_map(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes(WINDOWS_EXPORT.encode("cp1252"))
    done = run_cli(
        source, "--map", "Brand=externalBrandId", "--brand", "casino-x",
        "--base-url", sandbox.url, "--journal", tmp_path / "j.db",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sent = sorted(
        (c["_request"]["externalId"], c["_request"].get("clickId"), c["externalBrandId"])
        for c in sandbox.server.customers.values()
    )
    assert sent == [
        ("000123", "clk-Zoë", "casino-x"),
        ("C-2", "a;b", "casino-x"),
        ("C-3", "Müller-€", "casino-x"),
    ]
    results = read_results(tmp_path / "export.results.csv")
    assert [r["Click Key"] for r in results] == ["clk-Zoë", "a;b", "Müller-€"]


@pytest.mark.parametrize(
    ("brand", "statuses", "code"),
    [
        ([], ["valid", "valid", "invalid"], 1),  # C-3 names no brand
        (["--brand", "casino-x"], ["valid", "valid", "valid"], 0),  # --brand fills C-3's
        (["--brand", "sportsbook-y"], ["invalid", "invalid", "valid"], 1),  # another brand
    ],
)
def test_a_brand_column_is_the_brand_without_a_map(
    runner: CliRunner, tmp_path: Path, brand: list[str], statuses: list[str], code: int
) -> None:
    """A `Brand` column stopped the run (exit 2) although every row named the brand
    given with --brand; it is externalBrandId, and no row reaches another brand."""
    source = tmp_path / "export.csv"
    source.write_bytes(WINDOWS_EXPORT.encode("cp1252"))
    result = runner.invoke(main, [str(source), "--dry-run", *brand])
    assert result.exit_code == code, result.stderr
    assert "Brand → externalBrandId" in result.stderr
    results = read_results(tmp_path / "export.dry-run.results.csv")
    assert [r["status"] for r in results] == statuses
    kinds = {r["error_kind"] for r in results if r["status"] == "invalid"}
    named = (
        {"required_missing:externalBrandId"} if not brand else {"brand_mismatch:externalBrandId"}
    )
    assert kinds == (named if code else set())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "Brand"], "--map 'Brand': expected COLUMN=FIELD, such as Brand=externalBrandId"),
        (
            ["--map", "Brand=shop"],
            "--map Brand=shop: 'shop' is not a field of the API; expected one of: brandId,",
        ),
        (["--map", "Shop=externalBrandId"], "--map names a column 'Shop' that is not in the file"),
        (
            ["--map", "Click Key=externalId"],
            "columns 'External ID' (#1), 'Click Key' (#4) all mean externalId",
        ),
    ],
)
def test_map_mistakes_exit_2_and_say_what_is_wrong(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes(WINDOWS_EXPORT.encode("cp1252"))
    result = runner.invoke(main, [str(source), "--dry-run", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_column_mapped_to_dash_is_left_out(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text("externalId,externalBrandId,registrationDate,clickId,clickKey\n")
    result = runner.invoke(main, [str(source), "--dry-run", "--map", "clickKey=-"])
    assert result.exit_code == 0, result.stderr


def test_config_file_settings_and_command_line_overrides(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "export.txt"
    source.write_bytes(WINDOWS_EXPORT.replace(";", "|").encode("latin-1", errors="replace"))
    config = tmp_path / "job.toml"
    config.write_text(
        'brand = "casino-x"\n'
        'encoding = "latin-1"\n'
        'delimiter = "|"\n'
        f'out = "{tmp_path / "from-config.csv"}"\n'
        "[map]\n"
        '"Brand" = "externalBrandId"\n'
    )
    result = runner.invoke(main, [str(source), "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    results = read_results(tmp_path / "from-config.csv")
    assert [r["status"] for r in results] == ["valid"] * 3
    assert results[0]["Click Key"] == "clk-Zoë"
    # the command line wins over the file
    result = runner.invoke(
        main,
        [str(source), "--config", str(config), "--dry-run", "--brand", "other", "-o",
         str(tmp_path / "cli.csv")],
    )  # fmt: skip
    assert result.exit_code == 1
    statuses = [r["status"] for r in read_results(tmp_path / "cli.csv")]
    assert statuses == ["invalid", "invalid", "valid"]  # the empty brand became "other"


def test_a_config_file_holds_each_kinds_own_settings(runner: CliRunner, tmp_path: Path) -> None:
    """A `[map]` for customers broke `--kind transactions`: one file could not hold the
    settings of both jobs. A kind's table wins for its runs ([customers.map] merged over
    [map]); the command line wins over both."""
    customers = write_csv(
        tmp_path / "c.csv",
        [["casino-x", "P1", "2025-06-28T19:29:48Z"]],
        header=("Shop", "Player", "registrationDate"),
    )
    deposits = write_csv(
        tmp_path / "t.csv",
        [["casino-x", "T1", "P1", "2025-06-28T19:29:48Z", "10"]],
        header=("Shop", "Txn", "Player", "transactionDate", "depositAmount"),
    )
    config = tmp_path / "job.toml"
    config.write_text(
        f'brand = "casino-x"\nout = "{tmp_path / "top.csv"}"\njournal = "{tmp_path / "j.db"}"\n'
        '[map]\n"Shop" = "externalBrandId"\n"Player" = "externalId"\n'
        f'[transactions]\nout = "{tmp_path / "tx.csv"}"\n'
        '[transactions.map]\n"Txn" = "externalId"\n"Player" = "externalCustomerId"\n'
    )
    done = runner.invoke(main, [str(customers), "--config", str(config), "--dry-run"])
    assert done.exit_code == 0, done.stderr
    assert [r["status"] for r in read_results(tmp_path / "top.csv")] == ["valid"]
    done = runner.invoke(
        main,
        [str(deposits), "--config", str(config), "--dry-run", "--kind", "transactions",
         "--new-journal"],
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert [r["status"] for r in read_results(tmp_path / "tx.csv")] == ["valid"]
    assert "Shop → externalBrandId, Txn → externalId, Player → externalCustomerId" in done.stderr
    done = runner.invoke(
        main,
        [str(deposits), "--config", str(config), "--dry-run", "--kind", "transactions",
         "--new-journal", "-o", str(tmp_path / "cli.csv")],
    )  # fmt: skip
    assert done.exit_code == 0 and (tmp_path / "cli.csv").exists()  # the command line wins
    config.write_text('[transactions]\nkind = "customers"\n')
    done = runner.invoke(main, [str(customers), "--config", str(config)])
    assert done.exit_code == 2
    assert "[transactions] cannot set kind: it holds the settings of transactions runs" in (
        done.stderr
    )
    config.write_text("[customers]\nbrnad = 1\n")
    done = runner.invoke(main, [str(customers), "--config", str(config)])
    assert done.exit_code == 2 and f"{config}: [customers] unknown key brnad" in done.stderr


def test_config_file_mistakes_are_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "job.toml"
    config.write_text('brand = "x"\nbrnad = "y"\n')
    result = runner.invoke(main, ["c.csv", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}: unknown key brnad; known keys: brand, base_url," in result.stderr
    config.write_text("brand = \n")
    result = runner.invoke(main, ["c.csv", "--config", str(config)])
    assert result.exit_code == 2
    assert "not valid TOML" in result.stderr


def test_standard_input_is_read_and_results_go_to_the_current_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFELIOS_")}
    done = subprocess.run(
        [sys.executable, "-m", "affelios_import", "-", "--dry-run", "--brand", "b"],
        input="externalId\tregistrationDate\nC1\t2025-06-28T19:29:48Z\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [r["externalId"] for r in read_results(tmp_path / "stdin.dry-run.results.csv")] == ["C1"]


def test_an_empty_file_exits_0_with_nothing_to_import(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text("")
    summary = tmp_path / "s.json"
    result = runner.invoke(main, [str(source), "--dry-run", "--summary-json", str(summary)])
    assert result.exit_code == 0
    assert "0 rows (dry run, nothing sent): nothing to import" in result.stderr
    assert (tmp_path / "c.dry-run.results.csv").read_text().strip() == (
        "row,status,affelios_id,http_status,attempts,error,error_kind"
    )
    assert json.loads(summary.read_text())["rows"] == 0


def test_json_instead_of_csv_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text('[{"externalId": "C1"}]')
    result = runner.invoke(main, [str(source), "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"affelios-import: {source}: this looks like JSON, not CSV; export the customers as CSV\n"
    )


def test_delimiter_words(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text(
        "externalId\texternalBrandId\tregistrationDate\nC1\tb\t2025-06-28T19:29:48Z\n"
    )
    for word in ("tab", "\\t", "\t"):
        result = runner.invoke(main, [str(source), "--dry-run", "--delimiter", word])
        assert result.exit_code == 0, result.stderr
    result = runner.invoke(main, [str(source), "--dry-run", "--delimiter", "::"])
    assert result.exit_code == 2
    assert "one character, or tab, comma, semicolon or pipe" in result.stderr


def test_the_key_cannot_be_kept_in_a_config_file(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "job.toml"
    config.write_text(f'api_key = "{API_KEY}"\n')
    result = runner.invoke(main, ["c.csv", "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown key api_key" in result.stderr
    assert API_KEY not in result.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("timeout = [1, 2]", "timeout = [1, 2]: expected a number"),
        ("out = 5", "out = 5: expected a path (text)"),
        ("journal = true", "journal = True: expected a path (text)"),
        ("concurrency = 2.5", "concurrency = 2.5: expected a whole number"),
        ("brand = 42", "brand = 42: expected text"),
        ("rate = true", "rate = True: expected a number"),
        ('[map]\n"Brand" = 1', "map = {'Brand': 1}: expected a table of COLUMN = FIELD"),
    ],
)
def test_config_values_of_the_wrong_type_are_usage_errors(
    runner: CliRunner, tmp_path: Path, line: str, message: str
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    config = tmp_path / "job.toml"
    config.write_text(line + "\n")
    result = runner.invoke(main, [str(source), "--dry-run", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"{config}: {message}" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "c.results.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "inf"], "inf is not a finite number"),
        (["--timeout", "nan"], "nan is not a finite number"),
        (["--rate", "nan"], "nan is not a finite number"),
        (["--delimiter", '"'], "'\"' cannot separate fields"),
        (["--delimiter", "a"], "'a' cannot separate fields"),
        (["--config", "CONFIG"], "nan is not a finite number"),  # rate = nan in TOML
        (["-o", "{date.year}.csv"], "{date.year}.csv: not a placeholder this tool knows"),
        (["--errors-out", "{0}.csv"], "{0}.csv: not a placeholder this tool knows"),
        (["--summary-json", "{when}.json"], "{when}.json: not a placeholder this tool knows"),
    ],
)
def test_option_values_out_of_range_are_usage_errors(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    config = tmp_path / "job.toml"
    config.write_text("rate = nan\n")
    args = [str(config) if a == "CONFIG" else a for a in args]
    result = runner.invoke(main, [str(source), "--dry-run", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_readmes_config_keys_are_the_tools() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    listed = readme.split("The keys are those of the options (", 1)[1].split(")", 1)[0]
    assert re.findall(r"`(\w+)`", listed) == list(CONFIG_KEYS)
