"""`--config FILE`: a TOML file of the command's options (the command line wins)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

TEXT, PATH, WHOLE, NUMBER = "text", "a path (text)", "a whole number", "a number"
FLAG = "true or false"
# Config key -> (option parameter, what its value must be). The README lists these keys.
CONFIG_KEYS: dict[str, tuple[str, str]] = {
    "brand": ("brand", TEXT),
    "base_url": ("base_url", TEXT),
    "out": ("out", PATH),
    "errors_out": ("errors_out", PATH),
    "summary_json": ("summary_json", PATH),
    "report_html": ("report_html", PATH),
    "map": ("mappings", "a table of COLUMN = FIELD"),
    "encoding": ("encoding", TEXT),
    "delimiter": ("delimiter", TEXT),
    "kind": ("kind", TEXT),
    "sheet": ("sheet", TEXT),
    "bom": ("bom", FLAG),
    "concurrency": ("concurrency", WHOLE),
    "rate": ("rate", NUMBER),
    "retries": ("retries", WHOLE),
    "timeout": ("timeout", NUMBER),
    "journal": ("journal", PATH),
    "log_file": ("log_file", PATH),
    "log_format": ("log_format", TEXT),
    "metrics_file": ("metrics_file", PATH),
}


def _typed(value: object, kind: str) -> bool:
    if kind in (TEXT, PATH):
        return isinstance(value, str)
    if kind == WHOLE:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == FLAG:
        return isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def read_config(path: Path) -> dict[str, Any]:
    """The settings of a TOML config file, each checked for its key's type (see
    CONFIG_KEYS), by option parameter name; raises click.BadParameter."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.BadParameter(f"{path}: cannot be read ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise click.BadParameter(
            f"{path}: unknown key {', '.join(unknown)}; known keys: {', '.join(CONFIG_KEYS)}"
        )
    found: dict[str, Any] = {}
    for key, value in config.items():
        name, kind = CONFIG_KEYS[key]
        if not _typed(value, kind):
            raise click.BadParameter(f"{path}: {key} = {value!r}: expected {kind}")
        found[name] = value
    return found


# What affelios-journal takes from an import's config file: which journal, kind, brand
# and API the job's records are under, and how its files' columns read (its other
# settings are the import's own).
JOURNAL_KEYS = ("journal", "kind", "brand", "base_url", "mappings")


def load_journal_config(
    ctx: click.Context, param: click.Parameter, path: Path | None
) -> Path | None:
    """`affelios-journal --config FILE`: the import job's config file, whose journal,
    kind, brand and API become the defaults of every command that takes them (the
    command line wins)."""
    if path is None:
        return None
    found = read_config(path)
    if "mappings" in found:  # forget --keys reads the job's files as the import read them
        found["mappings"] = [f"{k}={v}" for k, v in found["mappings"].items()]
    group = ctx.command
    assert isinstance(group, click.Group)
    defaults: dict[str, Any] = dict(ctx.default_map or {})
    for name, command in group.commands.items():
        taken = {p.name for p in command.params}
        mine = {k: v for k, v in found.items() if k in JOURNAL_KEYS and k in taken}
        defaults[name] = {**defaults.get(name, {}), **mine}
    ctx.default_map = defaults
    return path


def load_config(ctx: click.Context, param: click.Parameter, path: Path | None) -> Path | None:
    """Read a TOML config file into the command's defaults; the command line wins.

    Every value must be of its key's type (TOML's `2.5` is not a concurrency, `42` not a
    brand): nothing is coerced. Ranges are then checked by the options' own types.
    """
    if path is None:
        return None
    defaults = read_config(path)
    if "mappings" in defaults:
        defaults["mappings"] = [f"{k}={v}" for k, v in defaults["mappings"].items()]
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path
