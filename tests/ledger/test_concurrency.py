"""Real concurrency against real PostgreSQL: the limit holds, one key gives one outcome."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ledger.errors import HoldAlreadyResolvedError, HoldExpiredError, InsufficientFundsError
from ledger.models import OpenHold, Transfer, TransferPhase
from ledger.services import hold_create, hold_post, hold_void, holds_expire
from tests.factories import counters, fund, pool_account, system_account
from tests.racing import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]
THREADS = 16


def test_holds_racing_for_exactly_n_reservations_give_exactly_n() -> None:
    n, price = 25, 40_000
    pool, spend = pool_account(), system_account()
    fund(pool, n * price)

    def reserve(i: int) -> Callable[[], object]:
        return lambda: hold_create(
            debit_account_id=pool.pk, credit_account_id=spend.pk, amount=price, currency="USD",
            timeout=timedelta(minutes=5), idempotency_key=f"call-{i}",
        )  # fmt: skip

    outcomes = race([reserve(i) for i in range(10 * n)])

    kinds = Counter(type(outcome).__name__ for outcome in outcomes)
    assert kinds == {"Transfer": n, "InsufficientFundsError": 9 * n}
    assert counters(pool) == (0, n * price, n * price, 0, 0)
    assert pool.available == 0
    assert Transfer.objects.filter(phase=TransferPhase.PENDING).count() == n


def test_one_key_fired_from_many_threads_gives_one_transfer() -> None:
    pool, spend = pool_account(), system_account()
    fund(pool, 1_000_000)

    def reserve() -> Transfer:
        return hold_create(
            debit_account_id=pool.pk, credit_account_id=spend.pk, amount=70_000, currency="USD",
            timeout=timedelta(minutes=5), idempotency_key="the-one-call",
        )  # fmt: skip

    outcomes = race([reserve] * THREADS)

    transfers = [outcome for outcome in outcomes if isinstance(outcome, Transfer)]
    assert len(transfers) == THREADS
    assert {transfer.pk for transfer in transfers} == {
        Transfer.objects.get(idempotency_key="the-one-call").pk
    }
    assert counters(pool) == (0, 1_000_000, 70_000, 0, 0)


def test_one_refused_key_fired_from_many_threads_is_refused_alike() -> None:
    pool, spend = pool_account(), system_account()
    fund(pool, 1_000)

    def reserve() -> object:
        return hold_create(
            debit_account_id=pool.pk, credit_account_id=spend.pk, amount=5_000, currency="USD",
            timeout=timedelta(minutes=5), idempotency_key="too-big",
        )  # fmt: skip

    outcomes = race([reserve] * THREADS)

    assert all(isinstance(outcome, InsufficientFundsError) for outcome in outcomes)
    assert counters(pool) == (0, 1_000, 0, 0, 0)


def test_posts_voids_and_expiry_racing_on_the_same_holds_resolve_each_once() -> None:
    pool, spend = pool_account(), system_account()
    fund(pool, 1_000_000)
    holds = [
        hold_create(
            debit_account_id=pool.pk,
            credit_account_id=spend.pk,
            amount=1_000,
            currency="USD",
            timeout=timedelta(seconds=30),
        )
        for _ in range(40)
    ]
    later = datetime.now(UTC) + timedelta(minutes=1)
    calls: list[Callable[[], object]] = []
    for hold in holds:
        calls.append(functools.partial(hold_post, hold_id=hold.pk, amount=600))
        calls.append(functools.partial(hold_void, hold_id=hold.pk))
    calls += [functools.partial(holds_expire, now=later, batch_size=7)] * 4

    outcomes = race(calls)

    unexpected = [
        outcome
        for outcome in outcomes
        if isinstance(outcome, BaseException)
        and not isinstance(outcome, HoldAlreadyResolvedError | HoldExpiredError)
    ]
    assert unexpected == []
    resolutions = Counter(
        Transfer.objects.filter(pending__in=holds).values_list("pending_id", flat=True)
    )
    assert set(resolutions.values()) == {1}
    assert len(resolutions) == 40
    assert not OpenHold.objects.exists()
    posted = 600 * Transfer.objects.filter(pending__in=holds, phase=TransferPhase.POST).count()
    assert counters(pool) == (posted, 1_000_000, 0, 0, 0)
