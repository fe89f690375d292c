"""The customer CSV, as the importer checks it before anything is sent.

Field names are the contract's (`openapi.yaml`, `CustomerCreate`); a test keeps the two in
step. Every value arrives as text; the checks are vectorised pandera checks, and each
check's `error` is the "what was expected" part of the per-row message.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the fields are read without pandas (see kinds)
    import pandas as pd
    import pandera.pandas as pa

REQUIRED_FIELDS: tuple[str, ...] = ("externalId", "externalBrandId", "registrationDate")
STRING_FIELDS: tuple[str, ...] = (
    "brandId",
    "externalId",
    "externalBrandId",
    "clickId",
    "username",
    "registrationDate",
    "country",
    "country_code",
)
BOOLEAN_FIELDS: tuple[str, ...] = ("revShareExcluded", "cpaExcluded")
CONTRACT_FIELDS: tuple[str, ...] = STRING_FIELDS + BOOLEAN_FIELDS

TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})

# The contract's pattern, plus a check below that the date is a real one (no 30 February).
ZULU_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"

EXPECT_PRESENT = "a value (it is required)"
EXPECT_ZULU = "an ISO-8601 Zulu timestamp such as 2025-06-28T19:29:48.174Z"
NOT_REAL = "not a real date"
EXPECT_BOOLEAN = "true/false, 1/0, yes/no or empty"

# No dtype check: every cell is read as text (Arrow strings), and pandera 0.35 compares
# Arrow string dtypes unequal to themselves, then tries to coerce every value one by one
# to report the "failures" (0.6 s a million cells, for nothing).
TEXT = None


def present(s: pd.Series) -> pd.Series:
    return s.str.strip() != ""


def _real(text: str) -> bool:
    """Whether a timestamp of the contract's shape names a real moment (Python's dates
    reach the years 1 to 9999)."""
    try:
        datetime(
            int(text[0:4]), int(text[5:7]), int(text[8:10]),
            int(text[11:13]), int(text[14:16]), int(text[17:19]),
        )  # fmt: skip
    except ValueError:
        return False
    return True


def zulu(s: pd.Series) -> pd.Series:
    """Whether each value is a Zulu timestamp of the contract's shape and a real date.

    pandas tells real dates apart fast, but its nanoseconds reach only the years 1677 to
    2262: the few values it refuses are asked again of Python's dates, so that
    0001-01-01 and 9999-12-31 are real and 2025-02-30 is not.
    """
    import numpy as np
    import pandas as pd

    shaped = s.str.fullmatch(ZULU_PATTERN)
    real = pd.to_datetime(s.where(shaped), format="ISO8601", utc=True, errors="coerce").notna()
    unsure = shaped & ~real
    if unsure.any():
        real[unsure] = np.array([_real(text) for text in s[unsure].tolist()], dtype=bool)
    return shaped & real & ~s.str.startswith("0000")  # no year 0 (pandas takes it)


def _boolean_or_empty(s: pd.Series) -> pd.Series:
    """A word of TRUE_WORDS or FALSE_WORDS in any case, or blank; spaces around ignored."""
    return s.str.strip().str.lower().isin(TRUE_WORDS | FALSE_WORDS | {""})


def text_columns(
    fields: tuple[str, ...], *, required: tuple[str, ...], date_field: str, brand: str | None
) -> dict[str, pa.Column]:
    """The text fields' columns, as every kind of record checks them: required ones
    present, the date a real Zulu timestamp, and with `brand`, every row's
    `externalBrandId` exactly that brand (the caller has already filled empty ones with
    it), so no row lands on another brand."""
    import pandera.pandas as pa

    columns: dict[str, pa.Column] = {}
    for name in fields:
        checks = []
        if name in required:
            checks.append(pa.Check(present, error=EXPECT_PRESENT))
        if name == date_field:
            checks.append(pa.Check(lambda s: ~present(s) | zulu(s), error=EXPECT_ZULU))
        if name == "externalBrandId" and brand is not None:
            checks.append(
                pa.Check(
                    lambda s: ~present(s) | (s == brand),
                    error=f"the brand given with --brand ({brand})",
                )
            )
        columns[name] = pa.Column(TEXT, checks, required=name in required)
    return columns


@lru_cache(maxsize=8)
def customer_schema(brand: str | None) -> pa.DataFrameSchema:
    """The schema of a chunk whose columns carry contract names (see text_columns)."""
    import pandera.pandas as pa

    columns = text_columns(
        STRING_FIELDS, required=REQUIRED_FIELDS, date_field="registrationDate", brand=brand
    )
    for name in BOOLEAN_FIELDS:
        columns[name] = pa.Column(
            TEXT, pa.Check(_boolean_or_empty, error=EXPECT_BOOLEAN), required=False
        )
    return pa.DataFrameSchema(columns, strict=False, coerce=False)
