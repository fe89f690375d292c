"""No output overwrites the input, the journal or another output, by any name; every
output is known to be writable before the first request."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from affelios_import.cli.main import main
from tests.conftest import API_KEY, RunningSandbox, good_rows, run_cli, write_csv


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def setup(runner: CliRunner, sandbox: RunningSandbox, tmp_path: Path) -> dict[str, Path]:
    """A file, a journal with customers in it (from a first run), and its results."""
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    journal = tmp_path / "j.db"
    args = [str(source), "--base-url", sandbox.url, "--journal", str(journal)]
    assert runner.invoke(main, args, env={"AFFELIOS_API_KEY": API_KEY}).exit_code == 0
    (tmp_path / "link-to-journal").symlink_to(journal)
    os.link(source, tmp_path / "hard-link-to-input.csv")
    os.link(tmp_path / "c.results.csv", tmp_path / "hard-link-to-results.csv")
    return {"source": source, "journal": journal, "folder": tmp_path}


@pytest.mark.parametrize(
    ("option", "target", "what"),
    [
        ("--out", "j.db", "the journal"),
        ("--metrics-file", "link-to-journal", "the journal"),
        ("--errors-out", "j.db", "the journal"),
        ("--errors-out", "link-to-journal", "the journal"),
        ("--out", "j.db-wal", "the journal's own file"),
        ("--summary-json", "c.csv", "the input file"),
        ("--report-html", "hard-link-to-input.csv", "the input file"),
        ("--log-file", "c.csv", "the input file"),
        ("--summary-json", "hard-link-to-results.csv", "the file of --out"),
        ("--errors-out", "c.results.csv", "the file of --out"),
        ("--log-file", "c.errors.csv", "the file of --errors-out"),
    ],
)
def test_no_output_may_be_the_input_the_journal_or_another_output(
    runner: CliRunner,
    sandbox: RunningSandbox,
    setup: dict[str, Path],
    option: str,
    target: str,
    what: str,
) -> None:
    folder = setup["folder"]
    kept = {p: digest(p) for p in folder.iterdir() if p.is_file()}
    requests = sandbox.server.stats["requests"]
    path = folder / target
    args = [
        str(setup["source"]), "--base-url", sandbox.url, "--journal", str(setup["journal"]),
        "-o", str(folder / "c.results.csv"), option, str(path),
    ]  # fmt: skip
    result = runner.invoke(main, args, env={"AFFELIOS_API_KEY": API_KEY})
    assert result.exit_code == 2, result.stderr
    assert (
        result.stderr == f"affelios-import: {option} {path}: that is {what}; choose another path\n"
    )
    assert sandbox.server.stats["requests"] == requests
    assert {p: digest(p) for p in kept} == kept  # nothing was touched


@pytest.mark.parametrize(
    "option", ["--summary-json", "--report-html", "--log-file", "--metrics-file"]
)
@pytest.mark.parametrize("where", ["under-a-file", "a-directory"])
def test_an_unwritable_output_is_found_before_anything_is_sent(
    runner: CliRunner, sandbox: RunningSandbox, tmp_path: Path, option: str, where: str
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    (tmp_path / "plain-file").write_text("x")
    (tmp_path / "folder").mkdir()
    path = tmp_path / ("plain-file/out" if where == "under-a-file" else "folder")
    args = [str(source), "--base-url", sandbox.url, "--journal", str(tmp_path / "j.db")]
    result = runner.invoke(main, [*args, option, str(path)], env={"AFFELIOS_API_KEY": API_KEY})
    assert result.exit_code == 2
    if where == "under-a-file":
        assert result.stderr == (
            f"affelios-import: {option} {path}: {tmp_path / 'plain-file'} is a file, not a folder\n"
        )
    else:  # click's own check of the option
        assert f"'{path}' is a directory" in result.stderr
    assert sandbox.server.stats["requests"] == 0
    assert not (tmp_path / "c.results.csv").exists()


def test_probing_leaves_no_file_behind_when_the_run_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    result = runner.invoke(
        main,
        [str(source), "--summary-json", str(tmp_path / "s.json"), "--journal", str(tmp_path)],
        env={"AFFELIOS_API_KEY": API_KEY},
    )
    assert result.exit_code == 2
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("option", ["--metrics-file", "--out", "--summary-json", "--log-file"])
def test_an_output_that_is_a_fifo_or_a_device_is_refused_not_waited_on(
    tmp_path: Path, option: str
) -> None:
    """A FIFO nobody reads hung the output check (its probe's open); a device node was
    replaced by a regular file (as root, /dev/null itself would have been)."""
    source = write_csv(tmp_path / "c.csv", good_rows(1))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    targets = [fifo]
    if os.geteuid() == 0:  # a node of /dev/null's own, so that a regression harms nothing
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        targets.append(device)
    for target in targets:
        done = run_cli(source, "--dry-run", "--journal", ":memory:", option, target)
        assert done.returncode == 2, done.stderr
        assert f"{option} {target}: not a regular file" in done.stderr
    assert all(not stat.S_ISREG(target.stat().st_mode) for target in targets)
