"""The transactions CSV, as the importer checks it before anything is sent.

Field names are the contract's (`openapi.yaml`, `TransactionCreate`). The contract marks
every field optional; the importer requires what it needs to send a transaction at most
once and to the right customer: `externalId` (the journal's key, with the brand),
`externalBrandId`, `externalCustomerId` and `transactionDate`. Amounts are decimal
numbers written with a point, sent as JSON numbers of exactly the written value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

from .customer import TEXT, present, text_columns

REQUIRED_FIELDS: tuple[str, ...] = (
    "externalId",
    "externalBrandId",
    "externalCustomerId",
    "transactionDate",
)
STRING_FIELDS: tuple[str, ...] = (
    "externalId",
    "type",
    "affiliateId",
    "clickKey",
    "externalCustomerId",
    "externalBrandId",
    "externalProductId",
    "transactionDate",
    "country",
    "country_code",
    "category",
    "label",
    "note",
    "operatorId",
)
AMOUNT_FIELDS: tuple[str, ...] = (
    "depositAmount",
    "grossRevenue",
    "wageredAmount",
    "revShareCommission",
    "cpaCommission",
    "fixedCommission",
)
CONTRACT_FIELDS: tuple[str, ...] = STRING_FIELDS + AMOUNT_FIELDS

# Digits, with a point and more digits after it, a minus sign before them for a
# chargeback; spaces around are ignored. No `+`, no comma, no exponent, no separators.
AMOUNT_PATTERN = r"^\s*-?\d+(\.\d+)?\s*$"
EXPECT_AMOUNT = "a decimal number written with a point, such as 1234.50 or -12.5"


# And of a size money has: an amount of thousands of digits is no amount (and makes
# gigabytes of whatever is built from it).
AMOUNT_DIGITS = 18
SIZED_AMOUNT_PATTERN = rf"^\s*-?\d{{1,{AMOUNT_DIGITS}}}(\.\d{{1,{AMOUNT_DIGITS}}})?\s*$"
EXPECT_AMOUNT_SIZE = f"at most {AMOUNT_DIGITS} digits before the point and {AMOUNT_DIGITS} after"


def amount_or_empty(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(AMOUNT_PATTERN) | ~present(s)


def sized_or_not_an_amount(s: pd.Series) -> pd.Series:
    """Only an amount too long fails this (any other shape fails `amount_or_empty`)."""
    return s.str.fullmatch(SIZED_AMOUNT_PATTERN) | ~amount_or_empty(s) | ~present(s)


@lru_cache(maxsize=8)
def transaction_schema(brand: str | None) -> pa.DataFrameSchema:
    """The schema of a chunk whose columns carry contract names (see text_columns)."""
    import pandera.pandas as pa

    columns = text_columns(
        STRING_FIELDS, required=REQUIRED_FIELDS, date_field="transactionDate", brand=brand
    )
    for name in AMOUNT_FIELDS:
        checks = [
            pa.Check(amount_or_empty, error=EXPECT_AMOUNT),
            pa.Check(sized_or_not_an_amount, error=EXPECT_AMOUNT_SIZE),
        ]
        columns[name] = pa.Column(TEXT, checks, required=False)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)
