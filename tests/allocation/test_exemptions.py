"""Exemptions: grant at the window's start, spend, claw back min(grant, available) at its end
or on an early revoke; who may ask, approve and revoke."""

from __future__ import annotations

from datetime import timedelta

import pytest

from allocation.demo import DOLLAR, DemoOrganization
from allocation.errors import ExemptionNotDecidableError, ReasonRequiredError, SelfApprovalError
from allocation.exemptions import (
    exemption_approve,
    exemption_reject,
    exemption_request,
    exemption_revoke,
    exemptions_end_due,
    exemptions_start_due,
)
from allocation.models import Exemption
from budgets.errors import InvalidInputError, NotAllowedError
from budgets.models import Pool
from budgets.selectors import pool_balance
from ledger.models import Transfer
from tests.allocation.test_periods import spend
from tests.conftest import NOW

pytestmark = pytest.mark.django_db
START, END = NOW + timedelta(hours=1), NOW + timedelta(days=2)


def available(pool: Pool) -> int:
    return pool_balance(pool=pool).available


def ask(acme: DemoOrganization, *, who: str = "product-eng1", source: str = "team") -> Exemption:
    return exemption_request(
        pool=acme.pools["product-eng1"], amount=500 * DOLLAR, starts_at=START, ends_at=END,
        use_case="migration agent run", reason="one-off codebase migration",
        requester=acme.members[who], now=NOW, source=source,
    )  # fmt: skip


def test_grant_at_start_spend_and_claw_back_the_unspent_part(acme: DemoOrganization) -> None:
    eng, team = acme.pools["product-eng1"], acme.pools["product"]
    exemption = exemption_approve(
        exemption=ask(acme), approver=acme.members["product-lead"], now=NOW
    )
    assert exemption.status == "approved"
    assert exemptions_start_due(now=START - timedelta(seconds=1)) == 0

    assert exemptions_start_due(now=START) == 1
    assert exemptions_start_due(now=START) == 0  # once
    assert (available(eng), available(team)) == (1_500 * DOLLAR, 16_500 * DOLLAR)
    spend(eng, 1_200 * DOLLAR, post=1_200 * DOLLAR)  # into the grant: 300 of it unspent

    assert exemptions_end_due(now=END) == 1
    assert exemptions_end_due(now=END) == 0

    exemption.refresh_from_db()
    assert (exemption.status, exemption.clawed_back) == ("ended", 300 * DOLLAR)
    assert (available(eng), available(team)) == (0, 16_800 * DOLLAR)
    assert exemption.history.count() == 4  # requested, approved, granted, ended


def test_clawback_takes_at_most_the_grant(acme: DemoOrganization) -> None:
    eng = acme.pools["product-eng1"]
    exemption = exemption_approve(exemption=ask(acme), approver=acme.members["admin"], now=START)
    assert exemption.status == "granted"  # the window had started: granted at approval

    exemptions_end_due(now=END)

    exemption.refresh_from_db()
    assert exemption.clawed_back == 500 * DOLLAR
    assert available(eng) == 1_000 * DOLLAR


def test_early_revoke_claws_back_the_same_way(acme: DemoOrganization) -> None:
    eng, org = acme.pools["product-eng1"], acme.org_pool
    exemption = exemption_approve(
        exemption=ask(acme, source="organization"), approver=acme.members["admin"], now=START
    )
    assert available(org) == 39_500 * DOLLAR
    spend(eng, 1_100 * DOLLAR, post=1_100 * DOLLAR)

    exemption_revoke(exemption=exemption, actor=acme.members["product-lead"], now=START)

    exemption.refresh_from_db()
    assert (exemption.status, exemption.clawed_back) == ("revoked", 400 * DOLLAR)
    assert (available(eng), available(org)) == (0, 39_900 * DOLLAR)
    assert exemptions_end_due(now=END) == 0


@pytest.mark.parametrize("who", ["product-eng1", "product-lead", "admin"])
def test_the_member_their_manager_or_an_admin_asks(acme: DemoOrganization, who: str) -> None:
    assert ask(acme, who=who).status == "pending"


@pytest.mark.parametrize("who", ["product-eng2", "research-lead", "finance"])
def test_others_cannot_ask(acme: DemoOrganization, who: str) -> None:
    with pytest.raises(NotAllowedError):
        ask(acme, who=who)
    assert Exemption.objects.count() == 0


@pytest.mark.parametrize(
    ("who", "error"),
    [("product-eng1", SelfApprovalError), ("research-lead", NotAllowedError),
     ("finance", NotAllowedError), ("product-eng2", NotAllowedError)],
)  # fmt: skip
def test_only_a_manager_of_the_team_or_an_admin_approves(
    acme: DemoOrganization, who: str, error: type[Exception]
) -> None:
    exemption = ask(acme)
    before = Transfer.objects.count()

    with pytest.raises(error):
        exemption_approve(exemption=exemption, approver=acme.members[who], now=START)

    exemption.refresh_from_db()
    assert (exemption.status, Transfer.objects.count()) == ("pending", before)


def test_a_manager_asking_for_their_member_needs_someone_else(acme: DemoOrganization) -> None:
    exemption = ask(acme, who="product-lead")
    with pytest.raises(SelfApprovalError):
        exemption_approve(exemption=exemption, approver=acme.members["product-lead"], now=NOW)
    assert (
        exemption_approve(exemption=exemption, approver=acme.members["admin"], now=NOW).status
        == "approved"
    )


def test_rejection_needs_a_reason_and_is_final(acme: DemoOrganization) -> None:
    exemption = ask(acme)
    lead = acme.members["product-lead"]
    with pytest.raises(ReasonRequiredError):
        exemption_reject(exemption=exemption, approver=lead, reason=" ", now=NOW)
    exemption_reject(exemption=exemption, approver=lead, reason="use the CI pool", now=NOW)

    with pytest.raises(ExemptionNotDecidableError):
        exemption_approve(exemption=exemption, approver=acme.members["admin"], now=NOW)


def test_the_window_must_lie_in_the_pools_period(acme: DemoOrganization) -> None:
    with pytest.raises(InvalidInputError):
        exemption_request(
            pool=acme.pools["product-eng1"], amount=DOLLAR, starts_at=START,
            ends_at=acme.period.ends_at + timedelta(seconds=1), use_case="x", reason="y",
            requester=acme.members["product-eng1"], now=NOW,
        )  # fmt: skip


def test_engineers_cannot_revoke(acme: DemoOrganization) -> None:
    exemption = exemption_approve(exemption=ask(acme), approver=acme.members["admin"], now=START)
    with pytest.raises(NotAllowedError):
        exemption_revoke(exemption=exemption, actor=acme.members["product-eng1"], now=START)
    exemption.refresh_from_db()
    assert exemption.status == "granted"


def test_a_grant_from_the_organization_pool_needs_an_admin(acme: DemoOrganization) -> None:
    # The team's manager may not hand out the organization's money (allocating from the
    # organization pool is for admins), not even as an exemption for one of their engineers.
    exemption = ask(acme, source="organization")
    before = (available(acme.org_pool), Transfer.objects.count())

    with pytest.raises(NotAllowedError):
        exemption_approve(exemption=exemption, approver=acme.members["product-lead"], now=START)

    exemption.refresh_from_db()
    assert exemption.status == "pending"
    assert (available(acme.org_pool), Transfer.objects.count()) == before
    assert (
        exemption_approve(exemption=exemption, approver=acme.members["admin"], now=START).status
        == "granted"
    )


def test_a_grant_from_the_parent_team_needs_a_manager_of_the_parent(
    acme: DemoOrganization,
) -> None:
    # Infra is a sub-team of Platform: its exemption is paid by Platform's pool, so Infra's
    # own manager cannot approve it; Platform's can.
    infra, platform = acme.pools["infra"], acme.pools["platform"]
    exemption = exemption_request(
        pool=infra, amount=500 * DOLLAR, starts_at=START, ends_at=END, use_case="cluster tests",
        reason="benchmarks", requester=acme.members["admin"], now=NOW,
    )  # fmt: skip
    before = (available(platform), Transfer.objects.count())

    with pytest.raises(NotAllowedError):
        exemption_approve(exemption=exemption, approver=acme.members["infra-lead"], now=START)

    exemption.refresh_from_db()
    assert exemption.status == "pending"
    assert (available(platform), Transfer.objects.count()) == before
    exemption_approve(exemption=exemption, approver=acme.members["platform-lead"], now=START)
    assert available(platform) == before[0] - 500 * DOLLAR
