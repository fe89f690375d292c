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

import difflib
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
    def labels(self) -> dict[str, str]:
        """Field -> how a message names it: `column 'Registered' (registrationDate)`,
        for a field the input's column calls otherwise (see `validate.row_errors`)."""
        names = column_names(self.header)
        return {
            field: f"column {header!r} ({field})"
            for header, name in zip(self.header, names, strict=True)
            if (field := self.to_field.get(name)) is not None and header != field
        }

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


def fields_of(
    header: list[str], *, kind: Kind, mapping: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Field -> the place of the column that feeds it, matched as `resolve` matches them
    (a `--map` first, then names and aliases), without its checks: for a file that is
    not an import's input (a results or errors file, a journal's export). A `--map` of a
    column the file does not have is passed over."""
    found: dict[str, int] = {}
    for column, target in (mapping or {}).items():
        try:
            at = _position(column, header, "")
        except InputError:
            continue
        if (field := _field(f"{column}={target}", target, kind)) is not None:
            found.setdefault(field, at)
    taken = set(found.values())
    for at, name in enumerate(header):
        field = _by_normalised(kind).get(normalise(name))
        if field is not None and field not in found and at not in taken:
            found[field] = at
    return found


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
    taken = {at for at in range(len(header)) if at in mapped or names[at] in to_field}
    problems = [
        *_clashes(header, by_field),
        *_guarded(header, taken, kind.guarded),
        *_missing(header, taken, brand=brand, by_field=by_field, kind=kind),
    ]
    if problems:
        # Every problem of the header at once, not one a run.
        raise InputError(f"{source}: " + "; ".join(problems) + "; nothing was sent")
    return ColumnMap(header=tuple(header), to_field=to_field)


def _clashes(header: list[str], by_field: Mapping[str, list[int]]) -> list[str]:
    """Fields that several columns mean, each with the --map that keeps one."""
    found = []
    for field, places in by_field.items():
        if len(places) < 2:
            continue
        shown = ", ".join(f"{header[i]!r} (#{i + 1})" for i in places)
        last = header[places[-1]]
        how = f"#{places[-1] + 1}" if header.count(last) > 1 else last
        found.append(
            f"columns {shown} all mean {field}; keep one of them, or leave one out with "
            f"--map '{how}=-'"
        )
    return found


def _guarded(header: list[str], taken: set[int], guarded: Mapping[str, str]) -> list[str]:
    """Columns a reader would take for a field, sent nowhere and not mapped (`taken`: the
    positions of the columns mapped, or sent)."""
    found = []
    for at, column in enumerate(header):
        name = normalise(column)
        word = next((w for w in guarded if re.search(w, name)), None)
        if at in taken or word is None:
            continue
        how = f"#{at + 1}" if header.count(column) > 1 else column
        found.append(
            f"column {column!r} (#{at + 1}) looks like an API field but is sent nowhere: "
            f"say what it is, --map '{how}={guarded[word]}' (or another field), or leave "
            f"it out, --map '{how}=-'"
        )
    return found


def _missing(
    header: list[str],
    taken: set[int],
    *,
    brand: str | None,
    by_field: Mapping[str, list[int]],
    kind: Kind,
) -> list[str]:
    """The required fields no column feeds, with the unmapped column whose name is
    closest to each (difflib), and the --map that would take it."""
    missing = [f for f in kind.required if f not in by_field]
    if brand is not None and "externalBrandId" in missing:
        missing.remove("externalBrandId")
    if not missing:
        return []
    # The columns not mapped, but those told of already (a guarded name says its field).
    free = {
        normalise(header[at]): header[at]
        for at in range(len(header))
        if at not in taken and not any(re.search(w, normalise(header[at])) for w in kind.guarded)
    }
    hints = []
    for field in missing:
        if (close := _closest(normalise(field), list(free))) is not None:
            column = free.pop(close)
            hints.append(f"is {column!r} {field}? --map '{column}={field}'")
    hint = " (or give --brand)" if "externalBrandId" in missing else ""
    return [
        f"no column for {', '.join(missing)}{hint}; "
        f"columns found: {', '.join(header) or '(none)'}; "
        f"expected: {', '.join(kind.required)}" + "".join(f"; {h}" for h in hints)
    ]


def _closest(field: str, names: list[str]) -> str | None:
    """The name most like `field`, if one is close (difflib's ratio of 0.6 or more).
    The ratio is taken both ways round: one way only, `registered` is 0.54 like
    `registrationdate`, the other 0.62."""

    def like(name: str) -> float:
        one, other = (
            difflib.SequenceMatcher(None, field, name),
            difflib.SequenceMatcher(None, name, field),
        )
        return max(one.ratio(), other.ratio())

    best = max(names, key=like, default=None)
    return best if best is not None and like(best) >= 0.6 else None


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
