"""affelios-import: register customers from CSV exports with the Affelios platform.

The Python API (the CLI is built on it):

    from affelios_import import Importer, ImportConfig

    result = Importer(ImportConfig(api_key=key, brand="casino-x")).run("customers.csv")
    print(result.counts, result.stopped)

Names are loaded on first use, so that `import affelios_import` (and the sandbox, and `--version`)
does not pay for pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from affelios_import.version import __version__

__all__ = [
    "AffeliosImportError",
    "ConfigError",
    "ImportConfig",
    "Importer",
    "InputError",
    "Outcome",
    "OutputFailed",
    "Progress",
    "RunResult",
    "RunStopped",
    "SetupError",
    "Status",
    "StopReason",
    "__version__",
]

_HOMES = {
    "AffeliosImportError": "affelios_import.errors",
    "ConfigError": "affelios_import.errors",
    "InputError": "affelios_import.errors",
    "OutputFailed": "affelios_import.errors",
    "RunStopped": "affelios_import.errors",
    "SetupError": "affelios_import.errors",
    "ImportConfig": "affelios_import.config",
    "Importer": "affelios_import.importer",
    "RunResult": "affelios_import.importer",
    "Progress": "affelios_import.pipeline",
    "Outcome": "affelios_import.outcome",
    "Status": "affelios_import.outcome",
    "StopReason": "affelios_import.outcome",
}

if TYPE_CHECKING:
    from affelios_import.config import ImportConfig
    from affelios_import.errors import (
        AffeliosImportError,
        ConfigError,
        InputError,
        OutputFailed,
        RunStopped,
        SetupError,
    )
    from affelios_import.importer import Importer, RunResult
    from affelios_import.outcome import Outcome, Status, StopReason
    from affelios_import.pipeline import Progress


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'affelios_import' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
