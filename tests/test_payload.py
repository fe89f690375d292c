from __future__ import annotations

import json

from affelios_import.kinds.customers import Body, build_payload, encode


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
