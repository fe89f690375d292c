"""Header names to contract names, and `--brand` applied.

A header matches a contract field regardless of case, spaces, `_` and `-`
(`External ID`, `external_id` and `EXTERNALID` are all `externalId`); the vendor's own
name `clickKey` is accepted for `clickId`. For names no rule can guess, the user maps
them (`--map "Brand=externalBrandId"`, or `[map]` in the config file; `#3=clickId` maps
the third column, for a name the header repeats); mapping a column to `-` keeps it out
of the request. Other columns are kept in the results and never sent, but for one
that a reader would take for a field (see `Kind.guarded`): the run stops before anything is
sent until it is mapped, to a field or to `-`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from affelios_import.errors import InputError
from affelios_import.input.read import column_names
from affelios_import.kinds.base import Kind


def normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


@lru_cache(maxsize=4)
def _by_normalised(kind: Kind) -> dict[str, str]:
    """Normalised name -> the kind's field: its aliases, but where one is the name of a
    field (the contract's own names come first)."""
    return dict(kind.aliases) | {normalise(f): f for f in kind.fields}


@dataclass(frozen=True, kw_only=True)
class ColumnMap:
    """Which input column feeds which contract field."""

    header: tuple[str, ...]
    # The column's name in the chunks (unique: see `read.column_names`) -> contract field.
    to_field: dict[str, str]

    @property
    def unused(self) -> list[str]:
        return [c for c in column_names(self.header) if c not in self.to_field]

    def describe(self, *, brand: str | None) -> str:
        """How the columns map, in one line: `columns: 'External ID' -> externalId, ...;
        not sent: note; externalBrandId: --brand casino-x`."""
        names = column_names(self.header)
        sent = [
            f"{_quoted(h)} → {self.to_field[n]}"
            for h, n in zip(self.header, names, strict=True)
            if n in self.to_field
        ]
        unsent = [
            _quoted(h)
            for h, n in zip(self.header, names, strict=True)
            if n not in self.to_field and h.strip()
        ]
        # A sheet with a stray cell far to the right has thousands of columns without a
        # name: counted, not listed.
        nameless = sum(1 for h, n in zip(self.header, names, strict=True)
                       if n not in self.to_field and not h.strip())  # fmt: skip
        if nameless:
            unsent.append(f"{nameless:,} column{'s' if nameless > 1 else ''} without a name")
        parts = [f"columns: {', '.join(sent) or '(none)'}"]
        if unsent:
            parts.append(f"not sent: {', '.join(unsent)}")
        if brand is not None and "externalBrandId" not in self.to_field.values():
            parts.append(f"externalBrandId: --brand {brand}")
        elif brand is not None:
            parts.append(f"empty externalBrandId: --brand {brand}")
        return "; ".join(parts)


IGNORE = "-"

# Column names that make a reader take the column for a field it is not mapped to: such
# a column, sent nowhere, would silently change what Affelios gets (a customer created
# under --brand's brand instead of its own, an affiliate losing the credit for a click,
# a registration date not the one meant). Each kind has its patterns (`Kind.guarded`).


def _quoted(name: str) -> str:
    return name if re.fullmatch(r"[\w.#-]+", name) else repr(name)


def parse_mapping(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["Brand=externalBrandId", ...]` as a dict; raises InputError on a malformed pair.

    The pair is split at its last `=` (no field name has one), so a column whose name
    holds `=` can be named; the column is kept as written (surrounding spaces too: see
    `resolve`), and `#N` names the N-th column.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        if not sep or not column.strip() or not target.strip():
            raise InputError(
                f"--map {pair!r}: expected COLUMN=FIELD, such as Brand=externalBrandId"
            )
        mapping[column] = target.strip()
    return mapping


def _position(column: str, header: list[str], source: str) -> int:
    """The 0-based position of the column a `--map` names: `#N`, the name exactly as
    written, or the name without surrounding spaces; InputError when it names none, or
    a name the header repeats."""
    if (number := re.fullmatch(r"#\s*(\d+)", column.strip())) is not None:
        at = int(number.group(1)) - 1
        if not 0 <= at < len(header):
            raise InputError(
                f"{source}: --map names column {column.strip()} but the file has "
                f"{len(header)} columns"
            )
        return at
    found = [i for i, name in enumerate(header) if name == column]
    if not found:
        found = [i for i, name in enumerate(header) if name.strip() == column.strip()]
    if not found:
        raise InputError(
            f"{source}: --map names a column {column!r} that is not in the file; "
            f"columns found: {', '.join(header) or '(none)'}"
        )
    if len(found) > 1:
        numbers = " and ".join(f"#{i + 1}" for i in found)
        raise InputError(
            f"{source}: --map names {column.strip()!r}, which is the name of columns "
            f"{numbers}; name one by its position, such as --map '#{found[-1] + 1}=-'"
        )
    return found[0]


def _field(pair: str, target: str, kind: Kind) -> str | None:
    if target == IGNORE:
        return None
    field = _by_normalised(kind).get(normalise(target))
    if field is None:
        raise InputError(
            f"--map {pair}: {target!r} is not a field of the API; "
            f"expected one of: {', '.join(kind.fields)}, or - to leave the column out"
        )
    return field


def resolve(
    header: list[str],
    *,
    brand: str | None,
    source: str,
    mapping: Mapping[str, str] | None = None,
    kind: Kind,
) -> ColumnMap:
    """Match the header to the contract, or say exactly what is wrong with it."""
    mapping = mapping or {}
    by_normalised = _by_normalised(kind)
    names = column_names(tuple(header))
    mapped: dict[int, str | None] = {}
    for column, target in mapping.items():
        mapped[_position(column, header, source)] = _field(f"{column}={target}", target, kind)
    to_field: dict[str, str] = {}
    by_field: dict[str, list[int]] = {}
    for at, column in enumerate(header):
        field = mapped[at] if at in mapped else by_normalised.get(normalise(column))
        if field is not None:
            to_field[names[at]] = field
            by_field.setdefault(field, []).append(at)
    clashes = {f: places for f, places in by_field.items() if len(places) > 1}
    if clashes:
        field, places = next(iter(clashes.items()))
        shown = ", ".join(f"{header[i]!r} (#{i + 1})" for i in places)
        last = header[places[-1]]
        how = f"#{places[-1] + 1}" if header.count(last) > 1 else last
        raise InputError(
            f"{source}: columns {shown} all mean {field}; keep one of them, "
            f"or leave one out with --map '{how}=-'"
        )
    taken = {at for at in range(len(header)) if at in mapped or names[at] in to_field}
    _guard(header, taken, source, kind.guarded)
    missing = [f for f in kind.required if f not in by_field]
    if brand is not None and "externalBrandId" in missing:
        missing.remove("externalBrandId")
    if missing:
        hint = " (or give --brand)" if "externalBrandId" in missing else ""
        raise InputError(
            f"{source}: no column for {', '.join(missing)}{hint}; "
            f"columns found: {', '.join(header) or '(none)'}; "
            f"expected: {', '.join(kind.required)}"
        )
    return ColumnMap(header=tuple(header), to_field=to_field)


def _guard(header: list[str], taken: set[int], source: str, guarded: Mapping[str, str]) -> None:
    """Stop at a column a reader would take for a field, sent nowhere and not mapped
    (`taken`: the positions of the columns mapped, or sent)."""
    for at, column in enumerate(header):
        if at in taken:
            continue
        name = normalise(column)
        word = next((w for w in guarded if re.search(w, name)), None)
        if word is None:
            continue
        how = f"#{at + 1}" if header.count(column) > 1 else column
        raise InputError(
            f"{source}: column {column!r} (#{at + 1}) looks like an API field but is sent "
            f"nowhere; nothing was sent. Say what it is: --map '{how}={guarded[word]}' "
            f"(or another field), or leave it out: --map '{how}=-'"
        )


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
