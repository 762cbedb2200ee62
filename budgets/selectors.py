"""Reads for the budgets layer: balances and who may see or manage what."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from budgets.models import Member, Pool, PoolKind, Role, Team
from ledger.models import Account


@dataclass(frozen=True)
class PoolBalance:
    """A pool's money in micro-units of ``currency``."""

    currency: str
    budget: int  # everything ever moved in
    moved_out: int  # given to other pools
    spent: int  # posted spend, overage included, net of reversals
    reserved: int  # held by open authorizations
    available: int  # what can still be reserved or moved


def pool_balance(*, pool: Pool) -> PoolBalance:
    """The pool's budget, spent, reserved and available, read now from its two accounts."""
    accounts = Account.objects.in_bulk([pool.account_id, pool.spend_account_id])
    return pool_balance_of(account=accounts[pool.account_id], spend=accounts[pool.spend_account_id])


def pool_balance_of(*, account: Account, spend: Account) -> PoolBalance:
    """The balance from a pool's account and spend account as already loaded."""
    spent = spend.credits_posted - spend.debits_posted
    return PoolBalance(
        currency=account.currency,
        budget=account.credits_posted,
        moved_out=account.debits_posted - spent,
        spent=spent,
        reserved=account.debits_pending,
        available=account.available,
    )


def team_subtree_ids(*, team_ids: Iterable[int]) -> set[int]:
    """The teams and every team below them."""
    found = set(team_ids)
    frontier = set(found)
    while frontier:
        children = set(Team.objects.filter(parent_id__in=frontier).values_list("id", flat=True))
        frontier = children - found
        found |= frontier
    return found


def member_managed_team_ids(*, member: Member) -> set[int]:
    """Teams a manager manages, sub-teams included; empty for other roles."""
    if member.role != Role.MANAGER or not member.is_active:
        return set()
    return team_subtree_ids(team_ids=member.managed_teams.values_list("id", flat=True))


def pool_team_id(*, pool: Pool) -> int | None:
    """The team whose managers answer for the pool (a member pool: the member's home team)."""
    if pool.kind == PoolKind.MEMBER:
        return pool.member.team_id if pool.member else None
    return pool.team_id


def pools_for_teams(*, team_ids: set[int]) -> Q:
    """A filter on Pool: the pools of these teams, their shared pools and members' pools."""
    return Q(team_id__in=team_ids) | Q(member__team_id__in=team_ids)


def member_sees_organization(*, member: Member) -> bool:
    """Finance and admins see the whole organization."""
    return member.is_active and member.role in (Role.FINANCE, Role.ADMIN)


def pools_visible_to(*, member: Member) -> QuerySet[Pool]:
    """The pools a member may see: the organization's, their teams', or their own."""
    pools = Pool.objects.filter(organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return pools
    managed = member_managed_team_ids(member=member)
    return pools.filter(pools_for_teams(team_ids=managed) | Q(member=member))
