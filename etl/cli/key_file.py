"""The secrets as the commands read them. The API key: from `--api-key-file` or
`AFFELIOS_API_KEY`, never from the command line (the file is checked here: readable,
text, not empty; the key itself by `ImportConfig`, as for every caller). The journal's
database URL: a password in it comes from AFFELIOS_JOURNAL or the config file, or
libpq's own places (~/.pgpass, PGPASSWORD), never from the command line."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import click
from click.core import ParameterSource

from affelios_import import SetupError
from affelios_import.urls import has_password, is_database


def read_api_key(api_key_file: Path | None, environ_key: str | None) -> ApiKey:
    """The key from its file (surrounding whitespace and line ends dropped) or the
    environment (as it is), and where it came from; a SetupError says what is wrong with
    the file, never showing the key (`ImportConfig` checks the key itself)."""
    if api_key_file is not None:
        source = f"--api-key-file {api_key_file}"
        try:
            raw = api_key_file.read_bytes()
        except OSError as exc:
            raise SetupError(f"{source}: cannot be read ({exc.strerror})") from exc
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw:
            raise SetupError(f"{source}: the file is UTF-16 text; save it as plain ASCII")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SetupError(
                f"{source}: the file is not UTF-8 text (Latin-1 or another code page?); "
                "API keys are plain ASCII"
            ) from exc
        if not text.strip():
            raise SetupError(f"{source}: the file is empty")
        return ApiKey(text.strip(" \t\r\n"), source)
    return ApiKey(environ_key or None, "AFFELIOS_API_KEY")


@dataclass(frozen=True)
class ApiKey:
    text: str | None
    source: str  # the option or variable it came from, for messages about it


def journal_location(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> Path | str | None:
    """`--journal`: a file's path, or a PostgreSQL URL (a usage error, if it carries a
    password on the command line: every user of the machine sees a command's arguments)."""
    if value is None:
        return None
    if not is_database(value):
        return Path(value)
    if ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE and has_password(
        value
    ):
        raise click.BadParameter(
            "a password on the command line is seen by every user of this machine: put it "
            "in ~/.pgpass or PGPASSWORD, or the whole URL in AFFELIOS_JOURNAL or the "
            "config file",
            ctx,
            param,
        )
    return value.strip()
