"""Funding, allocation and transfer requests: every rule and every refusal."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from allocation.demo import DOLLAR, DemoOrganization, demo_organization_create
from allocation.errors import (
    NotAdjacentError,
    ReasonRequiredError,
    RequestNotPendingError,
    SelfApprovalError,
)
from allocation.models import TransferRequest, TransferRequestStatus
from allocation.services import (
    pool_allocate,
    pool_fund,
    transfer_request_approve,
    transfer_request_cancel,
    transfer_request_create,
    transfer_request_reject,
    transfer_requests_expire,
)
from budgets.errors import CrossOrganizationError, InvalidInputError, NotAllowedError
from budgets.models import Pool
from budgets.selectors import PoolBalance, pool_balance
from ledger.errors import InsufficientFundsError
from ledger.models import Transfer
from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db


def available(pool: Pool) -> int:
    return pool_balance(pool=pool).available


def snapshot(acme: DemoOrganization) -> tuple[dict[str, int], int, int]:
    """Every pool's available, the ledger's size and the request count: 'nothing changed'."""
    return (
        {name: available(pool) for name, pool in acme.pools.items()},
        Transfer.objects.count(),
        TransferRequest.objects.count(),
    )


def test_demo_books_are_funded_and_allocated(acme: DemoOrganization) -> None:
    assert pool_balance(pool=acme.org_pool) == PoolBalance(
        currency="USD", budget=100_000 * DOLLAR, moved_out=60_000 * DOLLAR, spent=0,
        reserved=0, available=40_000 * DOLLAR,
    )  # fmt: skip
    assert available(acme.pools["platform"]) == (20_000 - 5_000 - 3_000 - 2_000) * DOLLAR
    assert available(acme.pools["infra"]) == (5_000 - 3_000) * DOLLAR
    assert available(acme.pools["platform-eng1"]) == 1_000 * DOLLAR
    assert [r.status for r in acme.requests] == ["pending"] * 3


# --- funding ---------------------------------------------------------------------------------


def test_finance_funds_the_org_pool(acme: DemoOrganization) -> None:
    pool_fund(pool=acme.org_pool, amount=7 * DOLLAR, actor=acme.members["finance"])

    assert available(acme.org_pool) == 40_007 * DOLLAR


@pytest.mark.parametrize("who", ["platform-lead", "platform-eng1"])
def test_only_finance_and_admins_fund(acme: DemoOrganization, who: str) -> None:
    before = snapshot(acme)

    with pytest.raises(NotAllowedError):
        pool_fund(pool=acme.org_pool, amount=DOLLAR, actor=acme.members[who])

    assert snapshot(acme) == before


def test_funding_goes_to_the_org_pool_only(acme: DemoOrganization) -> None:
    with pytest.raises(InvalidInputError):
        pool_fund(pool=acme.pools["platform"], amount=DOLLAR, actor=acme.members["finance"])


# --- allocation ------------------------------------------------------------------------------


def test_admin_allocates_org_to_team_and_manager_team_to_member(acme: DemoOrganization) -> None:
    pool_allocate(
        source=acme.org_pool, target=acme.pools["product"], amount=100 * DOLLAR,
        actor=acme.members["admin"],
    )  # fmt: skip
    pool_allocate(
        source=acme.pools["product"], target=acme.pools["product-eng1"], amount=100 * DOLLAR,
        actor=acme.members["product-lead"],
    )  # fmt: skip

    assert available(acme.pools["product-eng1"]) == 1_100 * DOLLAR
    assert available(acme.pools["product"]) == 17_000 * DOLLAR


def test_manager_of_a_parent_team_allocates_to_the_sub_team_and_back(
    acme: DemoOrganization,
) -> None:
    lead = acme.members["platform-lead"]
    pool_allocate(
        source=acme.pools["platform"], target=acme.pools["infra"], amount=10 * DOLLAR, actor=lead
    )
    pool_allocate(
        source=acme.pools["infra"], target=acme.pools["platform"], amount=4 * DOLLAR, actor=lead
    )

    assert available(acme.pools["infra"]) == 2_006 * DOLLAR


def test_allocation_above_available_is_refused_and_changes_nothing(
    acme: DemoOrganization,
) -> None:
    before = snapshot(acme)

    with pytest.raises(InsufficientFundsError):
        pool_allocate(
            source=acme.pools["product"], target=acme.pools["product-eng1"],
            amount=17_000 * DOLLAR + 1, actor=acme.members["product-lead"],
        )  # fmt: skip

    assert snapshot(acme) == before


@pytest.mark.parametrize(
    ("who", "source", "target"),
    [
        ("product-lead", "platform", "platform-eng1"),  # another team's manager
        ("platform-eng1", "platform", "platform-eng1"),  # an engineer
        ("finance", "platform", "platform-eng1"),  # finance reads, does not allocate
        ("platform-lead", "org", "platform"),  # the org pool is the admins'
    ],
)
def test_allocation_by_someone_without_control_is_refused(
    acme: DemoOrganization, who: str, source: str, target: str
) -> None:
    pools = {**acme.pools, "org": acme.org_pool}
    before = snapshot(acme)

    with pytest.raises(NotAllowedError):
        pool_allocate(source=pools[source], target=pools[target], amount=DOLLAR,
                      actor=acme.members[who])  # fmt: skip

    assert snapshot(acme) == before


def test_allocation_skipping_a_level_is_refused(acme: DemoOrganization) -> None:
    with pytest.raises(NotAdjacentError):
        pool_allocate(
            source=acme.org_pool, target=acme.pools["platform-eng1"], amount=DOLLAR,
            actor=acme.members["admin"],
        )  # fmt: skip


# --- transfer requests -----------------------------------------------------------------------


def test_a_member_gives_from_their_own_pool_at_once_up_to_the_peer_limit(
    acme: DemoOrganization,
) -> None:
    giver, receiver = acme.pools["platform-eng1"], acme.pools["platform-eng2"]

    request = transfer_request_create(
        source=giver, target=receiver, amount=25 * DOLLAR, reason="thanks for the review",
        requester=acme.members["platform-eng1"],
    )  # fmt: skip

    assert (request.status, request.decided_by_id) == ("executed", acme.members["platform-eng1"].pk)
    assert request.ledger_transfer is not None
    assert (available(giver), available(receiver)) == (975 * DOLLAR, 1_025 * DOLLAR)


def test_a_gift_over_the_peer_limit_waits_for_the_manager(acme: DemoOrganization) -> None:
    giver, receiver = acme.pools["platform-eng1"], acme.pools["platform-eng2"]

    request = transfer_request_create(
        source=giver, target=receiver, amount=25 * DOLLAR + 1, reason="big favour",
        requester=acme.members["platform-eng1"],
    )  # fmt: skip
    approved = transfer_request_approve(request=request, approver=acme.members["platform-lead"])

    assert approved.status == "executed"
    assert approved.decided_by == acme.members["platform-lead"]
    assert available(receiver) == 1_025 * DOLLAR + 1


def test_manager_approves_a_pull_request_and_money_moves(acme: DemoOrganization) -> None:
    ask = acme.requests[1]  # product-eng2 asks the product pool for $300

    transfer_request_approve(request=ask, approver=acme.members["product-lead"])

    ask.refresh_from_db()
    assert (ask.status, ask.decided_by) == ("executed", acme.members["product-lead"])
    assert available(acme.pools["product-eng2"]) == 1_300 * DOLLAR
    assert [h.status for h in ask.history.order_by("history_id")] == ["pending", "executed"]
    assert ask.history.latest().history_user == acme.members["product-lead"].user


def test_a_manager_of_the_source_team_decides_nobody_else(acme: DemoOrganization) -> None:
    ask = acme.requests[2]  # infra-lead asks research for $500
    before = snapshot(acme)

    for who in ["product-lead", "finance", "research-eng1", "platform-lead"]:
        with pytest.raises(NotAllowedError):
            transfer_request_approve(request=ask, approver=acme.members[who])

    assert snapshot(acme) == before
    transfer_request_approve(request=ask, approver=acme.members["research-lead"])
    assert available(acme.pools["infra"]) == 2_500 * DOLLAR


def test_nobody_approves_their_own_request(acme: DemoOrganization) -> None:
    ask = transfer_request_create(
        source=acme.pools["research"], target=acme.pools["platform"], amount=DOLLAR,
        reason="need more", requester=acme.members["admin"],
    )  # fmt: skip
    assert ask.status == "executed"  # an admin controls every pool
    own = transfer_request_create(
        source=acme.pools["research"], target=acme.pools["product"], amount=DOLLAR,
        reason="please", requester=acme.members["product-lead"],
    )  # fmt: skip

    with pytest.raises(SelfApprovalError):
        transfer_request_approve(request=own, approver=acme.members["product-lead"])

    own.refresh_from_db()
    assert own.status == "pending"


def test_approval_that_finds_too_little_fails_cleanly(acme: DemoOrganization) -> None:
    ask = transfer_request_create(
        source=acme.pools["research"], target=acme.pools["product"], amount=18_000 * DOLLAR,
        reason="big project", requester=acme.members["product-lead"],
    )  # fmt: skip
    before = snapshot(acme)

    with pytest.raises(InsufficientFundsError) as refusal:
        transfer_request_approve(request=ask, approver=acme.members["research-lead"])

    ask.refresh_from_db()
    assert ask.status == "pending"
    assert refusal.value.code == "insufficient_funds"
    assert snapshot(acme) == before
    pool_fund(pool=acme.org_pool, amount=1, actor=acme.members["finance"])
    pool_allocate(source=acme.org_pool, target=acme.pools["research"], amount=1_000 * DOLLAR,
                  actor=acme.members["admin"])  # fmt: skip
    transfer_request_approve(request=ask, approver=acme.members["research-lead"])
    assert available(acme.pools["product"]) == 35_000 * DOLLAR


def test_rejection_needs_a_reason_and_moves_nothing(acme: DemoOrganization) -> None:
    ask = acme.requests[1]
    before = snapshot(acme)

    with pytest.raises(ReasonRequiredError):
        transfer_request_reject(request=ask, approver=acme.members["product-lead"], reason="  ")
    rejected = transfer_request_reject(
        request=ask, approver=acme.members["product-lead"], reason="not this sprint"
    )

    assert (rejected.status, rejected.decision_reason) == ("rejected", "not this sprint")
    assert snapshot(acme) == before


def test_a_decided_request_cannot_be_decided_again(acme: DemoOrganization) -> None:
    ask = acme.requests[1]
    transfer_request_approve(request=ask, approver=acme.members["product-lead"])
    before = snapshot(acme)

    with pytest.raises(RequestNotPendingError):
        transfer_request_approve(request=ask, approver=acme.members["admin"])
    with pytest.raises(RequestNotPendingError):
        transfer_request_reject(request=ask, approver=acme.members["admin"], reason="late")

    assert snapshot(acme) == before


def test_the_requester_cancels_and_nobody_else(acme: DemoOrganization) -> None:
    ask = acme.requests[1]

    with pytest.raises(NotAllowedError):
        transfer_request_cancel(request=ask, requester=acme.members["product-lead"])
    cancelled = transfer_request_cancel(request=ask, requester=acme.members["product-eng2"])

    assert cancelled.status == "cancelled"


def test_pending_requests_expire_and_cannot_be_approved_after(acme: DemoOrganization) -> None:
    ask = acme.requests[1]

    last_due = max(request.expires_at for request in acme.requests)
    expired = transfer_requests_expire(now=last_due)
    again = transfer_requests_expire(now=last_due)

    ask.refresh_from_db()
    assert (expired, again, ask.status) == (3, 0, TransferRequestStatus.EXPIRED)
    with pytest.raises(RequestNotPendingError):
        transfer_request_approve(request=ask, approver=acme.members["product-lead"])


@pytest.mark.parametrize("amount", [0, -5, 1.5])
def test_a_request_needs_a_positive_integer_amount(acme: DemoOrganization, amount: object) -> None:
    with pytest.raises(InvalidInputError):
        transfer_request_create(
            source=acme.pools["product"], target=acme.pools["product-eng1"],
            amount=amount, reason="x", requester=acme.members["product-eng1"],  # type: ignore[arg-type]
        )  # fmt: skip


def test_a_request_needs_a_reason(acme: DemoOrganization) -> None:
    with pytest.raises(InvalidInputError):
        transfer_request_create(
            source=acme.pools["product"], target=acme.pools["product-eng1"], amount=1,
            reason=" ", requester=acme.members["product-eng1"],
        )  # fmt: skip


def test_cross_organization_transfers_are_impossible(acme: DemoOrganization) -> None:
    other = demo_organization_create(
        slug="globex", password=PASSWORD, now=NOW, engineers_per_team=2
    )
    before = snapshot(acme)

    with pytest.raises(CrossOrganizationError):
        transfer_request_create(
            source=acme.pools["product"], target=other.pools["product"], amount=DOLLAR,
            reason="oops", requester=acme.members["admin"],
        )  # fmt: skip
    with pytest.raises(CrossOrganizationError):
        pool_allocate(
            source=other.org_pool, target=other.pools["product"], amount=DOLLAR,
            actor=acme.members["admin"],
        )  # fmt: skip
    with pytest.raises(NotAllowedError):
        transfer_request_approve(request=other.requests[1], approver=acme.members["admin"])

    assert snapshot(acme) == before
    assert get_user_model().objects.filter(username__startswith="globex-").count() == 14
