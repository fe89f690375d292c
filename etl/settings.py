"""The settings of one run: what the CLI parsed, in one object the core can take."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BASE_URL = "https://platform.affelios.com"
CUSTOMER_PATH = "/api/v1/customer"


@dataclass(frozen=True, kw_only=True)
class Settings:
    input: Path
    out: Path
    errors_out: Path | None = None  # the rows to fix; None: no errors file
    report_html: Path | None = None  # a picture of the run; None: none
    summary_json: Path | None = None  # the summary as JSON; None: none
    log_file: Path | None = None  # written by the caller's logging; checked like the others
    journal: Path | str  # a path, or ":memory:" for a journal that lives for this run only
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)  # never printed, never logged
    brand: str | None = None
    concurrency: int = 16
    rate: float | None = None  # requests per second across all workers
    retries: int = 5
    timeout: float = 30.0
    dry_run: bool = False
    chunk_size: int | None = None  # None: 10,000 rows (25,000 in a dry run; see etl.read)
    limit: int | None = None  # only the first N data rows
    encoding: str | None = None  # None: detected
    delimiter: str | None = None  # None: sniffed
    mapping: dict[str, str] = field(default_factory=dict)  # input column -> contract field
    backoff_base: float = 0.5  # seconds; full jitter over base * 2**attempt
    backoff_max: float = 30.0
    down_after: int = 30  # failed attempts in a row (5xx, connection) that mean "API down"
    grace_seconds: float = 10.0  # after Ctrl-C, how long requests in flight may finish
