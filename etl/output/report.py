"""`--report-html`: one self-contained page (no scripts, no network) picturing a run.

Counts per status, errors by code, rows and retries over time (inline SVG), and the
first rows to fix. Everything shown is escaped: cell text from the input never becomes
markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from affelios_import import codes
from affelios_import.outcome import TO_FIX, Status, tally
from affelios_import.output.summary import AMOUNT_LABELS, TOP_ERRORS, Summary

if TYPE_CHECKING:
    import pandas as pd

    from affelios_import.plan import PlannedChunk

MAX_ROWS_SHOWN = 200
# The statuses whose rows a report lists (a few of each).
NOTED = {status.value for status in TO_FIX} | {Status.CHANGED.value, Status.ACKNOWLEDGED.value}
COLOURS = {
    "created": "#2e7d32",
    "accepted": "#388e3c",
    "exists": "#558b2f",
    "skipped": "#78909c",
    "changed": "#f9a825",
    "corrected": "#ad1457",
    "valid": "#1565c0",
    "invalid": "#ef6c00",
    "failed": "#c62828",
    "not_sent": "#6a1b9a",
    "unconfirmed": "#ad1457",
    "claimed": "#90a4ae",
    "acknowledged": "#b0bec5",
}


@dataclass
class Trace:
    """What the report needs beyond the summary, gathered as the run goes."""

    timeline: list[tuple[float, int, int]] = field(default_factory=list)  # (s, rows, retries)
    to_fix: list[tuple[int, str, str]] = field(default_factory=list)  # (row, status, error)
    # Rows that ask no change: failed ones to retry, unconfirmed ones to check.
    to_look: list[tuple[int, str, str]] = field(default_factory=list)
    # Customers changed since imported: (row, externalId, Affelios id, what changed).
    changed: list[tuple[int, str, str, str]] = field(default_factory=list)
    # Rows of the acknowledged file: (row, externalId, the reason and what is wrong).
    acknowledged: list[tuple[int, str, str]] = field(default_factory=list)

    def note_chunk(self, chunk: PlannedChunk, ids: pd.Series | None) -> None:
        """Note a chunk's first rows to fix, to retry or check, changed and acknowledged
        (`ids`: the input's column of externalId, as read, if it has one; only the rows
        listed are read from it)."""

        def id_of(i: int) -> str:
            return "" if ids is None else str(ids.iloc[i])

        rows, status, error = chunk.rows, chunk.status, chunk.error
        if not tally(status).keys() & NOTED:
            return  # nothing in it to note (a dry run's chunk, mostly)
        listed = np.flatnonzero(np.isin(status, [s.value for s in TO_FIX])).tolist()
        for i in listed:
            fix = codes.to_do(status[i], chunk.error_kind[i]) == codes.FIX
            kept = self.to_fix if fix else self.to_look
            if len(kept) < MAX_ROWS_SHOWN:
                kept.append((int(rows[i]), status[i], error[i]))
        for i in np.flatnonzero(status == Status.CHANGED.value).tolist():
            if len(self.changed) < MAX_ROWS_SHOWN:
                self.changed.append((int(rows[i]), id_of(i), chunk.affelios_id[i], error[i]))
        for i in np.flatnonzero(status == Status.ACKNOWLEDGED.value).tolist():
            if len(self.acknowledged) < MAX_ROWS_SHOWN:
                self.acknowledged.append((int(rows[i]), id_of(i), error[i]))


def _bars(summary: Summary) -> str:
    total = max(summary.rows, 1)
    out = []
    for status in Status:
        n = summary.counts[status.value]
        if not n:
            continue  # only the statuses that occurred
        width = 100 * n / total
        out.append(
            f'<div class="bar"><span class="label">{status.value}</span>'
            f'<span class="track"><span class="fill" style="width:{width:.2f}%;'
            f'background:{COLOURS[status.value]}"></span></span><span class="n">{n:,}</span></div>'
        )
    return "\n".join(out)


def _errors(summary: Summary) -> str:
    if not summary.errors:
        return "<p>No errors.</p>"
    top = summary.errors.most_common()
    biggest = top[0][1]
    rows = []
    for label, n in top:
        first = ", ".join(map(str, summary.error_rows[label]))
        rows.append(
            f"<tr><td>{html.escape(summary.shown(label))}</td><td class='n'>{n:,}</td>"
            f"<td class='spark'><span class='mini' style='width:{100 * n / biggest:.1f}%'>"
            "</span></td>"
            f"<td>{html.escape(first)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>error</th><th>rows</th><th></th><th>first rows</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _timeline(trace: Trace) -> str:
    points = [(0.0, 0, 0), *trace.timeline]  # from the run's start
    if len(points) < 3:
        return "<p>The run was too short to draw.</p>"
    width, height, pad = 720.0, 220.0, 40.0
    t_max = max(points[-1][0], 1e-9)
    y_max = max(max(p[1] for p in points), max(p[2] for p in points), 1)

    def xy(t: float, v: int) -> str:
        x = pad + (width - 2 * pad) * t / t_max
        y = height - pad - (height - 2 * pad) * v / y_max
        return f"{x:.1f},{y:.1f}"

    rows = " ".join(xy(t, r) for t, r, _ in points)
    retries = " ".join(xy(t, q) for t, _, q in points)
    return (
        f'<svg viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="rows done and retries over time">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#999"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>'
        f'<polyline fill="none" stroke="#2e7d32" stroke-width="2" points="{rows}"/>'
        f'<polyline fill="none" stroke="#c62828" stroke-width="2" points="{retries}"/>'
        f'<text x="{pad}" y="{pad - 8}" font-size="12">{y_max:,} rows</text>'
        f'<text x="{width - pad}" y="{height - 12}" font-size="12" text-anchor="end">'
        f"{t_max:.1f} s</text>"
        # The legend above the plot, where no line runs (the rows' line ends top right).
        f'<text x="{width - pad - 70}" y="{pad - 8}" font-size="12" text-anchor="end" '
        'fill="#2e7d32">rows done</text>'
        f'<text x="{width - pad}" y="{pad - 8}" font-size="12" text-anchor="end" '
        'fill="#c62828">retries</text></svg>'
    )


def _rows_table(
    shown: Sequence[tuple[int, *tuple[str, ...]]],
    total: int,
    *,
    none: str,
    rest: str,
    heads: tuple[str, ...] = ("status", "error"),
) -> str:
    """A table of rows (`shown`: each its number, then a cell under each of `heads`)."""
    if not shown:
        return f"<p>{none}</p>"
    body = "".join(
        f"<tr><td class='n'>{row}</td>{''.join(f'<td>{html.escape(c)}</td>' for c in cells)}</tr>"
        for row, *cells in shown
    )
    more = ""
    if total > len(shown):
        more = f"<p>… and {total - len(shown):,} more in {rest}.</p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name in ("row", *heads))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
.bar{display:flex;align-items:center;gap:.5em;margin:.2em 0}
.label{width:8.5em}.n{text-align:right;min-width:4em;font-variant-numeric:tabular-nums}
.track{flex:1;background:#eee;height:1em}.fill{display:block;height:1em}
.spark{width:8em}.mini{display:block;height:.8em;background:#ef6c00;min-width:1px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;
padding:.3em .5em;text-align:left;vertical-align:top}svg{width:100%;height:auto}
.meta{color:#555}
"""


def _sheet(summary: Summary) -> str:
    if summary.sheet is None:
        return ""
    sheet = html.escape(repr(summary.sheet))
    return f"Read: sheet {sheet} of the workbook, every cell as text.<br>"


def _amounts(summary: Summary) -> str:
    if not summary.amounts:
        return ""
    sums = ", ".join(
        f"{AMOUNT_LABELS.get(name, name)} {total:,}" for name, total in summary.amounts.items()
    )
    n = summary.amounts_rows
    taken = f"{n:,} transaction{'' if n == 1 else 's'} the API took"
    return f"Sums over the {taken}: {html.escape(sums)}.<br>"


def _outputs(summary: Summary) -> str:
    errors = f"; rows to fix: {html.escape(summary.errors_path)}" if summary.errors_path else ""
    return f"Results: {html.escape(summary.results_path)}{errors}"


# What each exit code means, and what to do, in words a manager reads (the README's table).
ENDED = {
    0: "every row is done: nothing to do",
    1: (
        "the run went through every row; some need a person (rows to fix, in the errors "
        "file) or will be sent again by the next run by themselves (rows to retry)"
    ),
    3: "the run stopped part-way (see why below): the same command started again resumes",
}


def _what(summary: Summary) -> str:
    """When, what, from where, to where: `customers from export.csv (brand casino-x) to
    https://platform.affelios.com, 2026-12-06 02:50:58 to 02:51:03 UTC (run …)`."""
    parts = [f"{summary.kind or 'records'} from {summary.input or 'the input'}"]
    if summary.brand:
        parts.append(f"(brand {summary.brand})")
    if summary.api:
        parts.append(f"to {summary.api}")
    when = ""
    if summary.started_at:
        start = summary.started_at[:19].replace("T", " ")
        end = (summary.finished_at or "")[11:19]
        when = f", {start}{f' to {end}' if end else ''} UTC (run {summary.run_id})"
    return html.escape(" ".join(parts) + when)


def _ended(summary: Summary) -> str:
    code = summary.exit_code
    words = ENDED.get(code, "")
    if code == 0 and (changed := summary.counts[Status.CHANGED.value]):
        words = (
            f"every row is done; {changed:,} customer{'s' if changed > 1 else ''} changed "
            "since imported, to change in Affelios by hand (listed below)"
        )
    if summary.dry_run:
        words = "a dry run: nothing was sent; " + words
    return f"<p><strong>Exit code {code}:</strong> {html.escape(words)}.</p>"


def _changed(summary: Summary, trace: Trace) -> str:
    """The customers changed since they were imported: which, and what changed."""
    n = summary.counts[Status.CHANGED.value]
    if not n:
        return ""
    heads = ("externalId", "Affelios id", "imported, and what changed since")
    table = _rows_table(trace.changed, n, none="", rest="the results", heads=heads)
    accepted = ""
    if summary.changes_accepted:
        accepted = " The journal took today's values (--accept-changes)."
    return (
        f"<h2>Customers changed since they were imported (the first {MAX_ROWS_SHOWN})</h2>\n"
        "<p>Not sent: the API has no update. Change them in Affelios by hand, then run "
        f"once with --accept-changes.{accepted}</p>\n{table}\n"
    )


def _acknowledged(summary: Summary, trace: Trace) -> str:
    """The rows the acknowledged file kept back, apart from the rows to fix."""
    n = summary.counts[Status.ACKNOWLEDGED.value]
    if not n:
        return ""
    heads = ("externalId", "reason (and what is wrong with the row)")
    table = _rows_table(trace.acknowledged, n, none="", rest="the results", heads=heads)
    return (
        f"<h2>Acknowledged rows (the first {MAX_ROWS_SHOWN}): never importable, not sent, "
        f"as {html.escape(summary.acknowledged_file)} says</h2>\n{table}\n"
    )


def write(path: Path, summary: Summary, trace: Trace, *, title: str) -> None:
    """Write the report; the page needs nothing but itself to be viewed."""
    stopped = (
        f"<p><strong>Stopped:</strong> {html.escape(summary.stop_reason)}</p>"
        if summary.stop_reason
        else ""
    )
    seconds = summary.seconds or 0.0
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>affelios-import: {html.escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>affelios-import: {html.escape(title)}</h1>
<p class="meta">{_what(summary)}</p>
{_ended(summary)}
<p class="meta">{summary.rows:,} rows in {seconds:.1f} s, {summary.retries:,} retries,
exit code {summary.exit_code}{" (dry run)" if summary.dry_run else ""}.
{_sheet(summary)}{_amounts(summary)}{_outputs(summary)}</p>
{stopped}
<h2>Rows per status</h2>
{_bars(summary)}
<h2>Errors by code (top {TOP_ERRORS} in the summary; all here)</h2>
{_errors(summary)}
<h2>Rows over time</h2>
{_timeline(trace)}
<h2>Rows to fix (the first {MAX_ROWS_SHOWN})</h2>
{_rows_table(trace.to_fix, summary.to_fix, none="Nothing to fix.", rest="the errors file")}
<h2>Rows to retry or check (the first {MAX_ROWS_SHOWN}): the next run sends those to retry
again by itself; those to check may have reached the API</h2>
{_rows_table(trace.to_look, summary.to_check + summary.to_retry, none="None.", rest="the results")}
{_changed(summary, trace)}{_acknowledged(summary, trace)}</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
