"""The sandbox speaks the contract, checked against openapi.yaml, over real HTTP."""

from __future__ import annotations

import httpx

from etl.sandbox import Faults, Sandbox, serve_in_thread
from tests.conftest import API_KEY, RunningSandbox

BODY = {"externalId": "C1", "externalBrandId": "b", "registrationDate": "2025-06-28T19:29:48Z"}


def post(sandbox: RunningSandbox, body: object, key: str | None = API_KEY) -> httpx.Response:
    headers = {"X-Api-Key": key} if key else {}
    return httpx.post(f"{sandbox.url}/api/v1/customer", json=body, headers=headers)


def test_no_key_or_a_wrong_one_is_401(sandbox: RunningSandbox) -> None:
    assert post(sandbox, BODY, key=None).status_code == 401
    assert post(sandbox, BODY, key="nope").status_code == 401
    assert sandbox.server.customers == {}


def test_create_then_get_then_conflict(sandbox: RunningSandbox) -> None:
    created = post(sandbox, BODY | {"revShareExcluded": True, "clickId": None})
    assert created.status_code == 201
    customer = created.json()
    assert customer["externalId"] == "C1"
    assert customer["revShareExcluded"] is True
    got = httpx.get(
        f"{sandbox.url}/api/v1/customer/{customer['id']}", headers={"X-Api-Key": API_KEY}
    )
    assert got.json() == customer
    missing = httpx.get(f"{sandbox.url}/api/v1/customer/x", headers={"X-Api-Key": API_KEY})
    assert missing.status_code == 404
    assert post(sandbox, BODY).status_code == 409
    assert len(sandbox.server.customers) == 1


def test_bodies_that_break_the_contract_get_400_with_a_list_of_errors(
    sandbox: RunningSandbox,
) -> None:
    cases = [
        {k: v for k, v in BODY.items() if k != "externalId"},
        BODY | {"clickKey": "x"},  # the vendor's curl example; not a contract field
        BODY | {"revShareExcluded": "true"},
        BODY | {"registrationDate": "2025-06-28 19:29:48"},
        BODY | {"externalBrandId": ""},
        ["not", "an", "object"],
    ]
    for body in cases:
        answer = post(sandbox, body)
        assert answer.status_code == 400, body
        errors = answer.json()["errors"]
        assert isinstance(errors, list) and errors
    assert sandbox.server.customers == {}


def test_faults_on_demand() -> None:
    faults = Faults(fail_rate=0.3, throttle_rate=0.3, retry_after="2", seed=7)
    server = Sandbox(api_key=API_KEY, faults=faults)
    with serve_in_thread(server) as url, httpx.Client() as client:
        codes = [
            client.post(
                f"{url}/api/v1/customer",
                json=BODY | {"externalId": str(i)},
                headers={"X-Api-Key": API_KEY},
            )
            for i in range(200)
        ]
    by_code = {c.status_code for c in codes}
    assert by_code == {201, 429, 500, 503}
    throttled = [c for c in codes if c.status_code == 429]
    assert 30 < len(throttled) < 90
    assert all(c.headers["Retry-After"] == "2" for c in throttled)
    assert len(server.customers) == sum(c.status_code == 201 for c in codes)
