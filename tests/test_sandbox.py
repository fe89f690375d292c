"""The sandbox speaks the contract, checked against openapi.yaml, over real HTTP."""

from __future__ import annotations

import httpx

from affelios_import.sandbox import Faults, Sandbox, serve_in_thread
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


TRANSACTION = {
    "externalId": "T1",
    "externalBrandId": "b",
    "externalCustomerId": "C1",
    "transactionDate": "2025-06-28T19:29:48Z",
}


def post_transaction(sandbox: RunningSandbox, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/api/v1/transaction",
        content=content,
        headers={"X-Api-Key": API_KEY, "Content-Type": "application/json"},
    )


def test_a_transaction_is_queued_with_its_amounts_exact_and_a_repeat_counts_again(
    sandbox: RunningSandbox,
) -> None:
    body = b'{"externalId":"T1","externalBrandId":"b","depositAmount":19.99,"grossRevenue":-0.10}'
    first = post_transaction(sandbox, body)
    assert (first.status_code, first.content) == (202, b"")
    assert post_transaction(sandbox, body).status_code == 202  # the dangerous case
    store = sandbox.server.transactions
    assert len(store) == 2
    assert str(store[0]["depositAmount"]) == "19.99"  # not 19.989999999999998
    assert str(store[0]["grossRevenue"]) == "-0.10"
    listed = httpx.get(f"{sandbox.url}/_sandbox/transactions").json()
    assert [t["externalId"] for t in listed] == ["T1", "T1"]


def test_a_transaction_against_the_contract_is_400_and_not_counted(
    sandbox: RunningSandbox,
) -> None:
    for wrong in (
        TRANSACTION | {"depositAmount": "19.99"},  # a string, not a number
        TRANSACTION | {"depositAmount": True},
        TRANSACTION | {"transactionDate": "28/06/2025"},
        TRANSACTION | {"customerId": "C1"},  # not a contract field
    ):
        answer = httpx.post(
            f"{sandbox.url}/api/v1/transaction", json=wrong, headers={"X-Api-Key": API_KEY}
        )
        assert answer.status_code == 400, wrong
        assert answer.json()["errors"]
    assert post_transaction(sandbox, b"not json").status_code == 400
    assert sandbox.server.transactions == []


def test_the_faults_apply_to_transactions_too() -> None:
    server = Sandbox(api_key=API_KEY, faults=Faults(fail_rate=1.0, seed=1))
    with serve_in_thread(server) as url:
        answer = httpx.post(
            f"{url}/api/v1/transaction", json=TRANSACTION, headers={"X-Api-Key": API_KEY}
        )
    assert answer.status_code in (500, 503)
    assert server.transactions == []


def test_the_sliding_and_fixed_window_limiters_allow_what_they_state() -> None:
    """The bench's pacing matrix needs the limiter shapes APIs use beside a token bucket
    (issue 26, item 4), each stating its limit as the IETF draft's fields."""
    from affelios_import.sandbox import FixedWindow, SlidingWindow

    now = [100.25]
    sliding = SlidingWindow(3, clock=lambda: now[0])
    assert [sliding.take() for _ in range(4)] == [True, True, True, False]
    assert sliding.fields()["RateLimit"] == '"default";r=0;t=1'  # rounded up, as sent
    assert sliding.fields()["RateLimit-Policy"] == '"default";q=3;w=1'
    now[0] = 101.0  # not yet a second after the first
    assert not sliding.take()
    now[0] = 101.3  # a second after: all three left the window
    assert [sliding.take() for _ in range(4)] == [True, True, True, False]
    fixed = FixedWindow(3, clock=lambda: now[0])
    assert [fixed.take() for _ in range(4)] == [True, True, True, False]
    assert fixed.fields()["RateLimit"] == '"default";r=0;t=1'
    now[0] = 102.0  # the next whole second: a new quota at once
    assert fixed.fields()["RateLimit"] == '"default";r=3;t=1'
    assert [fixed.take() for _ in range(4)] == [True, True, True, False]
