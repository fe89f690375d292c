"""One run's settings: the `ImportConfig` and the files the run reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from affelios_import.config import ImportConfig


@dataclass(frozen=True, kw_only=True)
class Settings(ImportConfig):
    input: Path
    out: Path
    errors_out: Path | None = None  # the rows to fix; None: no errors file
    report_html: Path | None = None  # a picture of the run; None: none
    summary_json: Path | None = None  # the summary as JSON; None: none
    log_file: Path | None = None  # written by the caller's logging; checked like the others
    metrics_file: Path | None = None  # written by the CLI after the run; checked likewise

    @classmethod
    def of(cls, config: ImportConfig, **paths: Path | None) -> Settings:
        """`config` with the paths of one run (validated again: it is cheap)."""
        values = {f.name: getattr(config, f.name) for f in fields(ImportConfig)}
        return cls(**values, **paths)  # type: ignore[arg-type]
