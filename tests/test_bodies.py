from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from affelios_import.kinds.customers import Body, Customers, build_payload, encode
from affelios_import.kinds.transactions import Transactions, json_number
from affelios_import.kinds.transactions import body as transaction_body
from affelios_import.schemas import customer


def test_strings_are_sent_exactly_as_written() -> None:
    row = {
        "externalId": "000123",
        "externalBrandId": "casino-x",
        "registrationDate": "2025-06-28T19:29:48Z",
        "username": 'Zoë "Z", O\'Brien\nline two',
        "clickId": "1e5",
    }
    assert build_payload(row) == row


def test_empty_optional_values_are_left_out() -> None:
    row = {
        "externalId": "C1",
        "externalBrandId": "b",
        "registrationDate": "2025-06-28T19:29:48Z",
        "username": "",
        "country": "  ",
        "clickId": "",
        "revShareExcluded": "",
        "cpaExcluded": "   ",
    }
    assert build_payload(row) == {
        "externalId": "C1",
        "externalBrandId": "b",
        "registrationDate": "2025-06-28T19:29:48Z",
    }


def test_booleans_become_json_booleans() -> None:
    words = {"TRUE": True, " yes ": True, "1": True, "False": False, "\tno": False, "0 ": False}
    for word, value in words.items():
        body = build_payload({"revShareExcluded": word, "cpaExcluded": word})
        assert body == {"revShareExcluded": value, "cpaExcluded": value}


def test_encode_keeps_non_ascii_as_utf8() -> None:
    body: Body = {"username": "山田 zoë"}
    raw = encode(body)
    assert "山田".encode() in raw
    assert json.loads(raw) == body


# Text that JSON escapes or that strips to nothing, in any mix: quotes, backslashes,
# controls, Python's and Unicode's white space, non-ASCII.
ODD = st.text(
    st.sampled_from('a"\\\x00\x1f\n\t \x1c\x85\xa0\u2028\u3000\u200bé山\U0001f600'), max_size=6
)
WORDS = st.sampled_from(["", " ", "true", "TRUE", " yes ", "1", "False", "\tno", "0 ", "\u3000"])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {name: ODD for name in customer.STRING_FIELDS}
            | {name: WORDS for name in customer.BOOLEAN_FIELDS}
        ),
        min_size=1,
        max_size=8,
    ),
    arrow=st.booleans(),
    dropped=st.sets(st.sampled_from(customer.CONTRACT_FIELDS)),
)
def test_bodies_built_column_by_column_are_each_row_s_body(
    rows: list[dict[str, str]], arrow: bool, dropped: set[str]
) -> None:
    frame = pd.DataFrame(rows).drop(columns=list(dropped))
    if arrow:  # as the reader gives it; else text as Python objects (a workbook's)
        frame = frame.astype(pd.ArrowDtype(pa.string()))
    kind = Customers()
    expected = [kind.body({k: v for k, v in row.items() if k not in dropped}) for row in rows]
    assert kind.bodies(frame) == expected


def test_bodies_of_a_slice_of_a_column_escape_only_its_own_values() -> None:
    frame = pd.DataFrame({"username": ['say "hi"', "plain", "back\\slash", "x"]}).astype(
        pd.ArrowDtype(pa.string())
    )
    assert Customers().bodies(frame.iloc[[1, 3]]) == [b'{"username":"plain"}', b'{"username":"x"}']
    assert Customers().bodies(frame.iloc[[0, 2]]) == [
        encode({"username": 'say "hi"'}),
        encode({"username": "back\\slash"}),
    ]


GOOD_TRANSACTION = {
    "externalId": "T1",
    "externalBrandId": "casino-x",
    "externalCustomerId": "C1",
    "transactionDate": "2025-06-28T19:29:48.174Z",
}


def test_amounts_are_sent_as_json_numbers_of_exactly_the_written_value() -> None:
    body = transaction_body(
        GOOD_TRANSACTION | {"depositAmount": "19.99", "grossRevenue": "-0.10",
                            "cpaCommission": "007.50", "note": "Zoë", "label": " ",
                            "wageredAmount": ""}
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


def test_a_kind_s_bodies_are_by_default_each_row_s_body() -> None:
    rows = [GOOD_TRANSACTION | {"depositAmount": "007.50", "note": 'a "b"'}, GOOD_TRANSACTION]
    frame = pd.DataFrame(rows).fillna("").astype(pd.ArrowDtype(pa.string()))
    kind = Transactions()
    written = [{str(k): str(v) for k, v in row.items()} for row in frame.to_dict("records")]
    assert kind.bodies(frame) == [transaction_body(row) for row in written]
    assert kind.bodies(frame[[]]) == [b"{}", b"{}"]  # no field at all: each an empty body
