"""The PostgreSQL fast path: one statement on success, the Python path for everything else.

These tests run outside a transaction (``transaction=True``), where the services use the
fast path; the rest of the suite, inside a test transaction, exercises the Python path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.errors import (
    HoldAlreadyResolvedError,
    HoldAmountExceededError,
    HoldExpiredError,
    IdempotencyConflictError,
    InsufficientFundsError,
)
from ledger.models import Account, OpenHold, Transfer
from ledger.services import hold_create, hold_post, hold_void
from tests.factories import counters, fund, pool_account, system_account

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def accounts() -> tuple[Account, Account]:
    pool, spend = pool_account(), system_account(name="spend")
    fund(pool, 1_000)
    return pool, spend


def reserve(accounts: tuple[Account, Account], amount: int, key: str | None = None) -> Transfer:
    pool, spend = accounts
    return hold_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=amount, currency="USD",
        timeout=timedelta(minutes=1), idempotency_key=key, metadata={"model": "opus"},
    )  # fmt: skip


def test_a_clean_hold_and_post_are_one_statement_each(accounts: tuple[Account, Account]) -> None:
    with CaptureQueriesContext(connection) as create_queries:
        hold = reserve(accounts, 300, key="call-1")
    with CaptureQueriesContext(connection) as post_queries:
        resolution = hold_post(hold_id=hold.pk, amount=120, actor="gateway")

    assert len(create_queries) == 1
    assert len(post_queries) == 1
    stored = Transfer.objects.get(pk=hold.pk)
    assert (stored.amount, stored.phase, stored.metadata, stored.idempotency_key) == (
        300, "pending", {"model": "opus"}, "call-1",
    )  # fmt: skip
    assert stored.request_digest == hold.request_digest != ""
    assert (resolution.amount, resolution.phase, resolution.actor) == (120, "post", "gateway")
    assert Transfer.objects.get(pk=resolution.pk).pending_id == hold.pk
    assert counters(accounts[0]) == (120, 1_000, 0, 0, 0)


def test_a_refused_hold_falls_back_and_changes_nothing(accounts: tuple[Account, Account]) -> None:
    reserve(accounts, 600)

    with pytest.raises(InsufficientFundsError):
        reserve(accounts, 401, key="too-much")
    with pytest.raises(InsufficientFundsError):
        reserve(accounts, 401, key="too-much")

    assert counters(accounts[0]) == (0, 1_000, 600, 0, 0)
    assert Transfer.objects.filter(idempotency_key="too-much").count() == 0


def test_a_duplicate_key_falls_back_and_replays(accounts: tuple[Account, Account]) -> None:
    first = reserve(accounts, 100, key="call-1")

    again = reserve(accounts, 100, key="call-1")
    with pytest.raises(IdempotencyConflictError):
        reserve(accounts, 200, key="call-1")

    assert again.pk == first.pk
    assert counters(accounts[0]) == (0, 1_000, 100, 0, 0)


def test_resolutions_that_are_not_clean_fall_back(accounts: tuple[Account, Account]) -> None:
    with time_machine.travel(T0, tick=False):
        stale, big, done = reserve(accounts, 100), reserve(accounts, 100), reserve(accounts, 100)
    with time_machine.travel(T0 + timedelta(seconds=30), tick=False):
        hold_void(hold_id=done.pk)
        with pytest.raises(HoldAmountExceededError):
            hold_post(hold_id=big.pk, amount=101)
        with pytest.raises(HoldAlreadyResolvedError):
            hold_post(hold_id=done.pk, amount=1)
        assert hold_void(hold_id=done.pk).phase == "void"
    with (
        time_machine.travel(T0 + timedelta(minutes=2), tick=False),
        pytest.raises(HoldExpiredError),
    ):
        hold_post(hold_id=stale.pk, amount=1)

    assert counters(accounts[0]) == (0, 1_000, 200, 0, 0)
    assert set(OpenHold.objects.values_list("hold_id", flat=True)) == {stale.pk, big.pk}
