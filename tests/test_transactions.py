"""Transactions: the checks and the request body, where money needs exactness."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

from etl.payload import json_number, transaction_body
from etl.read import TEXT
from etl.validate import near_amount, row_errors
from schemas.transaction import transaction_schema

GOOD = {
    "externalId": "T1",
    "externalBrandId": "casino-x",
    "externalCustomerId": "C1",
    "transactionDate": "2025-06-28T19:29:48.174Z",
}


def errors_of(**cells: str) -> list[str]:
    frame = pd.DataFrame([GOOD | cells], dtype=TEXT)
    found = row_errors(frame, brand=None, schema=transaction_schema)
    return [] if found.empty else str(found["error"].iloc[0]).split("; ")


@pytest.mark.parametrize("amount", ["19.99", "-12.50", "0", "007.5", " 3.25 ", "", "1000000"])
def test_a_decimal_written_with_a_point_is_an_amount(amount: str) -> None:
    assert errors_of(depositAmount=amount) == []


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("12,50", "depositAmount '12,50': expected a decimal number written with a point, "
         "such as 1234.50 or -12.5 (did you mean 12.50?)"),
        ("1.234,50", "depositAmount '1.234,50': expected a decimal number written with a "
         "point, such as 1234.50 or -12.5 (did you mean 1234.50?)"),
        ("1e3", "depositAmount '1e3': expected a decimal number written with a point, "
         "such as 1234.50 or -12.5 (did you mean 1000?)"),
        ("abc", "depositAmount 'abc': expected a decimal number written with a point, "
         "such as 1234.50 or -12.5"),
    ],
)  # fmt: skip
def test_other_ways_of_writing_an_amount_are_invalid_and_show_how(
    amount: str, message: str
) -> None:
    assert errors_of(depositAmount=amount) == [message]


@pytest.mark.parametrize(
    ("text", "fix"),
    [("12,5", "12.5"), ("1,234.50", "1234.50"), ("1.234.567,00", "1234567.00"),
     ("€12.50", "12.50"), ("12.50 EUR", "12.50"), ("+5", "5"), (".5", "0.5"),
     ("1,234", None), ("abc", None), ("12.50", None)],
)  # fmt: skip
def test_near_amount_suggests_one_likely_meaning_or_none(text: str, fix: str | None) -> None:
    assert near_amount(text) == fix


def test_every_problem_of_a_row_in_one_message() -> None:
    found = errors_of(externalCustomerId="", transactionDate="28/06/2025", grossRevenue="x")
    assert [m.split(":")[0] for m in found] == [
        "externalCustomerId empty",
        "transactionDate '28/06/2025'",
        "grossRevenue 'x'",
    ]


def test_amounts_are_sent_as_json_numbers_of_exactly_the_written_value() -> None:
    body = transaction_body(
        GOOD | {"depositAmount": "19.99", "grossRevenue": "-0.10", "cpaCommission": "007.50",
                "note": "Zoë", "label": " ", "wageredAmount": ""}
    )  # fmt: skip
    assert body.decode() == (
        '{"externalId":"T1","externalCustomerId":"C1","externalBrandId":"casino-x",'
        '"transactionDate":"2025-06-28T19:29:48.174Z","note":"Zoë",'
        '"depositAmount":19.99,"grossRevenue":-0.10,"cpaCommission":7.50}'
    )
    sent = json.loads(body, parse_float=Decimal)
    assert sent["depositAmount"] == Decimal("19.99")
    assert json.loads(body)["depositAmount"] == 19.99  # and as a float, the nearest one


def test_json_number_drops_leading_zeros_only() -> None:
    assert [json_number(a) for a in ("0", "00", "-007.50", "10.0", "0.05")] == [
        "0", "0", "-7.50", "10.0", "0.05"
    ]  # fmt: skip
