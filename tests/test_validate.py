from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affelios_import import kinds
from affelios_import.input.read import TEXT
from affelios_import.input.validate import near_amount, row_errors
from affelios_import.kinds.base import Kind
from affelios_import.sandbox import contract_schema
from affelios_import.schemas import customer, transaction

CUSTOMERS, TRANSACTIONS = kinds.get("customers"), kinds.get("transactions")
EVERY_KIND = [pytest.param(kinds.get(name), id=name) for name in kinds.NAMES]
CONTRACT = {"customers": "CustomerCreate", "transactions": "TransactionCreate"}
# A good row of each kind: its required fields only.
GOOD_ROWS = {
    "customers": {
        "externalId": "C1",
        "externalBrandId": "casino-x",
        "registrationDate": "2025-06-28T19:29:48.174Z",
    },
    "transactions": {
        "externalId": "T1",
        "externalBrandId": "casino-x",
        "externalCustomerId": "C1",
        "transactionDate": "2025-06-28T19:29:48.174Z",
    },
}
GOOD = GOOD_ROWS["customers"]


def errors_of(
    rows: list[dict[str, str]], *, brand: str | None = None, kind: Kind = CUSTOMERS
) -> dict[int, str]:
    frame = pd.DataFrame(rows, dtype=str).fillna("")
    found = row_errors(frame, brand=brand, schema=kind.schema)
    return dict(zip(found.index, found["error"], strict=True))


def test_schema_fields_are_the_contracts() -> None:
    contract = contract_schema("CustomerCreate")
    assert set(customer.CONTRACT_FIELDS) == set(contract["properties"])
    assert set(customer.REQUIRED_FIELDS) == set(contract["required"])
    assert {f for f, p in contract["properties"].items() if p["type"] == "boolean"} == set(
        customer.BOOLEAN_FIELDS
    )
    assert {f for f, p in contract["properties"].items() if p["type"] == "string"} == set(
        customer.STRING_FIELDS
    )
    contract = contract_schema("TransactionCreate")
    assert set(transaction.CONTRACT_FIELDS) == set(contract["properties"])
    assert {f for f, p in contract["properties"].items() if p["type"] == "number"} == set(
        transaction.AMOUNT_FIELDS
    )


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_each_kinds_fields_are_its_contracts(kind: Kind) -> None:
    contract = contract_schema(CONTRACT[kind.name])
    assert set(kind.fields) == set(contract["properties"])
    assert set(contract.get("required", [])) <= set(kind.required)
    assert errors_of([GOOD_ROWS[kind.name]], kind=kind) == {}


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


def _real_zulu(text: str) -> bool:
    """The reference: the contract's shape (ASCII digits), and a moment Python's dates
    can hold, year 0 excluded."""
    if not re.fullmatch(customer.ZULU_PATTERN, text, flags=re.ASCII):
        return False
    spans = ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))
    year, month, day, hour, minute, second = (int(text[a:b]) for a, b in spans)
    try:
        dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


_FIELD = st.integers(0, 99).map(lambda n: f"{n:02d}")
_SHAPED = st.builds(
    lambda y, mo, d, h, mi, s, frac: f"{y:04d}-{mo}-{d}T{h}:{mi}:{s}{frac}Z",
    st.sampled_from([0, 1, 4, 100, 1600, 1677, 1900, 2000, 2024, 2025, 2262, 9999])
    | st.integers(0, 9999),
    st.sampled_from(["00", "01", "02", "12", "13"]) | _FIELD,
    st.sampled_from(["00", "01", "28", "29", "30", "31", "32"]) | _FIELD,
    st.sampled_from(["00", "23", "24"]) | _FIELD,
    st.sampled_from(["00", "59", "60"]) | _FIELD,
    st.sampled_from(["00", "59", "60", "61"]) | _FIELD,
    st.sampled_from(["", ".1", ".123456789", ".1234567890", "."]),
)


def test_the_zulu_check_knows_every_edge_of_the_calendar() -> None:
    """Every edge at once, in one column: years 0, 1, 1900, 2000, 2024 and 9999; months
    and days around their ends; the last second of a day and the ones after it."""
    values = [
        f"{year:04d}-{month}-{day}T{clock}Z"
        for year in (0, 1, 1677, 1900, 2000, 2024, 2025, 2262, 9999)
        for month in ("00", "01", "02", "04", "12", "13")
        for day in ("00", "01", "28", "29", "30", "31", "32")
        for clock in ("23:59:59", "24:00:00", "23:60:00", "23:59:60", "00:00:00.999999999")
    ]
    found = customer.zulu(pd.Series(values, dtype=TEXT))
    assert found.tolist() == [_real_zulu(v) for v in values]
    assert 0 < sum(found) < len(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SHAPED | st.text(max_size=25), min_size=1, max_size=40))
def test_the_zulu_check_agrees_with_pythons_dates(values: list[str]) -> None:
    """Column-wise, the check says of every value what Python's dates say of it alone:
    years 1 to 9999 (beyond pandas' nanoseconds), leap years, no 60th second."""
    found = customer.zulu(pd.Series(values, dtype=TEXT))
    assert found.tolist() == [_real_zulu(v) for v in values]


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
    found = row_errors(frame, brand=None, schema=CUSTOMERS.schema)
    assert found["error_kind"].tolist() == [
        "required_missing:externalId; date_not_real:registrationDate"
    ]
    assert found["error"].tolist()[0].endswith("'2025-02-30T10:00:00Z': not a real date")


@pytest.mark.parametrize(
    ("kind", "field"),
    [pytest.param(kinds.get(name), field, id=f"{name}-{field}")
     for name in kinds.NAMES for field in kinds.get(name).required],
)  # fmt: skip
@pytest.mark.parametrize("value", ["", "   "])
def test_required_fields_must_not_be_blank(kind: Kind, field: str, value: str) -> None:
    (message,) = errors_of([GOOD_ROWS[kind.name] | {field: value}], kind=kind).values()
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


# Amounts (transactions): exact decimals written with a point, and the fix shown.


def amount_errors(**cells: str) -> list[str]:
    frame = pd.DataFrame([GOOD_ROWS["transactions"] | cells], dtype=TEXT)
    found = row_errors(frame, brand=None, schema=TRANSACTIONS.schema)
    return [] if found.empty else str(found["error"].iloc[0]).split("; ")


@pytest.mark.parametrize(
    "amount",
    ["19.99", "-12.50", "0", "007.5", " 3.25 ", "", "1000000", "9" * 18 + "." + "9" * 18],
)
def test_a_decimal_written_with_a_point_is_an_amount(amount: str) -> None:
    assert amount_errors(depositAmount=amount) == []


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
        # Ten bytes that made 100 MB of suggestion, or a MemoryError
        ("1e99999999", "depositAmount '1e99999999': expected a decimal number written "
         "with a point, such as 1234.50 or -12.5"),
        ("1e999999999", "depositAmount '1e999999999': expected a decimal number written "
         "with a point, such as 1234.50 or -12.5"),
        ("1" * 19, f"depositAmount '{'1' * 19}': expected at most 18 digits before the "
         "point and 18 after"),
        ("0." + "5" * 19, f"depositAmount '0.{'5' * 19}': expected at most 18 digits "
         "before the point and 18 after"),
    ],
)  # fmt: skip
def test_other_ways_of_writing_an_amount_are_invalid_and_show_how(
    amount: str, message: str
) -> None:
    assert amount_errors(depositAmount=amount) == [message]


@pytest.mark.parametrize(
    ("text", "fix"),
    [("12,5", "12.5"), ("1,234.50", "1234.50"), ("1.234.567,00", "1234567.00"),
     ("€12.50", "12.50"), ("12.50 EUR", "12.50"), ("+5", "5"), (".5", "0.5"),
     ("1,234", None), ("abc", None), ("12.50", None)],
)  # fmt: skip
def test_near_amount_suggests_one_likely_meaning_or_none(text: str, fix: str | None) -> None:
    assert near_amount(text) == fix


def test_every_problem_of_a_transaction_in_one_message() -> None:
    found = amount_errors(externalCustomerId="", transactionDate="28/06/2025", grossRevenue="x")
    assert [m.split(":")[0] for m in found] == [
        "externalCustomerId empty",
        "transactionDate '28/06/2025'",
        "grossRevenue 'x'",
    ]


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "object"])
def test_a_nul_or_a_cut_mark_is_found_however_the_column_is_held(dtype: str) -> None:
    """The cell checks skip a column whose Arrow buffer holds neither (one search of
    memory instead of two string operations a cell); they must still find both, in any
    chunk of a column, and in a column not held by Arrow."""
    import pyarrow as pa

    from affelios_import.input.sheet import CUT_MARK
    from affelios_import.plan import _cell_faults

    first = pd.Series(["a", "b", "c"], dtype=dtype)
    nul = pd.Series(["x", "y\x00z", "w"], dtype=dtype)
    cut = pd.Series(["p", "q", "r" + CUT_MARK], dtype=dtype)
    frame = pd.DataFrame({"first": first, "nul": nul, "cut": cut}).iloc[1:]  # a slice
    found = _cell_faults(frame, None)
    assert found[0][0] == "nul_byte:nul" and found[1][0] == "cell_cut:cut"
    chunked = pd.Series(
        pd.arrays.ArrowExtensionArray(pa.chunked_array([["a"], ["b\x00"]])), name="two"
    )
    assert _cell_faults(chunked.to_frame(), None)[1][0] == "nul_byte:two"
    assert _cell_faults(frame[["first"]], None) == {}


_AWKWARD = st.sampled_from(
    ["", " ", "\t", "\u00a0", "\u3000", "\x1f", "\x01", "x", "X", "é", "日", "TRUE", "yes"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_AWKWARD, max_size=4).map("".join) | st.text(max_size=8), min_size=1))
def test_presence_and_booleans_are_judged_as_the_values_stripped_say(values: list[str]) -> None:
    """The quick paths (a value's first byte; an exact word) agree with stripping every
    value: white space of every kind, controls, letters of several bytes."""
    column = pd.Series(values, dtype=TEXT)
    stripped = column.str.strip()
    assert customer.present(column).tolist() == (stripped != "").tolist()
    words = customer.TRUE_WORDS | customer.FALSE_WORDS | {""}
    expected = stripped.str.lower().isin(words).tolist()
    assert customer._boolean_or_empty(column).tolist() == expected


def test_a_check_that_breaks_stops_the_rows_rather_than_passing_them() -> None:
    """pandera reports a check that raised as a failure of no row: taken as such, every
    row passed it (a check's bug let a value it never looked at through)."""
    import pandera.pandas as pa

    def broken(s: pd.Series) -> pd.Series:
        raise ValueError("assignment destination is read-only")

    def schema(brand: str | None) -> pa.DataFrameSchema:
        return pa.DataFrameSchema({"cpaExcluded": pa.Column(None, pa.Check(broken, error="x"))})

    frame = pd.DataFrame([GOOD | {"cpaExcluded": "maybe"}], dtype=str)
    with pytest.raises(RuntimeError, match=r"the check of cpaExcluded .* read-only"):
        row_errors(frame, brand=None, schema=schema)


def test_presence_is_judged_as_python_strips_every_character() -> None:
    """Arrow's white space is Python's (`str.strip`), character by character: a value
    of spaces around any one of them is blank to both, or to neither."""
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    values = [f" {c} " for c in characters]
    found = customer.filled(pa.array(values, type=pa.string()))
    assert found.tolist() == [bool(value.strip()) for value in values]
