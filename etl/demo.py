"""`make demo`: the sample customers, then their transactions, into one sandbox API.

Starts the sandbox on a free loopback port, runs the real `affelios-import` command
twice against it (customers, then `--kind transactions`) with one journal, so that the
transactions' customers are known, and stops the sandbox. Each import exits 1, since
the samples hold a handful of bad rows on purpose: that is the demo. Exits 0 when both
imports ran to their end (exit 0 or 1), else with the first exit code above 1.
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

from affelios_import.sandbox import Sandbox, serve_in_thread

SAMPLES = Path("sample_data")
OUT = Path("build/demo")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("journal.sqlite3*"):
        old.unlink()  # each demo starts afresh
    key = secrets.token_hex(16)
    env = {**os.environ, "AFFELIOS_API_KEY": key}
    worst = 0
    with serve_in_thread(Sandbox(api_key=key)) as url:
        for kind in ("customers", "transactions"):
            # The demo's journal is new: its first import of transactions says so.
            first = ["--new-journal"] if kind == "transactions" else []
            args = [
                str(SAMPLES / f"{kind}.csv"), "--kind", kind, *first, "--brand", "casino-x",
                "--base-url", url, "--journal", str(OUT / "journal.sqlite3"),
                "-o", str(OUT / f"{kind}.results.csv"),
                "--errors-out", str(OUT / f"{kind}.errors.csv"),
            ]  # fmt: skip
            # The command as it runs (the key is in the environment, never in argv).
            print(f"\n$ affelios-import {shlex.join(args)}", flush=True)
            done = subprocess.run(
                [sys.executable, "-m", "affelios_import", *args], env=env, check=False
            )
            print(f"demo: affelios-import exited {done.returncode} (1 = some rows need fixing; "
                  "see the results)", flush=True)  # fmt: skip
            if done.returncode > 1:
                worst = worst or done.returncode
    sys.exit(worst)


if __name__ == "__main__":
    main()
