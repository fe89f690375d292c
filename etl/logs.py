"""Logs: one line per notable event, as text or JSON, to a file (or to stderr with -v).

Events: `start` (the settings, never the key), `retry`, `throttle`, `stop`, `end` (the
counts), and with `-v` one `request` line per answer. Every line carries its time (UTC),
the run's id (`run=`) and the event's fields as key=value pairs (text) or as one JSON
object per line (json).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("affelios_import")
LOGGER.addHandler(logging.NullHandler())  # used as a library: silent unless configured


# The id of the run in progress (tasks and threads of the run inherit it).
RUN_ID: ContextVar[str | None] = ContextVar("affelios_import_run_id", default=None)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event; cheap when nobody listens at that level."""
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, name, extra={"fields": {"run": RUN_ID.get(), **fields}})


class _Format(logging.Formatter):
    def __init__(self, format: str) -> None:
        super().__init__()
        self._json = format == "json"

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        when = when.replace("+00:00", "Z")
        fields: dict[str, Any] = getattr(record, "fields", {})
        level = record.levelname.lower()
        if self._json:
            return json.dumps(
                {"time": when, "level": level, "event": record.getMessage(), **fields},
                ensure_ascii=False,
                default=str,
            )
        pairs = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        return f"{when} {level} {record.getMessage()}{' ' if pairs else ''}{pairs}"


def _text(value: Any) -> str:
    if isinstance(value, str):
        plain = value and not any(c in value for c in ' "=\n')
        return value if plain else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def setup(*, path: Path | None, format: str, verbose: bool) -> None:
    """Send events to `path` (notable ones; every request too with `verbose`), or, with
    `verbose` and no file, to stderr."""
    LOGGER.handlers.clear()
    LOGGER.propagate = False
    if path is None and not verbose:
        LOGGER.setLevel(logging.WARNING + 100)  # nobody listens
        return
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format(format))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG if verbose else logging.INFO)
