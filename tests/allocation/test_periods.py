"""A full quarter, with time under the test's control: fund, allocate, spend with open holds,
close with each rollover policy, open with and without a plan, late settles, holds expiring
after the close. Exact balances throughout."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from allocation.demo import DOLLAR, DemoOrganization
from allocation.errors import PeriodNotEndedError, PeriodStateError, RequestNotPendingError
from allocation.models import PoolSweep, RolloverMode, RolloverPolicy, TransferRequest
from allocation.owners import Owner, owner_pool
from allocation.periods import period_close, period_open_scheduled, periods_due
from allocation.planning import plan_approve, plan_line_set, plan_propose, plan_total_set
from allocation.services import transfer_request_approve
from budgets.errors import PeriodNotOpenError
from budgets.models import OrganizationAccount, Period, Pool
from budgets.selectors import pool_balance
from budgets.services import period_create
from ledger.models import Account, Transfer, TransferCode
from ledger.services import hold_create, hold_post, hold_void, holds_expire
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def available(pool: Pool | None) -> int:
    assert pool is not None
    return pool_balance(pool=pool).available


def spend(pool: Pool, amount: int, *, post: int | None = None) -> int:
    """Hold ``amount`` on the pool (a gateway authorization); post ``post`` of it if given."""
    hold = hold_create(
        debit_account_id=pool.account_id, credit_account_id=pool.spend_account_id,
        amount=amount, currency="USD", timeout=timedelta(days=1), code=TransferCode.SPEND,
    )  # fmt: skip
    if post is not None:
        hold_post(hold_id=hold.pk, amount=post)
    return hold.pk


def lapsed(acme: DemoOrganization) -> int:
    account = OrganizationAccount.objects.get(organization=acme.organization, purpose="lapsed")
    return Account.objects.get(pk=account.account_id).balance


def policies(acme: DemoOrganization) -> None:
    """Each rollover policy once: the default 10 % of budget, Research all, Product capped at
    $50, Platform (and through it its sub-team Infra) nothing."""
    org = acme.organization
    RolloverPolicy.objects.create(
        organization=org, mode=RolloverMode.SHARE, cap_share=Decimal("0.1")
    )
    RolloverPolicy.objects.create(organization=org, team=acme.teams["research"], mode="all")
    RolloverPolicy.objects.create(
        organization=org, team=acme.teams["product"], mode="amount", cap_amount=50 * DOLLAR
    )
    RolloverPolicy.objects.create(organization=org, team=acme.teams["platform"], mode="none")


def next_pool(acme: DemoOrganization, name: str) -> Pool | None:
    pool = acme.org_pool if name == "org" else acme.pools[name]
    nxt = Period.objects.get(organization=acme.organization, fiscal_year=2026 + 1, quarter=1)
    return owner_pool(period=nxt, owner=Owner.of(pool))


def test_a_full_quarter_closes_rolls_over_lapses_and_opens(acme: DemoOrganization) -> None:
    policies(acme)
    end = acme.period.ends_at
    spend(acme.pools["product-eng1"], 300 * DOLLAR, post=200 * DOLLAR)
    expiring = spend(acme.pools["product-eng1"], 100 * DOLLAR)  # open at the close, expires
    late = spend(acme.pools["product-eng2"], 200 * DOLLAR)  # open at the close, settles late
    spend(acme.pools["research-eng1"], 400 * DOLLAR, post=400 * DOLLAR)

    with pytest.raises(PeriodNotEndedError):
        period_close(period=acme.period, now=end - timedelta(microseconds=1))
    report = period_close(period=acme.period, now=end)

    assert (report.pending_holds, report.is_closed) == (2, False)
    acme.period.refresh_from_db()
    assert acme.period.status == "closing"
    # Everything unused left the old pools: only the open holds remain reserved.
    assert available(acme.pools["product-eng1"]) == 0
    assert pool_balance(pool=acme.pools["product-eng1"]).reserved == 100 * DOLLAR
    # Rollover per policy into the same owner's next pool (created by the close).
    assert available(next_pool(acme, "org")) == 10_000 * DOLLAR  # 10 % of 100,000
    assert available(next_pool(acme, "research")) == 17_000 * DOLLAR  # all
    assert available(next_pool(acme, "research-eng1")) == 600 * DOLLAR  # all of 1,000 - 400
    assert available(next_pool(acme, "product")) == 50 * DOLLAR  # capped at $50
    assert available(next_pool(acme, "product-eng1")) == 50 * DOLLAR  # of 700 unused
    assert available(next_pool(acme, "platform")) == 0  # none
    assert next_pool(acme, "infra") is not None
    assert available(next_pool(acme, "infra")) == 0
    # The rest lapsed back to the organization.
    rolled = 10_000 + 17_000 + (600 + 1_000 + 1_000) + 50 + 3 * 50  # org, research, product
    unused = 100_000 - 600 - 300  # everything funded, less spent and still held
    assert lapsed(acme) == (unused - rolled) * DOLLAR

    # After the close: a late settle (charged to the old period) and an expiry.
    hold_post(hold_id=late, amount=150 * DOLLAR)
    assert holds_expire(now=end + timedelta(days=2)) == 1
    assert Transfer.objects.get(pending_id=expiring).phase == "expire"
    assert pool_balance(pool=acme.pools["product-eng2"]).spent == 150 * DOLLAR
    assert available(acme.pools["product-eng1"]) == 100 * DOLLAR

    second = period_close(period=acme.period, now=end + timedelta(days=2))

    assert second.is_closed
    assert [(m.rolled_over, m.lapsed) for m in second.moves] == [
        (0, 100 * DOLLAR),  # eng1's $50 cap is used up
        (0, 50 * DOLLAR),  # eng2 released 50 of its 200; cap used up too
    ]
    assert lapsed(acme) == (unused - rolled + 150) * DOLLAR
    acme.period.refresh_from_db()
    assert acme.period.status == "closed"
    assert Account.objects.get(pk=acme.pools["product-eng1"].account_id).is_closed
    assert PoolSweep.objects.filter(pool=acme.pools["product-eng1"]).count() == 2

    # Open without a plan: the previous quarter's allocations, on top of the rollover.
    nxt = Period.objects.get(organization=acme.organization, fiscal_year=2027, quarter=1)
    assert periods_due(now=end + timedelta(days=2)) == ([], [nxt.pk])
    opened = period_open_scheduled(period=nxt, now=end + timedelta(days=2))

    assert (opened.source, opened.total) == ("previous", 100_000 * DOLLAR)
    assert available(next_pool(acme, "org")) == (10_000 + 100_000 - 60_000) * DOLLAR
    assert available(next_pool(acme, "research")) == (17_000 + 20_000 - 3_000) * DOLLAR
    assert available(next_pool(acme, "research-eng1")) == (600 + 1_000) * DOLLAR
    assert available(next_pool(acme, "platform")) == (20_000 - 5_000 - 3_000 - 2_000) * DOLLAR
    assert available(next_pool(acme, "ci-agents")) == 2_000 * DOLLAR
    assert available(next_pool(acme, "infra-eng2")) == 1_000 * DOLLAR
    nxt.refresh_from_db()
    assert nxt.status == "open"
    # Opening again does nothing.
    assert period_open_scheduled(period=nxt, now=end + timedelta(days=3)).was_open


def test_open_funds_the_approved_plan_down_the_tree(acme: DemoOrganization) -> None:
    end = acme.period.ends_at
    spend(acme.pools["product-eng1"], 300 * DOLLAR, post=200 * DOLLAR)
    spend(acme.pools["ci-agents"], 80 * DOLLAR, post=80 * DOLLAR)
    period_close(period=acme.period, now=end)  # no rollover policy: everything lapses
    nxt = Period.objects.get(organization=acme.organization, fiscal_year=2027, quarter=1)
    finance = acme.members["finance"]
    plan = plan_propose(period=nxt, actor=finance, now=end)
    lines = {str(line): line for line in plan.lines.all()}
    # Measured settled spend x 1.25, both shown per line.
    eng1 = lines["member acme-product-eng1"]
    assert (eng1.baseline, eng1.amount) == (200 * DOLLAR, 250 * DOLLAR)
    ci = lines["shared Platform/ci-agents"]
    assert (ci.baseline, ci.amount) == (80 * DOLLAR, 100 * DOLLAR)
    assert lines["team Product"].amount == 0
    plan_line_set(line=lines["team Product"], amount=500 * DOLLAR, actor=finance)
    plan_total_set(plan=plan, total=5_000 * DOLLAR, actor=finance)
    plan_approve(plan=plan, actor=acme.members["admin"], now=end)

    opened = period_open_scheduled(period=nxt, now=end)

    assert (opened.source, opened.total) == (f"plan:{plan.pk}", 5_000 * DOLLAR)
    assert available(next_pool(acme, "product-eng1")) == 250 * DOLLAR
    assert available(next_pool(acme, "product")) == 500 * DOLLAR  # its own line; 250 passed on
    assert available(next_pool(acme, "ci-agents")) == 100 * DOLLAR
    assert available(next_pool(acme, "platform")) == 0
    assert available(next_pool(acme, "org")) == (5_000 - 850) * DOLLAR  # the reserve


def test_opening_while_the_previous_quarter_is_open_is_refused(acme: DemoOrganization) -> None:
    nxt = Period.objects.create(
        organization=acme.organization, fiscal_year=2027, quarter=1,
        starts_at=acme.period.ends_at, ends_at=acme.period.ends_at + timedelta(days=90),
    )  # fmt: skip

    with pytest.raises(PeriodStateError):
        period_open_scheduled(period=nxt, now=acme.period.ends_at)

    assert Pool.objects.filter(period=nxt).count() == 0


def test_dry_runs_move_nothing(acme: DemoOrganization) -> None:
    policies(acme)
    before = Transfer.objects.count()

    close = period_close(period=acme.period, now=acme.period.ends_at, dry_run=True)

    assert Transfer.objects.count() == before
    org = next(m for m in close.moves if m.pool.startswith("Acme"))
    assert (org.rolled_over, org.lapsed) == (10_000 * DOLLAR, 30_000 * DOLLAR)
    acme.period.refresh_from_db()
    assert acme.period.status == "open"


def test_now_is_before_the_period_start_in_its_timezone(acme: DemoOrganization) -> None:
    # Berlin: FY2026 Q4 ends at 2027-02-01 00:00 local, 2027-01-31 23:00 UTC.
    assert acme.period.ends_at.isoformat() == "2027-01-31T23:00:00+00:00"
    assert periods_due(now=NOW) == ([], [])


def test_closing_expires_the_pending_requests_of_its_pools(acme: DemoOrganization) -> None:
    # platform-eng1 → product-eng1, $40: over the peer limit, so waiting for platform-lead.
    request = acme.requests[0]
    source, target = acme.pools["platform-eng1"], acme.pools["product-eng1"]
    hold = spend(source, 100 * DOLLAR)
    period_close(period=acme.period, now=acme.period.ends_at)  # swept: only the hold is left
    hold_void(hold_id=hold)  # released after the sweep: the next round's to move
    before = (available(source), available(target), Transfer.objects.count())

    with pytest.raises(RequestNotPendingError):
        transfer_request_approve(request=request, approver=acme.members["platform-lead"])

    request.refresh_from_db()
    assert (request.status, request.decided_at) == ("expired", acme.period.ends_at)
    assert set(TransferRequest.objects.values_list("status", flat=True)) == {"expired"}
    assert (available(source), available(target), Transfer.objects.count()) == before


def test_a_pending_request_of_a_closing_period_is_not_approved(acme: DemoOrganization) -> None:
    request = acme.requests[0]
    Period.objects.filter(pk=acme.period.pk).update(status="closing")  # mid-close

    with pytest.raises(PeriodNotOpenError):
        transfer_request_approve(request=request, approver=acme.members["platform-lead"])

    request.refresh_from_db()
    assert request.status == "pending"


def test_the_quarter_due_opens_when_later_ones_are_already_planned(acme: DemoOrganization) -> None:
    # Finance planned the whole next year ahead: four planned quarters exist.
    org = acme.organization
    quarters = [period_create(organization=org, fiscal_year=2027, quarter=q) for q in (1, 2, 3, 4)]
    period_close(period=acme.period, now=acme.period.ends_at)

    assert periods_due(now=acme.period.ends_at)[1] == [quarters[0].pk]
