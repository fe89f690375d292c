from __future__ import annotations

import pandas as pd
import pytest

from etl.columns import resolve, to_contract
from etl.errors import InputError


def test_headers_match_regardless_of_case_spaces_and_separators() -> None:
    header = ["External ID", "external_brand_id", "REGISTRATIONDATE", "Click Key", "notes"]
    columns = resolve(header, brand=None, source="f.csv")
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
        resolve(header, brand=None, source="f.csv")
    assert (
        str(caught.value)
        == "f.csv: columns 'clickId', 'clickKey' all mean clickId; keep one of them, "
        "or leave one out with --map 'clickKey=-'"
    )


def test_a_missing_required_column_lists_what_was_found_and_expected() -> None:
    with pytest.raises(InputError) as caught:
        resolve(["externalId", "name"], brand=None, source="f.csv")
    assert str(caught.value) == (
        "f.csv: no column for externalBrandId, registrationDate (or give --brand); "
        "columns found: externalId, name; "
        "expected: externalId, externalBrandId, registrationDate"
    )


def test_brand_fills_empty_brands_and_stands_in_for_a_missing_column() -> None:
    raw = pd.DataFrame({"externalId": ["1", "2"], "externalBrandId": ["", "other"]})
    raw["registrationDate"] = "2025-06-28T19:29:48Z"
    columns = resolve(list(raw.columns), brand="x", source="f.csv")
    assert list(to_contract(raw, columns, brand="x")["externalBrandId"]) == ["x", "other"]

    no_brand = raw.drop(columns="externalBrandId")
    columns = resolve(list(no_brand.columns), brand="x", source="f.csv")
    assert list(to_contract(no_brand, columns, brand="x")["externalBrandId"]) == ["x", "x"]
    assert "externalBrandId" not in no_brand.columns  # the original rows are untouched
