"""The one error tree of affelios-import.

Bad rows are data (a status and a message in the results), never exceptions. These
exceptions are for what stops a whole run; each carries the exit code the CLI returns.
Third-party errors are converted at the boundary with the cause kept.
"""


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
