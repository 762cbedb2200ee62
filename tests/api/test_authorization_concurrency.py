"""Authorizations racing on real PostgreSQL: the pool's limit holds, one key is one hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from allocation.demo import DOLLAR, DemoOrganization
from allocation.services import pool_allocate
from budgets.gateway import AuthorizeRequest, authorization_create
from budgets.models import Authorization
from budgets.selectors import pool_balance
from ledger.models import Transfer, TransferPhase
from tests.racing import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]
SUBJECT = "platform-eng1-claude-code"


def ask(acme: DemoOrganization, key: str, amount: int) -> Callable[[], Authorization]:
    return lambda: authorization_create(
        organization=acme.organization,
        request=AuthorizeRequest(idempotency_key=key, subject=SUBJECT, model="claude-sonnet-4-5",
                                 amount=amount),
    )  # fmt: skip


def test_a_pool_funded_for_n_calls_holds_exactly_n_of_ten_times_as_many(
    acme: DemoOrganization,
) -> None:
    pool = acme.pools["platform-eng1"]  # $1,000: exactly 20 calls of $50
    n, price = 20, 50 * DOLLAR

    outcomes = race([ask(acme, f"call-{i}", price) for i in range(10 * n)])

    statuses = Counter(
        outcome.status if isinstance(outcome, Authorization) else type(outcome).__name__
        for outcome in outcomes
    )
    assert statuses == {"held": n, "denied": 9 * n}
    assert pool_balance(pool=pool).available == 0
    assert pool_balance(pool=pool).reserved == n * price
    assert (
        Transfer.objects.filter(phase=TransferPhase.PENDING, debit_account=pool.account).count()
        == n
    )


def test_one_key_from_many_threads_is_one_hold(acme: DemoOrganization) -> None:
    pool = acme.pools["platform-eng1"]

    outcomes = race([ask(acme, "the-call", DOLLAR)] * 16)

    ids = {outcome.pk for outcome in outcomes if isinstance(outcome, Authorization)}
    assert len(ids) == 1
    assert all(isinstance(outcome, Authorization) for outcome in outcomes)
    assert pool_balance(pool=pool).reserved == DOLLAR
    assert Authorization.objects.count() == 1


def test_denials_never_drop_below_zero_while_budget_moves(acme: DemoOrganization) -> None:
    pool = acme.pools["platform-eng1"]
    calls: list[Callable[[], object]] = [ask(acme, f"c{i}", 30 * DOLLAR) for i in range(60)]
    calls += [
        lambda: pool_allocate(
            source=pool,
            target=acme.pools["platform"],
            amount=100 * DOLLAR,
            actor=acme.members["platform-lead"],
        )
    ] * 4

    outcomes = race(calls)

    assert {type(outcome).__name__ for outcome in outcomes} <= {
        "Authorization", "Transfer", "InsufficientFundsError",
    }  # fmt: skip
    assert Authorization.objects.filter(status="held").exists()
    balance = pool_balance(pool=pool)
    assert balance.available >= 0
    assert balance.available + balance.reserved + balance.moved_out == 1_000 * DOLLAR


def test_first_calls_of_a_new_session_racing_respect_the_cap(acme: DemoOrganization) -> None:
    from budgets.models import Policy, SessionUsage

    Policy.objects.create(organization=acme.organization, session_cap_amount=5 * DOLLAR)

    def in_session(i: int) -> Callable[[], Authorization]:
        return lambda: authorization_create(
            organization=acme.organization,
            request=AuthorizeRequest(idempotency_key=f"s{i}", subject=SUBJECT,
                                     model="claude-sonnet-4-5", amount=DOLLAR,
                                     session_id="fresh-session"),
        )  # fmt: skip

    outcomes = race([in_session(i) for i in range(16)])

    statuses = Counter(getattr(outcome, "status", type(outcome).__name__) for outcome in outcomes)
    assert statuses == {"held": 5, "denied": 11}
    assert SessionUsage.objects.get(session_id="fresh-session").amount == 5 * DOLLAR
