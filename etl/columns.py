"""Header names to contract names, and `--brand` applied.

A header matches a contract field regardless of case, spaces, `_` and `-`
(`External ID`, `external_id` and `EXTERNALID` are all `externalId`); the vendor's own
name `clickKey` is accepted for `clickId`. For names no rule can guess, the user maps
them (`--map "Brand=externalBrandId"`, or `[map]` in the config file); mapping a column
to `-` keeps it out of the request. Other columns are kept in the results and never sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from etl.errors import InputError
from schemas.customer import CONTRACT_FIELDS, REQUIRED_FIELDS

ALIASES: dict[str, str] = {"clickkey": "clickId"}


def normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


_BY_NORMALISED: dict[str, str] = {normalise(f): f for f in CONTRACT_FIELDS} | ALIASES


@dataclass(frozen=True, kw_only=True)
class ColumnMap:
    """Which input column feeds which contract field."""

    header: tuple[str, ...]
    to_field: dict[str, str]  # input column name -> contract field

    @property
    def unused(self) -> list[str]:
        return [c for c in self.header if c not in self.to_field]


IGNORE = "-"


def parse_mapping(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["Brand=externalBrandId", ...]` as a dict; raises InputError on a malformed pair."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip() or not target.strip():
            raise InputError(
                f"--map {pair!r}: expected COLUMN=FIELD, such as Brand=externalBrandId"
            )
        mapping[column.strip()] = target.strip()
    return mapping


def _mapped_field(column: str, target: str, header: list[str], source: str) -> str | None:
    if column not in header:
        raise InputError(
            f"{source}: --map names a column {column!r} that is not in the file; "
            f"columns found: {', '.join(header) or '(none)'}"
        )
    if target == IGNORE:
        return None
    field = _BY_NORMALISED.get(normalise(target))
    if field is None:
        raise InputError(
            f"--map {column}={target}: {target!r} is not a field of the API; "
            f"expected one of: {', '.join(CONTRACT_FIELDS)}, or - to leave the column out"
        )
    return field


def resolve(
    header: list[str],
    *,
    brand: str | None,
    source: str,
    mapping: dict[str, str] | None = None,
) -> ColumnMap:
    """Match the header to the contract, or say exactly what is wrong with it."""
    mapping = mapping or {}
    to_field: dict[str, str] = {}
    by_field: dict[str, list[str]] = {}
    for column in header:
        if column in mapping:
            field = _mapped_field(column, mapping[column], header, source)
        else:
            field = _BY_NORMALISED.get(normalise(column))
        if field is not None:
            to_field[column] = field
            by_field.setdefault(field, []).append(column)
    clashes = {f: cols for f, cols in by_field.items() if len(cols) > 1}
    for column in mapping:
        _mapped_field(column, mapping[column], header, source)  # a column not in the file
    if clashes:
        field, cols = next(iter(clashes.items()))
        raise InputError(
            f"{source}: columns {', '.join(repr(c) for c in cols)} all mean {field}; "
            f"keep one of them, or leave one out with --map '{cols[-1]}=-'"
        )
    missing = [f for f in REQUIRED_FIELDS if f not in by_field]
    if brand is not None and "externalBrandId" in missing:
        missing.remove("externalBrandId")
    if missing:
        hint = " (or give --brand)" if "externalBrandId" in missing else ""
        raise InputError(
            f"{source}: no column for {', '.join(missing)}{hint}; "
            f"columns found: {', '.join(header) or '(none)'}; "
            f"expected: {', '.join(REQUIRED_FIELDS)}"
        )
    return ColumnMap(header=tuple(header), to_field=to_field)


def to_contract(chunk: pd.DataFrame, columns: ColumnMap, *, brand: str | None) -> pd.DataFrame:
    """The chunk's contract fields under contract names; `--brand` fills empty brands."""
    frame = chunk[list(columns.to_field)].rename(columns=columns.to_field)
    if brand is not None:
        if "externalBrandId" in frame.columns:
            empty = frame["externalBrandId"].str.strip() == ""
            frame["externalBrandId"] = frame["externalBrandId"].mask(empty, brand)
        else:
            frame["externalBrandId"] = brand
    return frame
