"""Usage without an authorization, and the meter a tool shows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from allocation.demo import DemoOrganization
from budgets.models import Policy
from budgets.selectors import pool_balance
from ledger.models import Transfer, TransferCode

pytestmark = pytest.mark.django_db
SUBJECT = "platform-eng1-claude-code"


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def record(client: APIClient, key: str = "u-1", **body: Any) -> Any:
    payload = {
        "idempotency_key": key, "subject": SUBJECT, "model": "claude-sonnet-4-5",
        "input_tokens": 1_000, "output_tokens": 100, "occurred_at": "2026-11-20T10:00:00Z",
        "tags": {"repo": "ledger"}, **body,
    }  # fmt: skip
    return client.post("/api/v1/usage", payload, format="json")


def test_usage_is_recorded_as_spend_and_replayed(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    response = record(gateway)
    again = record(gateway)
    conflict = record(gateway, output_tokens=101)

    # 1,000 x $3/M + 100 x $15/M = $0.0045
    assert response.status_code == 201
    assert {k: response.json()[k] for k in ("status", "code", "charged", "overage")} == {
        "status": "recorded", "code": "spend", "charged": usd("0.004500"),
        "overage": usd("0.000000"),
    }  # fmt: skip
    assert again.json() == response.json()
    assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")
    assert pool_balance(pool=acme.pools["platform-eng1"]).spent == 4_500


def test_usage_beyond_the_budget_is_never_dropped(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    response = record(gateway, amount="1500", model=None, input_tokens=0, output_tokens=0)

    body = response.json()
    assert (response.status_code, body["code"], body["overage"]) == (
        201,
        "overage",
        usd("1500.000000"),
    )
    assert body["available"] == usd("-500.000000")
    assert Transfer.objects.get(code=TransferCode.OVERAGE).metadata["review"] is True


def test_usage_needs_a_model_or_an_amount(gateway: APIClient) -> None:
    response = record(gateway, model=None)

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "model" in response.json()["field_errors"]


def test_balance_is_the_meter_with_the_soft_limit(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    Policy.objects.create(organization=acme.organization, soft_limit_share=Decimal("0.8"))
    record(gateway, amount="850", model=None, input_tokens=0, output_tokens=0)

    response = gateway.get("/api/v1/balance", {"subject": SUBJECT})

    assert response.json() == {
        "subject": SUBJECT, "pool": str(acme.pools["platform-eng1"]),
        "budget": usd("1000.000000"), "spent": usd("850.000000"), "reserved": usd("0.000000"),
        "available": usd("150.000000"), "soft_limit_share": "0.800", "soft_limit_reached": True,
    }  # fmt: skip
    assert gateway.get("/api/v1/balance", {"subject": "nobody"}).status_code == 404
    assert gateway.get("/api/v1/balance").json()["code"] == "invalid"
