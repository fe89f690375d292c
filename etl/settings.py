"""One run's settings: the `ImportConfig` and the files the run reads and writes."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
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
        """`config` with the paths of one run. The config was checked when it was made,
        and is not checked again (every rule is checked once); the paths are checked by
        the stages that write them (`output.check`)."""
        unknown = set(paths) - {f.name for f in fields(cls)} | set(paths) & {
            f.name for f in fields(ImportConfig)
        }
        if unknown:
            raise TypeError(f"Settings.of: not a path of a run: {', '.join(sorted(unknown))}")
        settings = object.__new__(cls)
        for f in fields(cls):
            if f.name in paths:
                value = paths[f.name]
            elif hasattr(config, f.name):
                value = getattr(config, f.name)
            elif f.default is not MISSING:
                value = f.default
            else:
                raise TypeError(f"Settings.of: the run's {f.name} is missing")
            object.__setattr__(settings, f.name, value)
        return settings
