"""affelios-import: register customers from CSV exports with the Affelios platform.

The Python API (the CLI is built on it):

    from etl import Importer, ImportConfig

    result = Importer(ImportConfig(api_key=key, brand="casino-x")).run("customers.csv")
    print(result.counts, result.stopped)

Names are loaded on first use, so that `import etl` (and the sandbox, and `--version`)
does not pay for pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
    "AffeliosImportError": "etl.errors",
    "ConfigError": "etl.errors",
    "InputError": "etl.errors",
    "OutputFailed": "etl.errors",
    "RunStopped": "etl.errors",
    "SetupError": "etl.errors",
    "ImportConfig": "etl.config",
    "Importer": "etl.importer",
    "RunResult": "etl.importer",
    "Progress": "etl.pipeline",
    "Outcome": "etl.outcome",
    "Status": "etl.outcome",
    "StopReason": "etl.outcome",
}

if TYPE_CHECKING:
    from etl.config import ImportConfig
    from etl.errors import (
        AffeliosImportError,
        ConfigError,
        InputError,
        OutputFailed,
        RunStopped,
        SetupError,
    )
    from etl.importer import Importer, RunResult
    from etl.outcome import Outcome, Status, StopReason
    from etl.pipeline import Progress


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'etl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
