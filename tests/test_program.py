"""The `affelios-import` program as a process: what it loads."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.conftest import HEADER, good_rows

# The program ends with os._exit; just before, this lists the modules it had loaded.
LOADED_AT_EXIT = """
import os, sys
exit_now = os._exit
def listing(code):
    loaded = sorted(name for name, module in sys.modules.items() if module is not None)
    print("loaded:", " ".join(loaded), file=sys.stderr)
    exit_now(code)
os._exit = listing
sys.argv = ["affelios-import", *sys.argv[1:]]
from affelios_import.cli.main import program
program()
"""


def loaded_modules(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the program; the top-level names of the modules it had loaded at its exit."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AT_EXIT, *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    listed = [line for line in done.stderr.splitlines() if line.startswith("loaded: ")]
    assert listed, done.stderr[-2000:]
    return done, {name.split(".")[0] for name in listed[-1].split()[1:]}


def test_a_dry_run_loads_no_http_client_no_retrier_and_not_hypothesis(tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows([HEADER, *good_rows(5)])
    done, names = loaded_modules(
        data, "--dry-run", "--brand", "casino-x", "-q", "-o", tmp_path / "r.csv"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pandera" in names and "pandas" in names  # the run did validate its rows
    # the HTTP engine (and aiohttp, the sandbox's server) and the retries' loop
    # (tenacity) a run that sends nothing need not import;
    # pandera would import hypothesis (installed with the development tools) on its
    # first validation, for data-synthesis strategies the program never uses.
    assert not {"pyreqwest", "aiohttp", "httpx_aiohttp", "hypothesis", "tenacity"} & names
