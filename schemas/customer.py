"""The customer CSV, as the importer checks it before anything is sent.

Field names are the contract's (`openapi.yaml`, `CustomerCreate`); a test keeps the two in
step. Every value arrives as text; the checks are vectorised pandera checks, and each
check's `error` is the "what was expected" part of the per-row message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the fields are read without pandas (see kinds)
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pandera.pandas as pa
    import pyarrow as arrow

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
    """Whether each value holds more than white space."""
    import pandas as pd
    import pyarrow as arrow

    text = arrow.array(s, type=arrow.string(), from_pandas=True)
    return pd.Series(filled(text), index=s.index)


def filled(text: arrow.Array) -> npt.NDArray[np.bool_]:
    """Whether each value of Arrow text holds more than white space (as Python's
    `str.strip` sees it). A value that starts with a printable ASCII character does
    (nearly all: one look at its first byte); only the others are stripped to see."""
    import numpy as np
    import pyarrow.compute as pc

    from affelios_import.text import first_bytes

    first = first_bytes(text)
    found = (first > ord(" ")) & (first < 0x7F)
    if not found.all():
        unsure = np.flatnonzero(~found & (first != -1))  # a space, a control, not ASCII
        stripped = pc.utf8_trim_whitespace(text.take(unsure))
        found[unsure] = pc.not_equal(stripped, "").to_numpy(zero_copy_only=False)
    return found


# A timestamp of the contract's shape, byte by byte, for each length it may have:
# `yyyy-mm-ddThh:mm:ss`, then `Z`, or a point, 1 to 9 digits and `Z` (d: an ASCII digit).
_HEAD = "dddd-dd-ddTdd:dd:dd"
_SHAPES = {len(shape): shape for shape in [
    _HEAD + "Z", *(_HEAD + "." + "d" * digits + "Z" for digits in range(1, 10))]}  # fmt: skip
_FIELDS = ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))  # year ... second
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # a month's days; 0 unused


def zulu(s: pd.Series) -> pd.Series:
    """Whether each value is a Zulu timestamp of the contract's shape (`ZULU_PATTERN`,
    its digits ASCII) and a real moment (years 1 to 9999, as Python's dates: 0001-01-01
    and 9999-12-31 are real; year 0, 2025-02-30, 25:00 and a 60th second are not).

    Column-wise, once per chunk, on the column's UTF-8 bytes: the values of each length
    a timestamp may have form a table of bytes (a view of the column's own buffer when
    every value has that length, as an export's usually do), whose columns are checked
    against the shape and read as numbers. No value is looked at on its own."""
    import numpy as np
    import pandas as pd
    import pyarrow as arrow

    from affelios_import.text import utf8

    data, offsets = utf8(arrow.array(s, type=arrow.string(), from_pandas=True))
    length = np.diff(offsets)
    found = np.zeros(len(length), dtype=bool)
    for size, shape in _SHAPES.items():
        rows = np.flatnonzero(length == size)
        if not len(rows):
            continue
        if len(rows) == len(length):  # every value this long: they lie end to end
            table = data[offsets[0] : offsets[-1]].reshape(len(rows), size)
        else:
            table = data[offsets[rows, None] + np.arange(size)]
        found[rows] = _real(table, shape)
    return pd.Series(found, index=s.index)


def _real(table: npt.NDArray[np.uint8], shape: str) -> npt.NDArray[np.bool_]:
    """Of each row of `table` (a value's bytes), whether it has the `shape` and names a
    real moment."""
    import numpy as np

    digits = [i for i, c in enumerate(shape) if c == "d"]
    number = table[:, digits].astype(np.int16) - ord("0")
    good = np.all((number >= 0) & (number <= 9), axis=1)
    for i, c in enumerate(shape):
        if c != "d":
            good &= table[:, i] == ord(c)
    value = dict(zip(digits, number.T, strict=False))
    year, month, day, hour, minute, second = (
        sum(value[i] * 10 ** (stop - 1 - i) for i in range(start, stop)) for start, stop in _FIELDS
    )
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    good_month = (month >= 1) & (month <= 12)
    most = np.asarray(_DAYS)[np.where(good_month, month, 0)] + (leap & (month == 2))
    real: npt.NDArray[np.bool_] = (
        good & (year >= 1) & good_month & (day >= 1) & (day <= most)
        & (hour <= 23) & (minute <= 59) & (second <= 59)
    )  # fmt: skip
    return real


_BOOLEAN_OR_EMPTY = TRUE_WORDS | FALSE_WORDS | {""}


def _boolean_or_empty(s: pd.Series) -> pd.Series:
    """A word of TRUE_WORDS or FALSE_WORDS in any case, or blank; spaces around ignored.
    Values written exactly so (nearly all) are found in one pass; only the others are
    stripped and lowered to see."""
    import numpy as np
    import pandas as pd

    found = np.array(s.isin(_BOOLEAN_OR_EMPTY), dtype=bool)  # a copy: Arrow's is read-only
    if not found.all():
        others = s[~found]
        found[~found] = others.str.strip().str.lower().isin(_BOOLEAN_OR_EMPTY).to_numpy(bool)
    return pd.Series(found, index=s.index)


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
        if checks:  # a column nothing checks costs pandera a pass for nothing
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
