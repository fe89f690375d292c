"""Before the first request: no output may be the input, the journal or another output
(by any name: a symbolic or hard link is the same file), and each must be writable.

A run that found out only at its end that its summary could not be written has sent
every row already; one that wrote its errors file over its journal has lost the journal.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection
from pathlib import Path

from affelios_import.errors import SetupError, reason
from affelios_import.journal.store import own_files
from affelios_import.settings import Settings
from affelios_import.urls import is_database


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: by device and inode when both exist, else by
    their resolved paths (symbolic links followed)."""
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _outputs(settings: Settings) -> list[tuple[str, Path]]:
    named = [
        ("--out", settings.out),
        ("--errors-out", settings.errors_out),
        ("--summary-json", settings.summary_json),
        ("--report-html", settings.report_html),
        ("--log-file", settings.log_file),
        ("--metrics-file", settings.metrics_file),
    ]
    return [(option, path) for option, path in named if path is not None]


def _kept(settings: Settings) -> list[tuple[str, Path]]:
    """The files no output may be."""
    kept: list[tuple[str, Path]] = []
    if str(settings.input) != "-":
        kept.append(("the input file", settings.input))
    if settings.acknowledged is not None:
        kept.append(("the acknowledged file", Path(settings.acknowledged)))
    if str(settings.journal) != ":memory:" and not is_database(settings.journal):
        journal = Path(settings.journal)
        kept.append(("the journal", journal))
        kept.extend(("the journal's own file", own) for own in own_files(journal))
    return kept


def check(settings: Settings, *, only: Collection[str] | None = None) -> None:
    """Raise SetupError naming the first output that would overwrite another file, or
    that cannot be written. Probing creates no file that was not there.

    `only` (options): check these outputs alone, each against the files kept and the
    outputs before it (the CLI checks its log and metrics files, which come last, before
    it opens the log; the run checks its own outputs once it starts)."""
    outputs = _outputs(settings)
    for i, (option, path) in enumerate(outputs):
        if only is not None and option not in only:
            continue
        for what, other in _kept(settings):
            if same_file(path, other):
                raise SetupError(f"{option} {path}: that is {what}; choose another path")
        for other_option, other in outputs[:i]:
            if same_file(path, other):
                raise SetupError(
                    f"{option} {path}: that is the file of {other_option}; choose another path"
                )
    for option, path in outputs:
        if only is None or option in only:
            _probe(option, path)


def _probe(option: str, path: Path) -> None:
    if path.is_dir():
        raise SetupError(f"{option} {path}: is a directory; give a file name")
    with contextlib.suppress(OSError):  # a path that is not there is a new file
        if not stat.S_ISREG(path.stat().st_mode):
            # Opened to probe, a FIFO nobody reads blocks the run for ever; written, a
            # device node is replaced by a file (as root, /dev/null itself).
            raise SetupError(
                f"{option} {path}: not a regular file (a FIFO, a device or a socket); "
                "outputs are files: give a file's path"
            )
    for folder in path.parents:
        if folder.exists() and not folder.is_dir():
            raise SetupError(f"{option} {path}: {folder} is a file, not a folder")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise SetupError(f"{option} {path}: cannot write here ({reason(exc)})") from exc
    if not existed:
        path.unlink(missing_ok=True)
