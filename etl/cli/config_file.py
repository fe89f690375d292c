"""`--config FILE`: a TOML file of the command's options (the command line wins).

A table named after a kind (`[customers]`, `[transactions]`, and so `[customers.map]`)
holds that kind's own settings: they win over the file's top level when the run is of
that kind (a table such as `map` is merged, column by column), and the command line
wins over both.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from affelios_import import kinds

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
    "acknowledged": ("acknowledged", PATH),
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


Sections = dict[str, dict[str, Any]]  # kind -> its settings, by option parameter name
_SECTIONS = "affelios_import.config_sections"  # where the root context keeps them


def read_config(path: Path) -> tuple[dict[str, Any], Sections]:
    """The settings of a TOML config file, each checked for its key's type (see
    CONFIG_KEYS), by option parameter name, and those of each kind's table; raises
    click.BadParameter."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.BadParameter(f"{path}: cannot be read ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path}: not valid TOML ({exc})") from exc
    sections: Sections = {}
    for kind in kinds.NAMES:
        if kind in config:
            table = config.pop(kind)
            if not isinstance(table, dict):
                raise click.BadParameter(f"{path}: {kind} = {table!r}: expected a table [{kind}]")
            if "kind" in table:
                raise click.BadParameter(
                    f"{path}: [{kind}] cannot set kind: it holds the settings of {kind} runs"
                )
            sections[kind] = _settings(path, table, within=f"[{kind}] ")
    return _settings(path, config, within=""), sections


def _settings(path: Path, table: dict[str, Any], *, within: str) -> dict[str, Any]:
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        known = [key for key in CONFIG_KEYS if not within or key != "kind"]
        tables = "" if within else f" and the tables [{'], ['.join(kinds.NAMES)}]"
        raise click.BadParameter(
            f"{path}: {within}unknown key {', '.join(unknown)}; known keys: "
            f"{', '.join(known)}{tables}"
        )
    found: dict[str, Any] = {}
    for key, value in table.items():
        name, kind = CONFIG_KEYS[key]
        if not _typed(value, kind):
            raise click.BadParameter(f"{path}: {within}{key} = {value!r}: expected {kind}")
        found[name] = [f"{k}={v}" for k, v in value.items()] if name == "mappings" else value
    return found


F = TypeVar("F", bound=Callable[..., Any])


def with_kind_section(command: F) -> F:
    """Give a command (one that takes `kind`) the settings of its kind's table of the
    config file, for each of its parameters the command line did not set."""

    @functools.wraps(command)
    def wrapped(**params: Any) -> Any:
        ctx = click.get_current_context()
        section = ctx.find_root().meta.get(_SECTIONS, {}).get(params["kind"], {})
        for name, value in section.items():
            if name not in params or ctx.get_parameter_source(name) not in _NOT_GIVEN:
                continue
            if name == "mappings" and ctx.get_parameter_source(name) is ParameterSource.DEFAULT_MAP:
                value = _merged(params[name], value)
            param = next(p for p in ctx.command.params if p.name == name)
            params[name] = param.process_value(ctx, value)
        return command(**params)

    return wrapped  # type: ignore[return-value]


_NOT_GIVEN = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def _merged(top: tuple[str, ...], own: list[str]) -> list[str]:
    """The top level's `map` with the kind's own entries over it, column by column."""
    by_column = {entry.rpartition("=")[0]: entry for entry in (*top, *own)}
    return list(by_column.values())


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
    found, sections = read_config(path)
    ctx.meta[_SECTIONS] = {
        kind: {k: v for k, v in section.items() if k in JOURNAL_KEYS}
        for kind, section in sections.items()
    }
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
    defaults, ctx.meta[_SECTIONS] = read_config(path)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path
