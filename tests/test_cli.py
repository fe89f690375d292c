"""The command through click's CliRunner: exit codes, exact messages, side effects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from affelios_import.cli.main import main
from affelios_import.errors import SetupError
from affelios_import.urls import check as check_base_url
from affelios_import.version import __version__
from tests.conftest import good_rows, read_results, write_csv


def test_no_key_exits_2_with_a_message_and_writes_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    result = runner.invoke(main, [str(source), "--journal", str(tmp_path / "j.db")])
    assert result.exit_code == 2
    assert result.stderr == (
        "affelios-import: no API key: set AFFELIOS_API_KEY or give --api-key-file "
        "(or use --dry-run)\n"
    )
    assert not (tmp_path / "c.results.csv").exists()


def test_missing_columns_exit_2_naming_them(runner: CliRunner, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", [["1", "x"]], header=["id", "name"])
    result = runner.invoke(main, [str(source), "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"affelios-import: {source}: no column for externalId, externalBrandId, "
        "registrationDate (or give --brand); columns found: id, name; "
        "expected: externalId, externalBrandId, registrationDate; nothing was sent\n"
    )


def test_unreadable_input_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, [str(tmp_path / "nope.csv"), "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr == f"affelios-import: {tmp_path / 'nope.csv'}: no such file\n"


def test_dry_run_writes_results_beside_the_input_and_a_summary(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    summary_json = tmp_path / "summary.json"
    result = runner.invoke(
        main,
        [
            str(source),
            "--dry-run",
            "--brand",
            "casino-x",
            "--summary-json",
            str(summary_json),
            "--journal",
            str(tmp_path / "j.db"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    # A dry run's own files: a real run's results (with their ids) are never overwritten.
    assert [r["status"] for r in read_results(tmp_path / "c.dry-run.results.csv")] == ["valid"] * 3
    assert (tmp_path / "c.dry-run.errors.csv").exists()
    assert not (tmp_path / "c.results.csv").exists() and not (tmp_path / "c.errors.csv").exists()
    columns, when, counts = result.stderr.splitlines()[:3]
    assert columns == (
        "columns: externalId → externalId, externalBrandId → externalBrandId, "
        "registrationDate → registrationDate, clickKey → clickId, username → username; "
        "empty externalBrandId: --brand casino-x"
    )
    assert " UTC, run " in when
    assert counts.startswith("3 rows (dry run, nothing sent): 3 valid in ")
    assert f"results: {tmp_path / 'c.dry-run.results.csv'}" in result.stderr
    data = json.loads(summary_json.read_text())
    assert data["counts"]["valid"] == 3
    assert data["exit_code"] == 0
    assert data["rows"] == 3


def test_quiet_prints_nothing_when_all_is_well(runner: CliRunner, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    result = runner.invoke(main, [str(source), "--dry-run", "-q", "-o", str(tmp_path / "r.csv")])
    assert (result.exit_code, result.stderr) == (0, "")
    bad = write_csv(tmp_path / "b.csv", [["", "casino-x", "x", "", ""]])
    result = runner.invoke(main, [str(bad), "--dry-run", "-q", "-o", str(tmp_path / "r.csv")])
    assert result.exit_code == 1
    assert "1 invalid" in result.stderr


def test_api_key_file_is_read_and_an_empty_one_refused(runner: CliRunner, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    empty = tmp_path / "key"
    empty.write_text("\n")
    result = runner.invoke(main, [str(source), "--api-key-file", str(empty)])
    assert result.exit_code == 2
    assert result.stderr == f"affelios-import: --api-key-file {empty}: the file is empty\n"


def test_sandbox_flag_imports_with_no_account(runner: CliRunner, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(5))
    result = runner.invoke(main, [str(source), "--sandbox"])
    assert result.exit_code == 0, result.stderr
    results = read_results(tmp_path / "c.results.csv")
    assert {r["status"] for r in results} == {"created"}
    assert all(len(r["affelios_id"]) == 24 for r in results)


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.output == f"affelios-import, version {__version__}\n"


def test_bad_option_value_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, [str(tmp_path / "c.csv"), "--concurrency", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--concurrency'" in result.stderr


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://platform.affelios.com/", "https://platform.affelios.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_base_urls_allowed(url: str, allowed: str) -> None:
    assert check_base_url(url, allow_insecure_http=False) == allowed


def test_plain_http_to_another_host_is_refused_unless_allowed() -> None:
    with pytest.raises(SetupError, match="plain http would send the API key unencrypted"):
        check_base_url("http://api.example.com", allow_insecure_http=False)
    assert check_base_url("http://api.example.com", allow_insecure_http=True)
    with pytest.raises(SetupError, match="expected https://host"):
        check_base_url("ftp://x", allow_insecure_http=True)


def test_a_journal_that_cannot_be_opened_exits_2_before_sending(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFELIOS_API_KEY", "k")
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    (tmp_path / "a-file").write_text("")
    journal = tmp_path / "a-file" / "journal.db"  # its folder is a file
    result = runner.invoke(main, [str(source), "--journal", str(journal)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"affelios-import: journal {journal}: cannot be opened (")
    assert result.stderr.endswith("); try --journal PATH\n")
    assert not (tmp_path / "c.results.csv").exists()


def test_limit_tries_the_first_rows_only(runner: CliRunner, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(25))
    result = runner.invoke(
        main, [str(source), "--dry-run", "--limit", "7", "--journal", str(tmp_path / "j")]
    )
    assert result.exit_code == 0, result.stderr
    assert [r["row"] for r in read_results(tmp_path / "c.dry-run.results.csv")] == [
        str(i) for i in range(1, 8)
    ]
    assert result.stderr.splitlines()[2].startswith("7 rows (dry run, nothing sent): 7 valid")


def test_dated_names_for_outputs(runner: CliRunner, tmp_path: Path) -> None:
    from datetime import datetime

    from affelios_import.cli.main import expand

    when = datetime(2026, 11, 25, 2, 30, 5)
    assert expand(Path("results/{date}-{time}.csv"), now=when) == Path(
        "results/2026-11-25-023005.csv"
    )
    source = write_csv(tmp_path / "c.csv", good_rows(2))
    out = tmp_path / "results" / "{date}.csv"
    summary = tmp_path / "logs" / "{date}.json"
    result = runner.invoke(
        main, [str(source), "--dry-run", "-o", str(out), "--summary-json", str(summary)]
    )
    assert result.exit_code == 0, result.stderr
    today = f"{datetime.now():%Y-%m-%d}"
    assert len(read_results(tmp_path / "results" / f"{today}.csv")) == 2
    assert json.loads((tmp_path / "logs" / f"{today}.json").read_text())["rows"] == 2
    bad = runner.invoke(main, [str(source), "--dry-run", "-o", str(tmp_path / "{day}.csv")])
    assert bad.exit_code == 2
    assert (
        "not a placeholder this tool knows ('day'); the placeholders are {date} and {time}"
        in bad.stderr
    )


def test_help_has_a_runnable_example_for_every_group_of_options(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    from click.core import ParameterSource

    monkeypatch.chdir(tmp_path)
    Path("nightly.toml").write_text('brand = "casino-x"\n')  # the example's config file
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    examples = [
        line.strip()
        for line in result.output.splitlines()
        if line.strip().startswith("affelios-import ")
    ]
    assert len(examples) >= 9
    used: set[str] = set()
    for example in examples:
        args = shlex.split(example)[1:]
        context = main.make_context("affelios-import", args)  # parses, or raises
        for name in context.params:
            if context.get_parameter_source(name) is ParameterSource.COMMANDLINE:
                used.add(name)
    options = {p.name for p in main.params if p.expose_value and p.name != "csv_path"}
    documented_elsewhere = {"api_key_file", "allow_insecure_http", "journal", "quiet", "timeout"}
    assert options - used - documented_elsewhere == set()  # every other option has an example
    assert "--config nightly.toml" in " ".join(examples)


def test_the_readme_cron_line_is_a_valid_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    Path("nightly.toml").write_text('brand = "casino-x"\n')
    (line,) = [x for x in readme.splitlines() if x.startswith("30 2 * * * ")]
    words = shlex.split(line.split(" && ", 1)[1].split(" 2>>", 1)[0])
    args = words[words.index(".venv/bin/affelios-import") + 1 :]
    context = main.make_context("affelios-import", args)
    assert context.params["quiet"] is True
    assert str(context.params["out"]) == "results/{date}.results.csv"


def test_shell_completion_is_built_in(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = os.environ | {"_AFFELIOS_IMPORT_COMPLETE": "bash_source"}
    done = subprocess.run(
        [sys.executable, "-c",
         "from affelios_import.cli.main import main; main(prog_name='affelios-import')"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    assert "complete -o nosort -F _affelios_import_completion affelios-import" in done.stdout


def test_the_demo_prints_the_command_it_runs(tmp_path: Path) -> None:
    """Its banner was not the command it ran (no --brand, --base-url, --journal...)."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(Path(__file__).parent.parent / "sample_data", tmp_path / "sample_data")
    done = subprocess.run(
        [sys.executable, "-m", "affelios_import.demo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = [line for line in done.stdout.splitlines() if line.startswith("$ affelios-import ")]
    assert len(shown) == 2
    for line, kind in zip(shown, ("customers", "transactions"), strict=True):
        assert line.startswith(f"$ affelios-import sample_data/{kind}.csv --kind {kind} ")
        assert "--brand casino-x --base-url http://127.0.0.1:" in line
        assert f"-o build/demo/{kind}.results.csv" in line
    assert "--new-journal" in shown[1] and "--new-journal" not in shown[0]
    assert (tmp_path / "build/demo/transactions.results.csv").exists()
