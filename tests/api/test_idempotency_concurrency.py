"""Idempotency-Key under concurrency, on real PostgreSQL: one key is one execution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from allocation.demo import DemoOrganization
from api.models import IdempotentAnswer
from budgets.selectors import pool_balance
from tests.api.finance import client_for
from tests.racing import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]


def test_requests_racing_with_one_key_run_once_and_all_get_the_first_answer(
    acme: DemoOrganization,
) -> None:
    gift = acme.requests[0]  # platform-eng1 → product-eng1, decided by platform-lead
    path = f"/api/v1/transfer-requests/{gift.pk}/approve"
    clients = [client_for(acme, "platform-lead") for _ in range(8)]

    def approve(client: Any) -> Callable[[], Any]:
        return lambda: client.post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="approve-1")

    raced = race([approve(client) for client in clients], threads=8)

    outcomes: list[Any] = [outcome for outcome in raced if not isinstance(outcome, BaseException)]
    assert len(outcomes) == 8
    answers = [(outcome.status_code, outcome.json()) for outcome in outcomes]
    assert [status for status, _ in answers] == [200] * 8
    assert all(body == answers[0][1] for _, body in answers)
    assert answers[0][1]["status"] == "executed"
    assert [outcome.has_header("Idempotent-Replayed") for outcome in outcomes].count(False) == 1
    assert IdempotentAnswer.objects.filter(key="approve-1").count() == 1
    assert pool_balance(pool=acme.pools["product-eng1"]).budget == 1_040_000_000
