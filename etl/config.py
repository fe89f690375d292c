"""`ImportConfig`: how to import, validated once, on construction. Every rule about a
setting lives here (the CLI's option types only use its limits), so a Python caller gets
the same checks as the command line: a bad value raises `ConfigError` at once, never a
hang or a silent coercion later.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from affelios_import import kinds, urls
from affelios_import.errors import ConfigError, SetupError
from affelios_import.redact import check_api_key

DEFAULT_BASE_URL = "https://platform.affelios.com"
CONCURRENCY_MAX = 512
RETRIES_MAX = 50
NOT_DELIMITERS = '"\r\n\x00'


def default_journal() -> Path:
    """`journal.sqlite3` in the user's data directory (`~/.local/share/affelios-import/`)."""
    return platformdirs.user_data_path("affelios-import") / "journal.sqlite3"


@dataclass(frozen=True, kw_only=True)
class ImportConfig:
    """How to import: the API, its key, the pace, the journal, how to read the input.

    >>> ImportConfig(base_url="https://api.affelios.com", api_key=key, brand="casino-x")
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)  # never printed, never logged
    allow_insecure_http: bool = False  # plain http to a host that is not loopback
    brand: str | None = None  # fills empty externalBrandId; other brands are invalid
    journal: Path | str = field(default_factory=default_journal)  # or ":memory:"
    concurrency: int = 16  # requests in flight at once
    rate: float | None = None  # requests per second across all workers; None: unpaced
    retries: int = 5
    timeout: float = 30.0  # seconds one attempt may take, to the last byte of the answer
    dry_run: bool = False
    kind: str = "customers"  # what the rows are: one of kinds.NAMES
    # The journal takes today's values of customers `changed` since they were imported
    # (once they were changed in Affelios): reported this once more, then skipped.
    accept_changes: bool = False
    # This is the first import of transactions into Affelios from anywhere: a journal that
    # never recorded one for this API (and brand) is not refused (see Kind.needs_history).
    new_journal: bool = False
    # Other base URLs the journal holds records for that are not this API (a staging
    # host, say): a transaction sent there is no reason not to send it here.
    not_the_same_api: tuple[str, ...] = ()
    chunk_size: int | None = None  # None: 10,000 rows (50,000 in a dry run; see input.read)
    limit: int | None = None  # only the first N data rows
    encoding: str | None = None  # None: detected
    delimiter: str | None = None  # None: sniffed
    sheet: str | None = None  # a workbook's sheet to read; None: its first
    bom: bool = False  # CSV outputs start with a UTF-8 byte-order mark (for Excel)
    mapping: Mapping[str, str] = field(default_factory=dict)  # input column -> API field
    # A file of rows that will never be importable, each with a reason: `acknowledged`,
    # not sent, not to fix (see affelios_import.input.acknowledged).
    acknowledged: Path | str | None = None
    backoff_base: float = 0.5  # seconds; full jitter over base * 2**attempt
    backoff_max: float = 30.0
    down_after: int = 30  # failed attempts in a row (5xx, connection) that mean "API down"
    grace_seconds: float = 10.0  # after a first stop, how long requests in flight may finish

    def __post_init__(self) -> None:
        _whole("concurrency", self.concurrency, 1, CONCURRENCY_MAX)
        _whole("retries", self.retries, 0, RETRIES_MAX)
        _whole("down_after", self.down_after, 1, None)
        for name in ("chunk_size", "limit"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), 1, None)
        _seconds("timeout", self.timeout, positive=True)
        for name in ("backoff_base", "backoff_max", "grace_seconds"):
            _seconds(name, getattr(self, name), positive=False)
        if self.rate is not None:
            _seconds("rate", self.rate, positive=True)
        for name in ("allow_insecure_http", "dry_run", "accept_changes", "new_journal", "bom"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r}: expected True or False")
        self._check_text()
        try:
            base_url = urls.check(
                self.base_url,
                allow_insecure_http=self.allow_insecure_http,
                option="base_url",
                allow="allow_insecure_http=True",
            )
        except SetupError as exc:
            raise ConfigError(str(exc), setting="base_url") from exc
        if self.api_key is not None:
            try:
                check_api_key(self.api_key, source="api_key")
            except SetupError as exc:
                problem = str(exc).removeprefix("api_key: ")
                raise ConfigError(str(exc), setting="api_key", problem=problem) from exc
        object.__setattr__(self, "base_url", base_url)
        self._check_other_apis()

    def _check_other_apis(self) -> None:
        if not isinstance(self.not_the_same_api, tuple | list) or not all(
            isinstance(url, str) for url in self.not_the_same_api
        ):
            raise ConfigError(
                f"not_the_same_api={self.not_the_same_api!r}: expected base URLs (text)"
            )
        try:
            others = tuple(
                urls.identity(urls.check(u, allow_insecure_http=True, option="not_the_same_api"))
                for u in self.not_the_same_api
            )
        except SetupError as exc:
            raise ConfigError(str(exc), setting="not_the_same_api") from exc
        object.__setattr__(self, "not_the_same_api", others)

    def _check_text(self) -> None:
        if not isinstance(self.base_url, str):
            raise ConfigError(f"base_url={self.base_url!r}: expected text")
        if self.brand is not None and (not isinstance(self.brand, str) or not self.brand.strip()):
            raise ConfigError(f"brand={self.brand!r}: expected a brand id (text)")
        if not isinstance(self.journal, str | Path) or not str(self.journal):
            raise ConfigError(f"journal={self.journal!r}: expected a path, or ':memory:'")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except (LookupError, TypeError) as exc:
                raise ConfigError(f"encoding={self.encoding!r}: no such encoding") from exc
        if self.delimiter is not None and (
            not isinstance(self.delimiter, str)
            or len(self.delimiter) != 1
            or self.delimiter in NOT_DELIMITERS
            or self.delimiter.isalnum()
        ):
            raise ConfigError(
                f"delimiter={self.delimiter!r}: one character that can separate fields, "
                "such as , ; | or a tab"
            )
        if self.kind not in kinds.NAMES:
            expected = " or ".join(repr(name) for name in kinds.NAMES)
            raise ConfigError(f"kind={self.kind!r}: expected {expected}")
        if self.accept_changes and not kinds.get(self.kind).accepts_changes:
            can = ", ".join(name for name in kinds.NAMES if kinds.get(name).accepts_changes)
            raise ConfigError(f"accept_changes: only {can} can be changed; not {self.kind}")
        if self.acknowledged is not None and (
            not isinstance(self.acknowledged, str | Path) or not str(self.acknowledged)
        ):
            raise ConfigError(f"acknowledged={self.acknowledged!r}: expected a file's path")
        if self.sheet is not None and (not isinstance(self.sheet, str) or not self.sheet):
            raise ConfigError(f"sheet={self.sheet!r}: expected a sheet's name (text)")
        if not isinstance(self.mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.mapping.items()
        ):
            raise ConfigError(f"mapping={self.mapping!r}: expected COLUMN -> FIELD text")


def _whole(name: str, value: object, low: int, high: int | None) -> None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        upto = f" to {high}" if high is not None else " or more"
        raise ConfigError(f"{name}={value!r}: expected a whole number from {low}{upto}")


def _seconds(name: str, value: object, *, positive: bool) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        what = "above 0" if positive else "0 or more"
        raise ConfigError(f"{name}={value!r}: expected a finite number {what}")
