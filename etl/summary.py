"""The end-of-run summary: counts per status, the commonest errors, the exit code."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from etl.outcome import GOOD, Outcome, Status

SCHEMA_VERSION = (
    1  # of to_dict() (--summary-json): bumped when a field is renamed, removed or changes meaning
)
FIRST_ROWS = 5
TOP_ERRORS = 5


@dataclass
class Summary:
    results_path: str = ""
    errors_path: str = ""
    dry_run: bool = False
    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_rows: dict[str, list[int]] = field(default_factory=dict)
    stop_reason: str = ""
    seconds: float = 0.0
    retries: int = 0

    def add(self, row: int, outcome: Outcome) -> None:
        """Count one row's outcome; `row` is its 1-based data row number."""
        self.rows += 1
        self.counts[outcome.status.value] += 1
        for kind in outcome.kinds:
            self.errors[kind] += 1
            first = self.error_rows.setdefault(kind, [])
            if len(first) < FIRST_ROWS:
                first.append(row)

    @property
    def to_fix(self) -> int:
        return self.counts[Status.INVALID.value] + self.counts[Status.FAILED.value]

    @property
    def exit_code(self) -> int:
        if self.stop_reason:
            return 3
        if any(self.counts[s] for s in Status if s not in GOOD):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "rows": self.rows,
            "counts": {s.value: self.counts[s.value] for s in Status},
            "top_errors": [
                {"error": kind, "count": n, "first_rows": self.error_rows[kind]}
                for kind, n in self.errors.most_common(TOP_ERRORS)
            ],
            "dry_run": self.dry_run,
            "stopped": self.stop_reason or None,
            "seconds": round(self.seconds, 3),
            "retries": self.retries,
            "results": self.results_path,
            "errors_file": self.errors_path or None,
            "rows_to_fix": self.to_fix,
            "exit_code": self.exit_code,
        }

    def to_text(self) -> str:
        counts = ", ".join(f"{n} {s}" for s in Status if (n := self.counts[s.value]))
        rate = f", {self.rows / self.seconds:,.0f} rows/s" if self.seconds > 0 else ""
        lines = [
            f"{self.rows} rows{' (dry run, nothing sent)' if self.dry_run else ''}: "
            f"{counts or 'nothing to import'} in {self.seconds:.1f}s{rate}"
            + (f", {self.retries} retries" if self.retries else "")
        ]
        for kind, n in self.errors.most_common(TOP_ERRORS):
            rows = ", ".join(map(str, self.error_rows[kind]))
            more = ", …" if n > len(self.error_rows[kind]) else ""
            lines.append(f"  {n} x {kind} (rows {rows}{more})")
        lines.append(f"results: {self.results_path}")
        if self.errors_path:
            lines.append(f"rows to fix: {self.to_fix}, in {self.errors_path}")
        if self.stop_reason:
            lines.append(f"stopped: {self.stop_reason}")
        return "\n".join(lines)
