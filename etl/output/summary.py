"""The end-of-run summary: counts per status, the commonest errors, the exit code."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from affelios_import.codes import TO_FIX_CODES, labels
from affelios_import.outcome import SENT, Status, StopReason, exit_code, tally

# The rows whose amounts are summed: the transactions the API took.
TAKEN_AMOUNTS = (Status.ACCEPTED, Status.CREATED)
# Sums are exact: amounts have at most 18 + 18 digits (schemas.transaction), and 80 digits
# hold their sum over any number of rows (the default context keeps 28: 1 + 1e-28 lost
# its tail).
EXACT = Context(prec=80)
AMOUNT_LABELS = {
    "depositAmount": "deposits",
    "grossRevenue": "gross revenue",
    "wageredAmount": "wagered",
    "revShareCommission": "revenue share commission",
    "cpaCommission": "CPA commission",
    "fixedCommission": "fixed commission",
}

# Of to_dict() (--summary-json): bumped when a field is renamed, removed or changes meaning.
SCHEMA_VERSION = 2  # 2: rows_to_fix no longer counts unconfirmed rows (rows_to_check does)
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
    stopped: StopReason | None = None
    seconds: float | None = None  # None: not known (a summary of a results file)
    retries: int = 0
    rows_missing: int = 0  # data rows with no results line (never read, or never written)
    rate_limit: str = ""  # the API's rate limit, as stated in its answers or learned, in words
    throttled: int = 0  # answers that were 429s
    paused_seconds: float = 0.0  # seconds the whole run waited, as the API asked
    failed_to_fix: int = 0  # failed rows the API refused as they are (see codes.TO_FIX_CODES)
    # Who and when: a run's own (None for a summary made from a results file).
    run_id: str | None = None
    input: str | None = None
    kind: str | None = None  # customers, transactions
    brand: str | None = None  # --brand
    api: str | None = None  # the API's base URL, as shown (no credentials)
    journal: str | None = None  # the journal, as shown (no password)
    changes_accepted: bool = False  # --accept-changes: the changed rows' values were taken
    acknowledged_file: str = ""  # --acknowledged
    # Field -> how the input names it (`column 'Registered' (registrationDate)`), for the
    # labels of errors about a field the input's column calls otherwise.
    columns: dict[str, str] = field(default_factory=dict)
    # Rows of that file no input row matched (None: the run did not read every row).
    acknowledged_unmatched: int | None = None
    sheet: str | None = None  # the sheet read, when the input is a workbook
    started_at: str | None = None  # UTC, ISO-8601
    finished_at: str | None = None
    # Transactions: each amount summed exactly over the rows the API took.
    amounts: dict[str, Decimal] = field(default_factory=dict)
    amounts_rows: int = 0
    # Rows sent (or valid) naming a record of another kind the journal does not hold (a
    # transaction's customer): a note each; "unknown_customers" in the JSON.
    unknown_references: int = 0
    # Rows not sent because another URL of the journal took them (perhaps this API).
    sent_elsewhere: int = 0
    elsewhere_advice: str = ""

    def add_chunk(
        self,
        rows: npt.NDArray[np.int64],
        status: npt.NDArray[np.object_],
        error_kind: npt.NDArray[np.object_],
        http_status: npt.NDArray[np.object_],
    ) -> None:
        """Count a chunk's outcomes; `rows` are their 1-based data row numbers. Errors are
        grouped by their codes (see affelios_import.codes), never by the words of their messages."""
        self.rows += len(status)
        self.counts.update(tally(status))
        for code in error_kind[status == Status.FAILED.value].tolist():
            self.failed_to_fix += code in TO_FIX_CODES
        for i in np.flatnonzero(error_kind != "").tolist():
            if status[i] in (Status.INVALID, Status.FAILED, Status.UNCONFIRMED):
                self._add_errors(int(rows[i]), labels(error_kind[i], http_status[i]))

    def add_amounts(self, status: npt.NDArray[np.object_], amounts: dict[str, Any]) -> None:
        """Add, exactly, each amount column's values over the rows the API took (accepted
        or created); `amounts`: field -> its validated text, one per row."""
        taken = np.flatnonzero(np.isin(status, [s.value for s in TAKEN_AMOUNTS]))
        if not len(taken):
            return
        self.amounts_rows += len(taken)
        for name, values in amounts.items():
            total = self.amounts.get(name, Decimal(0))
            for text in values[taken].tolist():
                if text and text.strip():
                    total = EXACT.add(total, Decimal(text))
            self.amounts[name] = total

    def _add_errors(self, row: int, labels: tuple[str, ...]) -> None:
        for label in labels:
            self.errors[label] += 1
            first = self.error_rows.setdefault(label, [])
            if len(first) < FIRST_ROWS:
                first.append(row)

    @property
    def to_fix(self) -> int:
        """Rows a person must change: invalid ones, those the API refused as they are, and
        transactions whose row now holds other values than were sent (`to_do` fix)."""
        counts = self.counts
        return counts[Status.INVALID.value] + self.failed_to_fix + counts[Status.CORRECTED.value]

    @property
    def to_check(self) -> int:
        """Rows in doubt, to look up in Affelios: unconfirmed transactions (`to_do` check)."""
        return self.counts[Status.UNCONFIRMED.value]

    @property
    def to_retry(self) -> int:
        """Rows that need only another try (timed out, interrupted, API down, not sent):
        the next run sends them again."""
        failed_or_not_sent = self.counts[Status.FAILED.value] + self.counts[Status.NOT_SENT.value]
        return failed_or_not_sent - self.failed_to_fix

    @property
    def exit_code(self) -> int:
        return exit_code(stopped=bool(self.stop_reason), counts=self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "input": self.input,
            "kind": self.kind,
            "brand": self.brand,
            "api": self.api,
            "sheet": self.sheet,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "rows": self.rows,
            "counts": {s.value: self.counts[s.value] for s in Status},
            "top_errors": [
                {"error": label, "count": n, "first_rows": self.error_rows[label]}
                for label, n in self.errors.most_common(TOP_ERRORS)
            ],
            "dry_run": self.dry_run,
            "stopped": self.stop_reason or None,
            "stop_kind": None if self.stopped is None else self.stopped.value,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "retries": self.retries,
            "rate_limit": self.rate_limit or None,
            "throttled": self.throttled,
            "paused_seconds": round(self.paused_seconds, 3),
            "amounts": {name: str(total) for name, total in self.amounts.items()} or None,
            "unknown_customers": self.unknown_references,
            "sent_elsewhere": self.sent_elsewhere,
            "results": self.results_path,
            "errors_file": self.errors_path or None,
            "rows_to_fix": self.to_fix,
            "rows_to_retry": self.to_retry,
            "rows_to_check": self.to_check,
            "rows_missing": self.rows_missing,
            "acknowledged_unmatched": self.acknowledged_unmatched,
            "exit_code": self.exit_code,
        }

    def shown(self, label: str) -> str:
        """An error's label as a person reads it: the field it starts with named as the
        input's column, where that is called otherwise."""
        field_name, colon, rest = label.partition(": ")
        named = self.columns.get(field_name)
        return f"{named}: {rest}" if colon and named else label

    def _acknowledged_lines(self) -> list[str]:
        """What the acknowledged file did: the rows it kept back, and its lines that
        matched no row (gone from the input, or no longer as they were)."""
        lines = []
        if n := self.counts[Status.ACKNOWLEDGED.value]:
            lines.append(
                f"acknowledged: {_rows(n)}, not sent as {self.acknowledged_file} says "
                "(status acknowledged in the results, with the reason)"
            )
        if unmatched := self.acknowledged_unmatched:
            are = "are" if unmatched > 1 else "is"
            lines.append(
                f"{self.acknowledged_file}: {unmatched:,} of its rows {are} not in "
                f"{self.input} as acknowledged (gone, or changed: a changed row is checked "
                "and sent)"
            )
        return lines

    def _release_command(self) -> str:
        """The command that releases this run's rows to check, as it pastes (the errors
        file names them; only rows in doubt are released): "" when it cannot be one."""
        if not self.errors_path.lower().endswith(".csv") or self.journal is None:
            return ""
        words = ["affelios-journal", "forget", "--journal", self.journal, "--keys"]
        words += [self.errors_path, "--kind", self.kind or "transactions", "--yes"]
        return shlex.join(words)

    def _error_lines(self) -> list[str]:
        """The commonest errors with their first rows, and how many more there are."""
        lines = []
        for label, n in self.errors.most_common(TOP_ERRORS):
            rows = ", ".join(map(str, self.error_rows[label]))
            more = ", …" if n > len(self.error_rows[label]) else ""
            lines.append(f"  {n} x {self.shown(label)} (rows {rows}{more})")
        if (kinds := len(self.errors) - TOP_ERRORS) > 0:
            rest = sum(n for _, n in self.errors.most_common()[TOP_ERRORS:])
            lines.append(
                f"  and {kinds} more kind{'s' if kinds > 1 else ''} of error ({rest} "
                f"time{'s' if rest > 1 else ''}): see error_kind in the results"
            )
        return lines

    def _first_line(self) -> str:
        """`2,000 rows: 1,990 created, 10 invalid in 4.2s, 474 rows/s sent, 3 retries`:
        the rate of the rows sent (skipped, invalid and never sent rows are no speed), or
        in a dry run of the rows checked."""
        counts = ", ".join(f"{n:,} {s}" for s in Status if (n := self.counts[s.value]))
        timing = ""
        if self.seconds is not None:
            timing = f" in {self.seconds:.1f}s"
            sent = sum(self.counts[s.value] for s in SENT)
            if self.seconds > 0 and self.dry_run and self.rows:
                timing += f", {self.rows / self.seconds:,.0f} rows/s checked"
            elif self.seconds > 0 and sent:
                timing += f", {sent / self.seconds:,.0f} rows/s sent"
        retries = self.retries
        return (
            f"{_rows(self.rows)}{' (dry run, nothing sent)' if self.dry_run else ''}: "
            f"{counts or ('none written' if self.rows_missing else 'nothing to import')}"
            + (f", {self.rows_missing:,} without a results line" if self.rows_missing else "")
            + timing
            + (f", {retries:,} retr{'ies' if retries > 1 else 'y'}" if retries else "")
        )

    def to_text(self) -> str:
        lines = []
        if self.started_at is not None:  # a run's own summary, not a results file's
            lines.append(f"{self.started_at[:19].replace('T', ' ')} UTC, run {self.run_id}")
        lines.append(self._first_line())
        if self.amounts:
            taken = ", ".join(
                f"{AMOUNT_LABELS.get(name, name)} {total:,}" for name, total in self.amounts.items()
            )
            took = _counted(self.amounts_rows, "transaction")
            lines.append(f"sums over the {took} the API took: {taken}")
        if self.sent_elsewhere:
            lines.append(f"{_rows(self.sent_elsewhere)} {self.elsewhere_advice}")
        if n := self.unknown_references:
            lines.append(
                f"{n:,} transaction{'s' if n > 1 else ''} name{'' if n > 1 else 's'} a customer "
                "this journal does not know (registered another way?): see the notes"
            )
        if self.sheet is not None:
            lines.append(f"read: sheet {self.sheet!r} of {self.input}, every cell as text")
        if corrected := self.counts[Status.CORRECTED.value]:
            lines.append(
                f"{corrected} transaction{'s' if corrected > 1 else ''} sent before now "
                f"hold{'' if corrected > 1 else 's'} other values: not sent again; see the "
                "results, and correct them in Affelios"
            )
        if changed := self.counts[Status.CHANGED.value]:
            what = (
                "accepted (--accept-changes): the journal now holds today's values"
                if self.changes_accepted
                else "see the results"
            )
            lines.append(
                f"{changed:,} customer{'s' if changed > 1 else ''} changed since "
                f"{'they were' if changed > 1 else 'it was'} imported: {what}"
            )
        lines += self._acknowledged_lines()
        lines += self._error_lines()
        if self.rate_limit:
            lines.append(f"paced by the API's limit: {self.rate_limit}")
        elif self.throttled:
            lines.append(
                f"the API answered 429 (too many requests) {_counted(self.throttled, 'time')}, "
                "each tried again; no steady limit learned from them"
            )
        lines.append(f"results: {self.results_path}")
        if self.errors_path:
            lines.append(f"rows to fix: {self.to_fix:,}, in {self.errors_path} (to_do: fix)")
        if self.to_check:
            where = (
                f"in {self.errors_path} (to_do: check)" if self.errors_path else "see the results"
            )
            lines.append(f"rows to check in Affelios: {self.to_check:,}, {where}")
            if release := self._release_command():
                lines.append(f"  those that did not arrive, once checked: {release}")
        if self.to_retry:
            lines.append(f"rows to retry: {self.to_retry:,} (the next run sends them again)")
        if self.stop_reason:
            lines.append(f"stopped: {self.stop_reason}")
        return "\n".join(lines)


def _rows(n: int) -> str:
    """`1 row`, `2,000 rows`."""
    return _counted(n, "row")


def _counted(n: int, noun: str) -> str:
    """`1 transaction`, `2,000 transactions`."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
