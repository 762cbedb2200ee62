"""The Python client against the real service over HTTP (pytest-django's live server)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from allocation.demo import DemoOrganization
from budgets.services import gateway_token_create
from integrations.client import (
    AsyncBudgetLedgerClient,
    BudgetLedgerClient,
    BudgetLedgerError,
    Denied,
    Unreachable,
)

pytestmark = pytest.mark.django_db(transaction=True)
SUBJECT = "platform-eng1-claude-code"


@pytest.fixture
def token(acme: DemoOrganization) -> str:
    return gateway_token_create(organization=acme.organization, name="client")[1]


def test_authorize_settle_void_round_trip(live_server: Any, token: str) -> None:
    client = BudgetLedgerClient(live_server.url, token=token)

    held = client.authorize(
        idempotency_key="c-1", subject=SUBJECT, model="claude-sonnet-4-5", input_tokens=10_000,
        max_output_tokens=1_000, tags={"repo": "x"},
    )  # fmt: skip
    settled = client.settle(held.id, input_tokens=4_000, cached_input_tokens=3_000,
                            output_tokens=200)  # fmt: skip
    other = client.authorize(idempotency_key="c-2", subject=SUBJECT, model="claude-sonnet-4-5",
                             amount=Decimal("0.25"))  # fmt: skip
    voided = client.void(other.id)
    client.close()

    assert (held.decision, held.reserved, held.model) == (
        "allow",
        Decimal("0.045"),
        "claude-sonnet-4-5",
    )
    assert (settled.status, settled.charged, settled.released) == (
        "settled", Decimal("0.0069"), Decimal("0.0381"),
    )  # fmt: skip
    assert (voided.status, voided.released) == ("voided", Decimal("0.25"))


def test_denials_and_errors_raise_typed_exceptions(live_server: Any, token: str) -> None:
    client = BudgetLedgerClient(live_server.url, token=token)

    with pytest.raises(Denied) as denied:
        client.authorize(idempotency_key="big", subject=SUBJECT, model="claude-sonnet-4-5",
                         amount=Decimal("5000"))  # fmt: skip
    with pytest.raises(BudgetLedgerError) as unknown:
        client.authorize(idempotency_key="u", subject=SUBJECT, model="gpt-99")
    bad_token = BudgetLedgerClient(live_server.url, token="nope")
    with pytest.raises(BudgetLedgerError) as unauthenticated:
        bad_token.void("00000000-0000-0000-0000-000000000000")

    assert (denied.value.code, denied.value.available) == ("budget_exhausted", Decimal("1000"))
    assert (unknown.value.status, unknown.value.code) == (422, "unknown_model")
    assert unauthenticated.value.status == 401


def test_an_unreachable_ledger_raises_unreachable() -> None:
    client = BudgetLedgerClient("http://127.0.0.1:9", token="t")

    with pytest.raises(Unreachable):
        client.authorize(idempotency_key="k", subject="s", model="m")


def test_the_async_client_does_the_same(live_server: Any, token: str) -> None:
    async def run() -> tuple[str, Decimal]:
        client = AsyncBudgetLedgerClient(live_server.url, token=token)
        held = await client.authorize(idempotency_key="a-1", subject=SUBJECT,
                                      model="claude-haiku-4-5", input_tokens=1_000)  # fmt: skip
        settled = await client.settle(held.id, input_tokens=1_000, output_tokens=10)
        await client.aclose()
        return settled.status, settled.charged

    # 1,000 x $1/M + 10 x $5/M = $0.00105
    assert asyncio.run(run()) == ("settled", Decimal("0.00105"))
