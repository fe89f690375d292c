"""Logs: one line per notable event, text or JSON, never the key."""

from __future__ import annotations

import json
import re
from pathlib import Path

from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from tests.conftest import API_KEY, good_rows, run_cli, write_csv


def test_json_log_of_a_throttled_run_has_each_event_and_no_key(tmp_path: Path) -> None:
    # A fifth of the answers 429 at random: far more than a background the pace allows for.
    faults = Faults(throttle_rate=0.2, retry_after="0", seed=5, latency_ms=20)
    server = Sandbox(api_key=API_KEY, faults=faults)
    source = write_csv(tmp_path / "c.csv", good_rows(300))
    log = tmp_path / "logs" / "run.jsonl"
    with serve_in_thread(server) as url:
        done = run_cli(
            source, "--base-url", url, "--journal", tmp_path / "j.db", "--retries", "10",
            "--log-file", log, "--log-format", "json", "-v",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = log.read_text(encoding="utf-8")
    assert API_KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    events = [line["event"] for line in lines]
    assert events[0] == "start" and events[-1] == "end"
    start, end = lines[0], lines[-1]
    assert start["base_url"] == url and start["concurrency"] == 16
    assert end["counts"] == {"created": 300} and end["exit_code"] == 0
    assert end["retries"] == events.count("retry") == server.stats["429"]
    assert "throttle" in events  # the pace was cut
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == server.stats["requests"]
    assert {line["status"] for line in requests} == {201, 429}


def test_text_log_without_verbose_has_only_notable_events(tmp_path: Path) -> None:
    server = Sandbox(api_key=API_KEY)
    source = write_csv(tmp_path / "c.csv", good_rows(20))
    log = tmp_path / "run.log"
    with serve_in_thread(server) as url:
        done = run_cli(source, "--base-url", url, "--journal", tmp_path / "j.db", "--log-file", log)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info start run=\S+ input=", lines[0])
    assert lines[1].split(" run=")[1].split()[0] == lines[0].split(" run=")[1].split()[0]
    assert f"base_url={url}" in lines[0]
    assert ' rows=20 columns="columns: externalId → externalId, ' in lines[0]
    assert " info end run=" in lines[1]
    assert ' rows=20 counts={"created":20} retries=0 seconds=' in lines[1]
    assert lines[1].endswith(" exit_code=0")
