"""The one error tree of affelios-import.

Bad rows are data (a status and a message in the results), never exceptions. These
exceptions are for what stops a whole run; each carries the exit code the CLI returns.
Third-party errors are converted at the boundary with the cause kept, their reason in a
few words (`reason`).
"""

import errno

# SQLite's SQLITE_FULL, and PostgreSQL's disk_full (the server's disk)
_SQLITE_FULL, _PG_DISK_FULL = 13, "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether an OS, SQLite or PostgreSQL error is a full disk (or an exceeded quota)."""
    return (
        getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        or getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL
        or getattr(exc, "sqlstate", None) == _PG_DISK_FULL
    )


def reason(exc: BaseException) -> str:
    """Why an OS, SQLite or PostgreSQL operation failed, in a few words: a full disk
    said plainly (`the disk is full`), else the system's own words."""
    if is_disk_full(exc):
        return "the disk is full"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class AffeliosImportError(Exception):
    """Base of every error this tool raises on purpose."""

    exit_code = 1


class SetupError(AffeliosImportError):
    """Something checked before the first request is wrong: input, columns, output, key.

    Nothing has been sent when this is raised.
    """

    exit_code = 2


class InputError(SetupError):
    """The input file cannot be read as a customer CSV."""


class RunStopped(AffeliosImportError):
    """The run stopped before every row was sent (auth refused, interrupted)."""

    exit_code = 3


class OutputFailed(RunStopped):
    """A file the run writes (results, errors file, journal, summary, report) failed
    part-way: the disk is full, the file system went read-only. The run stops."""


class ConfigError(SetupError):
    """A setting of `ImportConfig` is out of range or of the wrong type: `setting` names
    it, `problem` says what is wrong (the message is both)."""

    def __init__(self, message: str, *, setting: str = "", problem: str = "") -> None:
        super().__init__(message)
        self.setting = setting
        self.problem = problem or message
