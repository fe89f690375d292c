"""`--metrics-file`: the last run as Prometheus metrics, for node_exporter's textfile
collector, so that a nightly job that stopped running (or failing) is seen.

Written after every run, atomically (prometheus_client writes a temporary file and
renames it over the old one), with the rows by status, the run's start and end times,
its duration, retries and exit code, and the time of the last run that exited 0 (kept
from the file's previous version when this one did not).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from affelios_import.outcome import Status

PREFIX = "affelios_import"
SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"
COMPLETED = f"{PREFIX}_last_completed_timestamp_seconds"


@dataclass(frozen=True, kw_only=True)
class LastRun:
    started: float  # Unix time
    finished: float
    exit_code: int
    kind: str = "customers"
    counts: Mapping[str, int] = field(default_factory=dict)  # status -> rows; {}: none read
    retries: int = 0
    rows_to_fix: int = 0
    rows_to_retry: int = 0
    rows_to_check: int = 0
    throttled: int = 0  # answers that were 429s
    paused_seconds: float = 0.0


def write(path: Path, run: LastRun) -> None:
    """Write the metrics of `run` to `path` (raises OSError if it cannot). Every series
    is labelled with the run's `kind` and its `job`, the metrics file's name without
    `.prom`: two jobs (customers and transactions, or two brands) write two files into
    one textfile folder, and their series never collide."""
    registry = CollectorRegistry()
    labels = {"kind": run.kind, "job": path.name.removesuffix(".prom")}
    rows = Gauge(
        f"{PREFIX}_rows",
        "Rows of the last run, by status.",
        ["status", *labels],
        registry=registry,
    )
    for status in Status:
        rows.labels(status=status.value, **labels).set(run.counts.get(status.value, 0))
    previous = _previous(path)
    success = run.finished if run.exit_code == 0 else previous.get(SUCCESS, 0.0)
    completed = run.finished if run.exit_code in (0, 1) else previous.get(COMPLETED, 0.0)
    for name, text, value in (
        ("last_run_start_timestamp_seconds", "When the last run started.", run.started),
        ("last_run_end_timestamp_seconds", "When the last run ended.", run.finished),
        ("last_run_duration_seconds", "How long the last run took.", run.finished - run.started),
        ("last_run_exit_code", "The last run's exit code (see the README).", run.exit_code),
        ("last_run_retries", "Retries spent by the last run.", run.retries),
        ("last_run_rows_to_fix", "Rows of the last run a person must fix.", run.rows_to_fix),
        ("last_run_rows_to_retry", "Rows the next run sends again.", run.rows_to_retry),
        ("last_run_rows_to_check", "Rows in doubt, to look up in Affelios.", run.rows_to_check),
        ("last_run_throttled", "Answers of the last run that were 429s.", run.throttled),
        (
            "last_run_paused_seconds",
            "Seconds the last run sent nothing, waiting as the API asked.",
            run.paused_seconds,
        ),
        ("last_success_timestamp_seconds", "When a run last exited 0.", success),
        (
            "last_completed_timestamp_seconds",
            "When a run last went through every row (exit 0 or 1).",
            completed,
        ),
    ):
        Gauge(f"{PREFIX}_{name}", text, list(labels), registry=registry).labels(**labels).set(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def _previous(path: Path) -> dict[str, float]:
    """The timestamps the file held, if it holds any (an unreadable file holds none)."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, UnicodeDecodeError):
        text = path.read_text(encoding="utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in (SUCCESS, COMPLETED):
                    found[sample.name] = sample.value
    return found
