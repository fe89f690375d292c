"""A throwaway PostgreSQL server for the tests: a cluster made in a temporary folder with
the Debian `postgresql` package's programs, listening on 127.0.0.1 only, stopped (and its
folder removed) when the tests end. As root, its programs run as the `postgres` user.

Without PostgreSQL's programs the tests that need it are skipped with a reason, unless
AFFELIOS_REQUIRE_POSTGRES is set (as `.ci/run` sets it): then they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import psycopg

PASSWORD = "pg-secret-7b1e44"  # the superuser's: the tests check it is never shown
_names = count(1)


def programs() -> Path | None:
    """The folder of initdb, pg_ctl and postgres (the newest version installed)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@dataclass
class Cluster:
    port: int
    folder: Path

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL (with the password in it)."""
        name = f"journal_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster(*, fsync: bool = False) -> Iterator[Cluster]:
    """Make, start, and at the end stop and remove a PostgreSQL cluster (the tests' without
    fsync: what they check does not depend on a disk's flush; the benchmarks' with it)."""
    bin_dir = programs()
    assert bin_dir is not None
    folder = Path(tempfile.mkdtemp(prefix="affelios-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster is the postgres user's
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    (folder / "pw").write_text(PASSWORD)
    if as_postgres:
        os.chown(folder / "pw", user.pw_uid, user.pw_gid)

    def run(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=120)

    try:
        run(
            str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
            "--pwfile", str(folder / "pw"), "--auth-host=scram-sha-256", "--auth-local=trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        flush = "on" if fsync else "off"
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync={flush}"
            " -c max_connections=200"
        )
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
            "-w", "-t", "60", "start")  # fmt: skip
        try:
            yield Cluster(port, folder)
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
