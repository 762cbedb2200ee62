"""Approvals and requests racing on real PostgreSQL."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import pytest

from allocation.demo import DOLLAR, DemoOrganization
from allocation.models import TransferRequest
from allocation.services import transfer_request_approve, transfer_request_create
from budgets.selectors import pool_balance
from ledger.models import Transfer, TransferCode
from tests.racing import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]


def test_two_managers_approving_at_once_execute_the_request_once(acme: DemoOrganization) -> None:
    ask = acme.requests[1]  # product → product-eng2, $300
    approvers = [acme.members["product-lead"], acme.members["admin"]]

    outcomes = race(
        [
            functools.partial(transfer_request_approve, request=ask, approver=m)
            for m in approvers * 4
        ],
        threads=8,
    )

    kinds = Counter(type(outcome).__name__ for outcome in outcomes)
    assert kinds == {"TransferRequest": 1, "RequestNotPendingError": 7}
    assert Transfer.objects.filter(code=TransferCode.TRANSFER).count() == 1
    assert pool_balance(pool=acme.pools["product-eng2"]).available == 1_300 * DOLLAR
    assert TransferRequest.objects.get(pk=ask.pk).status == "executed"


def test_many_requests_drawing_on_one_pool_never_take_it_below_zero(
    acme: DemoOrganization,
) -> None:
    source = acme.pools["research"]  # $17,000 available
    lead = acme.members["research-lead"]
    targets = [acme.pools[f"research-eng{i}"] for i in (1, 2, 3)]

    def ask(i: int) -> Callable[[], TransferRequest]:
        return lambda: transfer_request_create(
            source=source, target=targets[i % 3], amount=1_000 * DOLLAR, reason=f"ask {i}",
            requester=lead,
        )  # fmt: skip

    outcomes = race([ask(i) for i in range(40)], threads=16)

    kinds = Counter(type(outcome).__name__ for outcome in outcomes)
    assert kinds == {"TransferRequest": 17, "InsufficientFundsError": 23}
    assert pool_balance(pool=source).available == 0
    assert sum(pool_balance(pool=t).available for t in targets) == 20_000 * DOLLAR
    assert TransferRequest.objects.filter(status="executed").count() == 17
