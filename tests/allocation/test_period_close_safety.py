"""The close is safe to run twice, on two workers at once, and to resume after a crash: the
books come out identical to one uninterrupted run."""

from __future__ import annotations

from typing import Any

import pytest

from allocation import periods
from allocation.demo import DemoOrganization, demo_organization_create
from allocation.models import RolloverMode, RolloverPolicy
from allocation.periods import period_close
from budgets.models import OrganizationAccount, Period, Pool
from ledger.models import Account
from tests.allocation.test_periods import spend
from tests.conftest import NOW, PASSWORD
from tests.racing import race

Books = dict[tuple[object, ...], tuple[int, int, int, int]]


def twin(slug: str) -> DemoOrganization:
    """A demo organization with a rollover default and spend with an open hold."""
    demo = demo_organization_create(slug=slug, password=PASSWORD, now=NOW)
    RolloverPolicy.objects.create(
        organization=demo.organization, mode=RolloverMode.AMOUNT, cap_amount=300_000_000
    )
    spend(demo.pools["product-eng1"], 250_000_000, post=100_000_000)
    spend(demo.pools["product-eng2"], 70_000_000)
    return demo


def books(demo: DemoOrganization) -> Books:
    """Every account of the organization by what it is, not by its id: counters as stored."""
    prefix = f"{demo.organization.slug}-"
    result: Books = {}
    for pool in Pool.objects.filter(organization=demo.organization).select_related(
        "account", "spend_account", "period", "team", "member__user"
    ):
        owner = (
            pool.kind,
            pool.team.slug if pool.team else "",
            pool.member.user.username.removeprefix(prefix) if pool.member else "",
            pool.name,
            pool.period.fiscal_year,
            pool.period.quarter,
        )
        for role, account in (("pool", pool.account), ("spend", pool.spend_account)):
            result[(*owner, role)] = _counters(account)
    for system in OrganizationAccount.objects.filter(organization=demo.organization):
        result[("system", system.purpose)] = _counters(Account.objects.get(pk=system.account_id))
    return result


def _counters(account: Account) -> tuple[int, int, int, int]:
    return (
        account.debits_posted, account.credits_posted, account.debits_pending,
        account.credits_pending,
    )  # fmt: skip


@pytest.mark.django_db
def test_the_same_close_run_twice_adds_nothing() -> None:
    once, twice = twin("acme"), twin("globex")
    end = once.period.ends_at

    period_close(period=once.period, now=end)
    period_close(period=twice.period, now=end)
    second = period_close(period=twice.period, now=end)

    assert second.moves == []
    assert books(twice) == books(once)


@pytest.mark.django_db
def test_a_close_interrupted_after_some_pools_then_rerun_matches_an_uninterrupted_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole, crashed = twin("acme"), twin("globex")
    end = whole.period.ends_at
    period_close(period=whole.period, now=end)
    sweep = periods._pool_sweep
    swept: list[Pool] = []

    def crashing_sweep(**kwargs: Any) -> Any:
        if len(swept) == 7:
            raise RuntimeError("injected failure after 7 pools")  # as a killed worker stops
        swept.append(kwargs["pool"])
        return sweep(**kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(periods, "_pool_sweep", crashing_sweep)
        with pytest.raises(RuntimeError, match="injected failure after 7 pools"):
            period_close(period=crashed.period, now=end)
    halfway = books(crashed)
    period_close(period=crashed.period, now=end)

    assert halfway != books(whole)
    assert books(crashed) == books(whole)


@pytest.mark.django_db(transaction=True)
def test_two_workers_closing_at_once_give_the_books_of_one(postgres_only: None) -> None:
    alone, raced = twin("acme"), twin("globex")
    end = alone.period.ends_at
    period_close(period=alone.period, now=end)
    period = Period.objects.get(pk=raced.period.pk)

    outcomes = race([lambda: period_close(period=period, now=end)] * 2, threads=2)

    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert books(raced) == books(alone)
