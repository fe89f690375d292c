from __future__ import annotations

import pandas as pd
import pytest

from affelios_import.input.validate import row_errors
from affelios_import.sandbox import contract_schema
from affelios_import.schemas.customer import (
    BOOLEAN_FIELDS,
    CONTRACT_FIELDS,
    REQUIRED_FIELDS,
    STRING_FIELDS,
)

GOOD = {
    "externalId": "C1",
    "externalBrandId": "casino-x",
    "registrationDate": "2025-06-28T19:29:48.174Z",
}


def errors_of(rows: list[dict[str, str]], *, brand: str | None = None) -> dict[int, str]:
    frame = pd.DataFrame(rows, dtype=str).fillna("")
    found = row_errors(frame, brand=brand)
    return dict(zip(found.index, found["error"], strict=True))


def test_schema_fields_are_the_contracts() -> None:
    contract = contract_schema("CustomerCreate")
    assert set(CONTRACT_FIELDS) == set(contract["properties"])
    assert set(REQUIRED_FIELDS) == set(contract["required"])
    assert {f for f, p in contract["properties"].items() if p["type"] == "boolean"} == set(
        BOOLEAN_FIELDS
    )
    assert {f for f, p in contract["properties"].items() if p["type"] == "string"} == set(
        STRING_FIELDS
    )


@pytest.mark.parametrize(
    "date",
    [
        "2025-06-28T19:29:48.174Z",
        "2025-06-28T19:29:48Z",
        "2024-02-29T00:00:00.123456789Z",
        "2000-02-29T00:00:00Z",
        "0001-01-01T00:00:00Z",  # outside pandas' nanosecond range, and real
        "9999-12-31T23:59:59Z",
    ],
)
def test_zulu_dates_are_valid(date: str) -> None:
    assert errors_of([GOOD | {"registrationDate": date}]) == {}


EXPECTED = "expected an ISO-8601 Zulu timestamp such as 2025-06-28T19:29:48.174Z"


@pytest.mark.parametrize(
    ("date", "problem"),
    [
        ("2025-06-28T19:29:48+02:00", EXPECTED),
        ("28/06/2025", EXPECTED),
        ("2025-06-28", EXPECTED),
        ("2025-02-30 10:00:00", EXPECTED),  # a near miss, but of no real date
        ("2025-02-30T10:00:00Z", "not a real date"),
        ("2025-06-28T25:00:00Z", "not a real date"),
        ("1900-02-29T00:00:00Z", "not a real date"),
        ("0000-01-01T00:00:00Z", "not a real date"),
        ("2025-06-28 19:29:48", f"{EXPECTED} (did you mean 2025-06-28T19:29:48Z?)"),
        ("2025-06-28T19:29:48", f"{EXPECTED} (did you mean 2025-06-28T19:29:48Z?)"),
        ("2025-06-28T19:29:48.174z", f"{EXPECTED} (did you mean 2025-06-28T19:29:48.174Z?)"),
        ("2025-06-28 19:29:48+00:00", f"{EXPECTED} (did you mean 2025-06-28T19:29:48Z?)"),
        ("2025-06-28 19:29:48 UTC", f"{EXPECTED} (did you mean 2025-06-28T19:29:48Z?)"),
    ],
)
def test_other_dates_are_invalid_and_say_why(date: str, problem: str) -> None:
    assert errors_of([GOOD | {"registrationDate": date}]) == {
        0: f"registrationDate {date!r}: {problem}"
    }


def test_each_message_has_its_kind_in_the_same_order() -> None:
    frame = pd.DataFrame(
        [GOOD | {"externalId": "", "registrationDate": "2025-02-30T10:00:00Z"}], dtype=str
    )
    found = row_errors(frame, brand=None)
    assert found["error_kind"].tolist() == [
        "required_missing:externalId; date_not_real:registrationDate"
    ]
    assert found["error"].tolist()[0].endswith("'2025-02-30T10:00:00Z': not a real date")


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
@pytest.mark.parametrize("value", ["", "   "])
def test_required_fields_must_not_be_blank(field: str, value: str) -> None:
    (message,) = errors_of([GOOD | {field: value}]).values()
    assert message.startswith(f"{field} ")
    assert message.endswith(": expected a value (it is required)")


@pytest.mark.parametrize(
    "value", ["true", "FALSE", "1", "0", "Yes", "no", "", "   ", "\t", " yes ", " true"]
)
def test_booleans_accept_the_usual_words(value: str) -> None:
    assert errors_of([GOOD | {"revShareExcluded": value, "cpaExcluded": value}]) == {}


@pytest.mark.parametrize("value", ["maybe", "y", "2", "t rue", "tru"])
def test_other_boolean_words_are_invalid(value: str) -> None:
    assert errors_of([GOOD | {"cpaExcluded": value}]) == {
        0: f"cpaExcluded {value!r}: expected true/false, 1/0, yes/no or empty"
    }


def test_every_problem_of_a_row_is_in_one_message_in_column_order() -> None:
    row = {"externalId": "", "externalBrandId": "casino-x", "registrationDate": "28/06/2025"}
    row |= {"revShareExcluded": "maybe"}
    assert errors_of([GOOD, row, GOOD]) == {
        1: "externalId empty: expected a value (it is required); "
        "registrationDate '28/06/2025': expected an ISO-8601 Zulu timestamp such as "
        "2025-06-28T19:29:48.174Z; "
        "revShareExcluded 'maybe': expected true/false, 1/0, yes/no or empty"
    }


def test_a_brand_other_than_the_one_given_is_invalid() -> None:
    rows = [GOOD, GOOD | {"externalBrandId": "sportsbook-y"}]
    assert errors_of(rows, brand="casino-x") == {
        1: "externalBrandId 'sportsbook-y': expected the brand given with --brand (casino-x)"
    }
    assert errors_of(rows) == {}


def test_text_is_checked_as_written_not_as_numbers() -> None:
    assert errors_of([GOOD | {"externalId": "000123"}, GOOD | {"externalId": "1e5"}]) == {}


def test_long_values_are_cut_in_messages() -> None:
    (message,) = errors_of([GOOD | {"registrationDate": "x" * 500}]).values()
    assert len(message) < 200
    assert "…" in message
