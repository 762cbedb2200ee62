"""Who owns a pool across periods: the same owner has one pool per period.

Period close rolls a pool over into its owner's next pool, period open funds each owner's pool
and plans have one line per owner; all of them speak of owners, not of pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from budgets.models import Member, Period, Pool, PoolKind, Team
from budgets.services import pool_create


@dataclass(frozen=True, order=True)
class Owner:
    """A pool's owner: the organization, a team, a member, or a team's named shared pool."""

    kind: str
    team_id: int | None = None
    member_id: int | None = None
    name: str = ""

    @classmethod
    def of(cls, pool: Pool) -> Owner:
        return cls(kind=pool.kind, team_id=pool.team_id, member_id=pool.member_id, name=pool.name)

    @property
    def lookup(self) -> dict[str, Any]:
        """Filter arguments selecting this owner's pools (or plan lines)."""
        return {
            "kind": self.kind, "team_id": self.team_id, "member_id": self.member_id,
            "name": self.name,
        }  # fmt: skip

    @property
    def label(self) -> str:
        if self.kind == PoolKind.ORGANIZATION:
            return "organization"
        if self.kind == PoolKind.MEMBER:
            member = Member.objects.select_related("user").get(id=self.member_id or 0)
            return f"member {member}"
        team = Team.objects.get(id=self.team_id or 0)
        return f"team {team.slug}" + (f"/{self.name}" if self.name else "")


def owner_is_active(owner: Owner) -> bool:
    """Does the owner still exist to receive budget (an active team or member)?"""
    if owner.kind == PoolKind.ORGANIZATION:
        return True
    if owner.kind == PoolKind.MEMBER:
        return Member.objects.filter(id=owner.member_id or 0, is_active=True).exists()
    return Team.objects.filter(id=owner.team_id or 0, is_active=True).exists()


def owner_pool(*, period: Period, owner: Owner) -> Pool | None:
    """The owner's pool in ``period``, if it exists."""
    return Pool.objects.filter(period=period, **owner.lookup).first()


def owner_pool_get_or_create(*, period: Period, owner: Owner) -> Pool:
    """The owner's pool in ``period``, created when missing (a racing creator may win)."""
    pool = owner_pool(period=period, owner=owner)
    if pool is not None:
        return pool
    try:
        with transaction.atomic():
            return pool_create(
                period=period,
                kind=owner.kind,
                team=Team.objects.get(id=owner.team_id) if owner.team_id else None,
                member=Member.objects.get(id=owner.member_id) if owner.member_id else None,
                name=owner.name,
            )
    except IntegrityError:
        # Another worker created it between our read and our insert: theirs is the pool.
        pool = owner_pool(period=period, owner=owner)
        if pool is None:
            raise
        return pool


def parent_owner(owner: Owner) -> Owner | None:
    """The owner one level up the tree (where budget comes from at the period's open)."""
    if owner.kind == PoolKind.ORGANIZATION:
        return None
    if owner.kind == PoolKind.MEMBER:
        members = Member.objects.filter(id=owner.member_id or 0)
        team_id = members.values_list("team_id", flat=True)[0]
        return Owner(kind=PoolKind.TEAM, team_id=team_id) if team_id else None
    if owner.kind == PoolKind.SHARED:
        return Owner(kind=PoolKind.TEAM, team_id=owner.team_id)
    parent_id = Team.objects.filter(id=owner.team_id or 0).values_list("parent_id", flat=True)[0]
    if parent_id is None:
        return Owner(kind=PoolKind.ORGANIZATION)
    return Owner(kind=PoolKind.TEAM, team_id=parent_id)
