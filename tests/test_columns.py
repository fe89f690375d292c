from __future__ import annotations

import pandas as pd
import pytest

from affelios_import.errors import InputError
from affelios_import.input.columns import normalise, parse_mapping, resolve, to_contract
from affelios_import.input.validate import row_errors
from affelios_import.kinds import NAMES, get
from affelios_import.kinds.base import Kind

CUSTOMERS, TRANSACTIONS = get("customers"), get("transactions")
EVERY_KIND = [pytest.param(get(name), id=name) for name in NAMES]


def test_headers_match_regardless_of_case_spaces_and_separators() -> None:
    header = ["External ID", "external_brand_id", "REGISTRATIONDATE", "Click Key", "notes"]
    columns = resolve(header, brand=None, source="f.csv", kind=CUSTOMERS)
    assert columns.to_field == {
        "External ID": "externalId",
        "external_brand_id": "externalBrandId",
        "REGISTRATIONDATE": "registrationDate",
        "Click Key": "clickId",
    }
    assert columns.unused == ["notes"]


def test_clickkey_and_clickid_together_are_refused() -> None:
    header = ["externalId", "externalBrandId", "registrationDate", "clickId", "clickKey"]
    with pytest.raises(InputError) as caught:
        resolve(header, brand=None, source="f.csv", kind=CUSTOMERS)
    assert (
        str(caught.value)
        == "f.csv: columns 'clickId' (#4), 'clickKey' (#5) all mean clickId; keep one of them, "
        "or leave one out with --map 'clickKey=-'; nothing was sent"
    )


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_a_missing_required_column_lists_what_was_found_and_expected(kind: Kind) -> None:
    with pytest.raises(InputError) as caught:
        resolve(["externalId", "name"], brand=None, source="f.csv", kind=kind)
    missing = [f for f in kind.required if f != "externalId"]
    assert str(caught.value) == (
        f"f.csv: no column for {', '.join(missing)} (or give --brand); "
        "columns found: externalId, name; "
        f"expected: {', '.join(kind.required)}; nothing was sent"
    )


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_each_kinds_own_names_and_aliases_map_to_its_fields(kind: Kind) -> None:
    columns = resolve(list(kind.required), brand=None, source="f.csv", kind=kind)
    assert columns.to_field == {field: field for field in kind.required}
    own = {normalise(f): f for f in kind.fields}
    for alias, field in kind.aliases.items():
        header = [*(f for f in kind.required if f != field), alias]
        mapped = resolve(header, brand="b", source="f.csv", kind=kind).to_field[alias]
        assert mapped == own.get(alias, field)  # the contract's own name comes first


def test_brand_fills_empty_brands_and_stands_in_for_a_missing_column() -> None:
    raw = pd.DataFrame({"externalId": ["1", "2"], "externalBrandId": ["", "other"]})
    raw["registrationDate"] = "2025-06-28T19:29:48Z"
    columns = resolve(list(raw.columns), brand="x", source="f.csv", kind=CUSTOMERS)
    assert list(to_contract(raw, columns, brand="x")["externalBrandId"]) == ["x", "other"]

    no_brand = raw.drop(columns="externalBrandId")
    columns = resolve(list(no_brand.columns), brand="x", source="f.csv", kind=CUSTOMERS)
    assert list(to_contract(no_brand, columns, brand="x")["externalBrandId"]) == ["x", "x"]
    assert "externalBrandId" not in no_brand.columns  # the original rows are untouched


def test_a_repeated_header_name_is_told_apart_by_position() -> None:
    header = ["externalId", "externalBrandId", "registrationDate", "externalId"]
    with pytest.raises(InputError) as caught:
        resolve(header, brand=None, source="f.csv", kind=CUSTOMERS)
    assert str(caught.value) == (
        "f.csv: columns 'externalId' (#1), 'externalId' (#4) all mean externalId; "
        "keep one of them, or leave one out with --map '#4=-'; nothing was sent"
    )
    with pytest.raises(InputError, match=r"which is the name of columns #1 and #4; name one"):
        resolve(header, brand=None, source="f.csv", kind=CUSTOMERS, mapping={"externalId": "-"})
    columns = resolve(
        header, brand=None, source="f.csv", kind=CUSTOMERS, mapping=parse_mapping(["#4=-"])
    )
    assert columns.to_field == {
        "externalId": "externalId",
        "externalBrandId": "externalBrandId",
        "registrationDate": "registrationDate",
    }
    assert columns.unused == ["externalId.1"]


def test_map_names_columns_with_equals_signs_and_surrounding_spaces() -> None:
    header = ["id=key", " Brand ", "registrationDate"]
    mapping = parse_mapping(["id=key=externalId", "Brand=externalBrandId"])
    assert mapping == {"id=key": "externalId", "Brand": "externalBrandId"}
    columns = resolve(header, brand=None, source="f.csv", kind=CUSTOMERS, mapping=mapping)
    assert columns.to_field == {
        "id=key": "externalId",
        " Brand ": "externalBrandId",
        "registrationDate": "registrationDate",
    }
    exact = resolve(
        header,
        brand=None,
        source="f.csv",
        kind=CUSTOMERS,
        mapping=mapping | {" Brand ": "externalBrandId"},
    )
    assert exact.to_field[" Brand "] == "externalBrandId"
    with pytest.raises(InputError, match="names column #9 but the file has 3 columns"):
        resolve(header, brand=None, source="f.csv", kind=CUSTOMERS, mapping={"#9": "clickId"})


BASE = ["externalId", "externalBrandId", "registrationDate"]
# Each kind's required columns: a column of a guarded name beside them is refused.
REQUIRED = {kind.name: list(kind.required) for kind in (CUSTOMERS, TRANSACTIONS)}


@pytest.mark.parametrize(
    ("kind", "column", "field"),
    [
        (CUSTOMERS, "brand_name", "externalBrandId"),
        (CUSTOMERS, "Sub Brand", "externalBrandId"),
        (CUSTOMERS, "Click Ref", "clickId"),
        (CUSTOMERS, "btag", "clickId"),
        (CUSTOMERS, "Affiliate ID", "clickId"),
        (CUSTOMERS, "Signup Date", "registrationDate"),
        (CUSTOMERS, "registered_at", "registrationDate"),
        (TRANSACTIONS, "Brand Code", "externalBrandId"),
        (TRANSACTIONS, "btag", "clickKey"),
        (TRANSACTIONS, "Player ID", "externalCustomerId"),
        (TRANSACTIONS, "Booking Date", "transactionDate"),
        (TRANSACTIONS, "GGR", "depositAmount"),
        (TRANSACTIONS, "Deposit", "depositAmount"),
    ],
    ids=lambda value: value.name if isinstance(value, Kind) else None,
)
def test_a_column_a_reader_takes_for_a_field_is_not_left_unsent(
    kind: Kind, column: str, field: str
) -> None:
    header = [*REQUIRED[kind.name], column]
    with pytest.raises(InputError) as caught:
        resolve(header, brand="b", source="f.csv", kind=kind)
    assert str(caught.value) == (
        f"f.csv: column {column!r} (#{len(header)}) looks like an API field but is sent "
        f"nowhere: say what it is, --map '{column}={field}' (or another field), or leave it "
        f"out, --map '{column}=-'; nothing was sent"
    )
    # Either way out works.
    left_out = resolve(header, brand="b", source="f", kind=kind, mapping={column: "-"})
    assert left_out.unused == [column]


@pytest.mark.parametrize("column", ["signup_channel", "registration_ip", "notes", "Country Name"])
def test_other_columns_are_kept_and_not_sent(column: str) -> None:
    assert resolve([*BASE, column], brand=None, source="f.csv", kind=CUSTOMERS).unused == [column]


def test_the_mapping_is_described_in_one_line() -> None:
    header = ["External ID", "Registration Date", "Shop", "Click Key", "note"]
    columns = resolve(header, brand="casino-x", source="f", kind=CUSTOMERS, mapping={"Shop": "-"})
    assert columns.describe(brand="casino-x") == (
        "columns: 'External ID' → externalId, 'Registration Date' → registrationDate, "
        "'Click Key' → clickId; not sent: Shop, note; externalBrandId: --brand casino-x"
    )


@pytest.mark.parametrize("kind", [CUSTOMERS, TRANSACTIONS], ids=lambda k: k.name)
@pytest.mark.parametrize("column", ["Brand", "Brand ID", "brand_id", "BRAND-ID"])
def test_a_brand_column_is_the_brand(kind: Kind, column: str) -> None:
    """An export with a `Brand` column and --brand stopped (exit 2) although every row
    named that brand: such a column is externalBrandId, as `External ID` is externalId."""
    header = [c if c != "externalBrandId" else column for c in REQUIRED[kind.name]]
    columns = resolve(header, brand="b", source="f.csv", kind=kind)
    if kind is CUSTOMERS and normalise(column) == "brandid":
        # The contract has a customer field of that name: the contract wins.
        assert columns.to_field[column] == "brandId"
        return
    assert columns.to_field[column] == "externalBrandId"
    both = [*REQUIRED[kind.name], column]  # two columns for one field: say which
    with pytest.raises(InputError, match="all mean externalBrandId"):
        resolve(both, brand="b", source="f.csv", kind=kind)


def test_every_problem_of_a_header_is_said_at_once_with_the_close_names() -> None:
    """Mapping problems came one a run, with no suggestion of a close name."""
    header = ["External ID", "Brand Name", "Registred", "clickId", "click_key"]
    with pytest.raises(InputError) as caught:
        resolve(header, brand=None, source="f.csv", kind=CUSTOMERS)
    said = str(caught.value)
    assert said.startswith("f.csv: columns 'clickId' (#4), 'click_key' (#5) all mean clickId")
    assert "column 'Brand Name' (#2) looks like an API field but is sent nowhere" in said
    assert "no column for externalBrandId, registrationDate (or give --brand)" in said
    assert said.endswith(
        "is 'Registred' registrationDate? --map 'Registred=registrationDate'; nothing was sent"
    )


@pytest.mark.parametrize("column", ["Registered", "Registration", "registration_dt"])
def test_a_column_named_like_the_field_is_offered_whichever_is_longer(column: str) -> None:
    """`Registered` got no hint for registrationDate: difflib's ratio, taken one way
    round only, put it at 0.54."""
    with pytest.raises(InputError) as caught:
        resolve(
            ["externalId", "externalBrandId", column], brand=None, source="f.csv", kind=CUSTOMERS
        )
    assert f"is {column!r} registrationDate? --map '{column}=registrationDate'" in str(caught.value)


def test_a_message_names_the_column_as_the_file_calls_it() -> None:
    """`registrationDate` was named when the column is `Registered`."""
    columns = resolve(
        ["externalId", "externalBrandId", "Registered"], brand=None, source="f.csv",
        kind=CUSTOMERS, mapping={"Registered": "registrationDate"},
    )  # fmt: skip
    assert columns.labels == {"registrationDate": "column 'Registered' (registrationDate)"}
    raw = pd.DataFrame(
        {"externalId": ["C1"], "externalBrandId": ["b"], "Registered": ["28/06/2025"]},
        dtype="string[pyarrow]",
    )
    frame = to_contract(raw, columns, brand=None)
    found = row_errors(frame, brand=None, schema=CUSTOMERS.schema, labels=columns.labels)
    assert (
        found["error"]
        .iloc[0]
        .startswith(
            "column 'Registered' (registrationDate) '28/06/2025': expected an ISO-8601 Zulu"
        )
    )
    assert found["error_kind"].iloc[0] == "date_not_zulu:registrationDate"  # codes: fields
