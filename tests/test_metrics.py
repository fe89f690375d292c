"""`--metrics-file`: series that never collide between jobs, and what a run met."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from affelios_import.output import metrics
from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
from tests.conftest import API_KEY, good_rows, run_cli, write_csv


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_two_jobs_in_one_textfile_folder_write_no_series_twice(tmp_path: Path) -> None:
    """Customers and transactions wrote the same 19 series with the same labels: one
    textfile folder held duplicates, which node_exporter refuses."""
    for kind in ("customers", "transactions"):
        metrics.write(
            tmp_path / f"affelios_{kind}.prom",
            metrics.LastRun(started=1.0, finished=2.0, exit_code=0, kind=kind, throttled=3),
        )
    first = samples(tmp_path / "affelios_customers.prom")
    second = samples(tmp_path / "affelios_transactions.prom")
    assert not set(first) & set(second)
    for (name, labels), _ in [*first.items(), *second.items()]:
        assert {"kind", "job"} <= dict(labels).keys(), name
    key = (
        "affelios_import_last_run_throttled",
        (("job", "affelios_customers"), ("kind", "customers")),
    )
    assert first[key] == 3


def test_the_metrics_count_429s_and_the_time_paused(tmp_path: Path) -> None:
    server = Sandbox(api_key=API_KEY, faults=Faults(throttle_rate=0.2, seed=3))
    source = write_csv(tmp_path / "c.csv", good_rows(300))
    prom = tmp_path / "textfile" / "nightly.prom"
    with serve_in_thread(server) as url:
        done = run_cli(
            source, "--base-url", url, "--journal", tmp_path / "j.db", "--metrics-file", prom
        )
    assert done.returncode == 0, done.stderr
    found = {name: value for (name, _), value in samples(prom).items()}
    assert found["affelios_import_last_run_throttled"] == server.stats["429"] > 0
    assert found["affelios_import_last_run_paused_seconds"] >= 1.0  # a Retry-After: 1, waited out
    assert found["affelios_import_last_run_rows_to_check"] == 0
