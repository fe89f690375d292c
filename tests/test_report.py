"""--report-html: one self-contained page, checked in a real headless browser."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affelios_import.output import report
from affelios_import.output.report import MAX_ROWS_SHOWN, Trace, write
from affelios_import.output.summary import Summary
from affelios_import.plan import PlannedChunk
from tests.conftest import API_KEY, RunningSandbox, good_rows, read_results, run_cli, write_csv

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def make_report(sandbox: RunningSandbox, tmp_path: Path) -> Path:
    rows = good_rows(40)
    rows[4][2] = "28/06/2025"
    rows[9][2] = "<script>alert('x')</script>"  # invalid: its value shows in the report
    source = write_csv(tmp_path / "c.csv", rows)
    report = tmp_path / "reports" / "run.html"
    done = run_cli(
        source, "--base-url", sandbox.url, "--journal", tmp_path / "j.db",
        "--report-html", report,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return report


def test_the_report_is_one_self_contained_page(sandbox: RunningSandbox, tmp_path: Path) -> None:
    page = make_report(sandbox, tmp_path).read_text(encoding="utf-8")
    assert "<script" not in page  # no scripts at all; the input's text is escaped:
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "http://" not in page.replace(sandbox.url, "") and "https://" not in page
    assert "<svg" in page  # rows over time
    assert "registrationDate: expected an ISO-8601 Zulu timestamp" in page
    assert ">38<" in page  # created
    assert "Rows to fix" in page


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)"
)
def test_the_report_renders_in_headless_chromium(sandbox: RunningSandbox, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    report = make_report(sandbox, tmp_path)
    with tempfile.TemporaryDirectory() as profile:
        flags = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run(
            [*flags, "--dump-dom", report.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        shot = tmp_path / "report.png"
        subprocess.run(
            [*flags, "--window-size=1000,1400", f"--screenshot={shot}", report.as_uri()],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
    assert dom.returncode == 0, dom.stderr
    rendered = dom.stdout
    assert "Rows per status" in rendered and "Rows to fix" in rendered
    assert "<script" not in rendered  # the input's markup stayed text in the browser too
    assert "&lt;script&gt;" in rendered
    assert rendered.count("<tr>") >= 4  # error kinds and rows to fix
    assert "polyline" in rendered
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a page was drawn, not a blank one


def test_rows_past_those_listed_are_counted_from_the_summary(tmp_path: Path) -> None:
    rows = np.arange(1, MAX_ROWS_SHOWN + 31, dtype=np.int64)
    status = np.full(len(rows), "invalid", dtype=object)
    error = np.full(len(rows), "externalId empty: expected a value", dtype=object)
    kind = np.full(len(rows), "required_missing:externalId", dtype=object)
    summary, trace = Summary(), Trace()
    summary.add_chunk(rows, status, kind, np.full(len(rows), "", dtype=object))
    raw = pd.DataFrame({"externalId": np.full(len(rows), "", dtype=object)})
    chunk = PlannedChunk.of(raw, raw)
    chunk.status[:], chunk.error[:], chunk.error_kind[:] = status, error, kind
    trace.note_chunk(chunk, raw["externalId"])
    write(tmp_path / "r.html", summary, trace, title="c.csv")
    assert len(trace.to_fix) == MAX_ROWS_SHOWN
    assert "… and 30 more in the errors file." in (tmp_path / "r.html").read_text("utf-8")


def test_a_bug_in_the_report_stops_the_run_with_a_message_not_a_crash(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from affelios_import import ImportConfig, Importer, StopReason

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("changed")

    monkeypatch.setattr(report, "write", broken)
    source = write_csv(tmp_path / "c.csv", good_rows(3))
    config = ImportConfig(
        base_url=sandbox.url, api_key=API_KEY, brand="casino-x", journal=tmp_path / "j.db"
    )
    result = Importer(config).run(source, report_html=tmp_path / "r.html")
    assert result.counts["created"] == 3 and len(read_results(result.results)) == 3
    assert result.stopped is StopReason.INTERNAL_ERROR
    assert result.stop_detail.startswith(f"--report-html {tmp_path / 'r.html'}: not written: ")
    assert "KeyError" in result.stop_detail


def test_rows_to_fix_are_apart_from_rows_to_retry_and_only_statuses_that_occurred_are_drawn(
    tmp_path: Path,
) -> None:
    """The rows-to-fix table mixed 429/503 retries with real fixes; ten status bars were
    drawn, mostly zeros."""
    rows = np.arange(1, 4, dtype=np.int64)
    status = np.array(["invalid", "failed", "created"], dtype=object)
    error = np.array(["externalId empty", "gave up after HTTP 503", ""], dtype=object)
    kind = np.array(["required_missing:externalId", "gave_up_http", ""], dtype=object)
    summary, trace = Summary(), Trace()
    summary.add_chunk(rows, status, kind, np.full(3, "", dtype=object))
    raw = pd.DataFrame({"externalId": ["", "C2", "C3"]}, dtype=object)
    chunk = PlannedChunk.of(raw, raw)
    chunk.status[:], chunk.error[:], chunk.error_kind[:] = status, error, kind
    trace.note_chunk(chunk, raw["externalId"])
    assert [r for r, _, _ in trace.to_fix] == [1] and [r for r, _, _ in trace.to_look] == [2]
    write(tmp_path / "r.html", summary, trace, title="c.csv")
    page = (tmp_path / "r.html").read_text("utf-8")
    drawn = re.findall(r'<span class="label">(\w+)</span>', page)
    assert drawn == ["created", "invalid", "failed"]
    assert "Rows to retry or check" in page and "gave up after HTTP 503" in page


def test_the_report_says_when_what_where_and_what_its_exit_code_means(tmp_path: Path) -> None:
    """It had no run date, brand, kind, API or input; `exit code 1` was unexplained; the
    timeline started halfway across."""
    import json

    import httpx

    from affelios_import.settings import Settings
    from tests.conftest import run

    rows = good_rows(3)
    rows[0][2] = "28/06/2025"
    source = write_csv(tmp_path / "export.csv", rows)
    settings = Settings(
        input=source, out=tmp_path / "r.csv", report_html=tmp_path / "r.html",
        summary_json=tmp_path / "s.json", journal=tmp_path / "j.db",
        base_url="https://api.test", api_key="k", brand="casino-x",
    )  # fmt: skip

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": "x" + json.loads(request.content)["externalId"]})

    assert run(settings, transport=httpx.MockTransport(api)).exit_code == 1
    page = (tmp_path / "r.html").read_text("utf-8")
    meta = re.search(r'<p class="meta">(customers from .*?)</p>', page)
    assert meta is not None
    assert meta[1].startswith(f"customers from {source} (brand casino-x) to https://api.test, ")
    assert re.search(r" UTC \(run \d{8}T\d{6}Z-[0-9a-f]{6}\)$", meta[1])
    assert "<strong>Exit code 1:</strong> the run went through every row; some need a person" in (
        page
    )
    data = json.loads((tmp_path / "s.json").read_text())
    assert (data["kind"], data["brand"], data["api"]) == (
        "customers",
        "casino-x",
        "https://api.test",
    )
    late = Trace(timeline=[(0.7, 10, 0), (1.4, 20, 1)])  # first sampled halfway through
    drawn = re.search(r'stroke-width="2" points="([^"]+)"', report._timeline(late))
    assert drawn is not None and drawn[1].startswith("40.0,180.0 ")  # from the start, at 0


def test_the_changed_customers_are_listed_with_their_ids_and_what_changed(tmp_path: Path) -> None:
    """The changed-customers table had no externalId or Affelios id: a manager could not
    find the customers to change in Affelios."""
    import json

    import httpx

    from affelios_import.settings import Settings
    from tests.conftest import run

    source = write_csv(tmp_path / "export.csv", good_rows(3))
    settings = Settings(
        input=source, out=tmp_path / "r.csv", report_html=tmp_path / "r.html",
        journal=tmp_path / "j.db", base_url="https://api.test", api_key="k",
    )  # fmt: skip

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": "aff-" + json.loads(request.content)["externalId"]})

    assert run(settings, transport=httpx.MockTransport(api)).exit_code == 0
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "changed since they were imported" not in page  # none: no empty table
    rows = good_rows(3)
    rows[1][4] = "renamed"
    write_csv(source, rows)
    assert run(settings, transport=httpx.MockTransport(api)).exit_code == 0
    page = (tmp_path / "r.html").read_text("utf-8")
    table = page.split("Customers changed since they were imported", 1)[1]
    assert "<th>externalId</th><th>Affelios id</th>" in table
    listed = re.search(r"<td class='n'>2</td><td>C00002</td><td>aff-C00002</td><td>([^<]*)", table)
    assert listed is not None and "username: 'user2' → 'renamed'" in html.unescape(listed[1])


def test_the_legend_is_off_the_lines_and_a_night_with_changes_says_so(tmp_path: Path) -> None:
    """The timeline's labels sat where the rows' line ends (top right); `acknowledged`
    was cut to `acknowledge`; a night with changed customers said `nothing to do`."""
    drawn = report._timeline(Trace(timeline=[(1.0, 10, 0), (2.0, 20, 1)]))
    legend = re.findall(r'<text x="[\d.]+" y="([\d.]+)"[^>]*fill="#[0-9a-f]+">', drawn)
    assert [float(y) for y in legend] == [32.0, 32.0]  # above the plot, which starts at 40
    summary = Summary(rows=3)
    summary.counts.update({"skipped": 1, "changed": 2})
    assert summary.exit_code == 0
    ended = report._ended(summary)
    assert "every row is done; 2 customers changed since imported, to change in" in ended
    assert ".label{width:8.5em}" in report.CSS  # `acknowledged` and `unconfirmed` fit
