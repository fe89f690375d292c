from __future__ import annotations

import json
from decimal import Decimal

from affelios_import.kinds.customers import Body, build_payload, encode
from affelios_import.kinds.transactions import body as transaction_body
from affelios_import.kinds.transactions import json_number


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
