"""The gateway's one-statement authorize and settle (budgets/migrations/0005) on PostgreSQL.

Outside a test transaction (``transaction=True``) the gateway takes its fast path; the same
calls with the fast path switched off take the ordinary path. Both must write the same books.
"""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from allocation.demo import DOLLAR, DemoOrganization
from budgets.models import Authorization, Policy
from ledger.models import Account, Transfer
from tests.api.test_authorizations import authorize, settle
from tests.conftest import NOW

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]
FAST, ORDINARY = "platform-eng1", "platform-eng2"  # two engineers' pools of $1,000 each


def ask(client: APIClient, engineer: str, key: str, **body: Any) -> Any:
    return authorize(client, key=f"{engineer}-{key}", subject=f"{engineer}-claude-code", **body)


def scenario(client: APIClient, engineer: str) -> list[tuple[int, Any]]:
    """Every outcome the fast path serves or hands over, one after another."""
    answers = []

    def record(response: Any) -> Any:
        body = response.json()
        answers.append((response.status_code, {k: v for k, v in body.items() if k != "id"}))
        return body

    held = record(ask(client, engineer, "tokens"))
    record(settle(client, held["id"], input_tokens=5_000, cached_input_tokens=1_000,
                  output_tokens=200))  # fmt: skip
    record(settle(client, held["id"], input_tokens=5_000, cached_input_tokens=1_000,
                  output_tokens=200))  # a replay  # fmt: skip
    exact = record(ask(client, engineer, "exact", amount="1.25"))
    record(settle(client, exact["id"], amount="1.25"))
    over = record(ask(client, engineer, "over", amount="0.50"))
    record(settle(client, over["id"], amount="0.75"))  # above the reservation: overage path
    record(ask(client, engineer, "exact", amount="1.25"))  # a replay of an allow
    record(ask(client, engineer, "exact", amount="9.99"))  # a conflict
    record(ask(client, engineer, "too-much", amount="5000"))  # a denial
    voided = record(ask(client, engineer, "voided", amount="2"))
    record(client.post(f"/api/v1/authorizations/{voided['id']}/void"))
    record(settle(client, voided["id"], amount="1"))  # settling a voided one
    record(ask(client, engineer, "unknown", model="no-such-model"))
    return answers


def books(engineer: str, acme: DemoOrganization) -> dict[str, Any]:
    pool = acme.pools[engineer]
    authorizations = Authorization.objects.filter(pool=pool).order_by("idempotency_key")
    transfers = Transfer.objects.filter(debit_account=pool.account_id).order_by("id")
    accounts = Account.objects.filter(pk__in=[pool.account_id, pool.spend_account_id])
    return {
        "authorizations": [
            (a.idempotency_key.removeprefix(engineer), a.status, a.decision, a.code, a.model,
             a.reserved, a.available_at_decision, a.charged, a.released, a.overage,
             a.cost_at_requested_model, a.usage, a.tags, a.input_tokens, a.max_output_tokens,
             a.hold_id is not None, a.settled_at is not None, a.expires_at is not None)
            for a in authorizations
        ],
        "transfers": [
            (t.amount, t.code, t.phase, t.actor, t.pending_id is not None,
             sorted(t.metadata), t.idempotency_namespace)
            for t in transfers
        ],
        "accounts": sorted(
            (a.pk == pool.account_id, a.credits_posted, a.debits_posted, a.credits_pending,
             a.debits_pending, a.overage_posted)
            for a in accounts
        ),
    }  # fmt: skip


def test_the_fast_path_writes_the_same_books_as_the_ordinary_path(
    gateway: APIClient, acme: DemoOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    with time_machine.travel(NOW, tick=False):
        fast_answers = scenario(gateway, FAST)
        with monkeypatch.context() as patched:
            patched.setattr("budgets.gateway.fast_path_available", lambda: False)
            ordinary_answers = scenario(gateway, ORDINARY)

    assert fast_answers == ordinary_answers
    assert books(FAST, acme) == books(ORDINARY, acme)
    assert [status for status, _ in fast_answers] == [
        201, 200, 200, 201, 200, 201, 200, 201, 409, 402, 201, 200, 409, 422
    ]  # fmt: skip


def test_a_clean_authorize_is_one_statement_and_a_clean_settle_two(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    ask(gateway, FAST, "warm", input_tokens=1, max_output_tokens=1)  # caches the price too
    with CaptureQueriesContext(connection) as authorizing:
        held = ask(gateway, FAST, "counted", input_tokens=1_000, max_output_tokens=100).json()
    with CaptureQueriesContext(connection) as settling:
        settled = settle(gateway, held["id"], input_tokens=900, output_tokens=50).json()

    assert [q["sql"][:37] for q in authorizing.captured_queries] == [
        "SELECT * FROM budgets_fast_authorize("
    ]
    assert len(settling) == 2, [q["sql"][:60] for q in settling.captured_queries]
    authorization = Authorization.objects.get(pk=held["id"])
    # 900 x $3/M + 50 x $15/M = $0.003450 of $0.004500 reserved
    assert (authorization.status, authorization.charged, authorization.released) == (
        "settled", 3_450, 1_050,
    )  # fmt: skip
    # $1,000 - the warm-up still held ($0.000018) - $0.003450
    assert settled["available"] == {"amount": "999.996532", "currency": "USD"}


def test_a_pool_past_its_soft_limit_is_answered_by_the_ordinary_path(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    Policy.objects.create(
        organization=acme.organization, pool=acme.pools[FAST], soft_limit_share="0.5",
        downgrade_map={"claude-opus-4-1": "claude-sonnet-4-5"},
    )  # fmt: skip
    ask(gateway, FAST, "half", amount="500")

    response = ask(gateway, FAST, "after", model="claude-opus-4-1", input_tokens=1_000,
                   max_output_tokens=100)  # fmt: skip

    body = response.json()
    assert (response.status_code, body["decision"], body["model"]) == (
        201, "downgrade", "claude-sonnet-4-5",
    )  # fmt: skip
    assert "soft limit 50%" in body["message"]


def test_a_session_under_a_cap_is_answered_by_the_ordinary_path(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    Policy.objects.create(
        organization=acme.organization, pool=acme.pools[FAST], session_cap_amount=3 * DOLLAR
    )

    first = ask(gateway, FAST, "s1", amount="2", session_id="agent-run-7")
    second = ask(gateway, FAST, "s2", amount="2", session_id="agent-run-7")

    assert first.status_code == 201
    assert (second.status_code, second.json()["code"]) == (402, "session_limit")
