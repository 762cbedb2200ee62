"""Who may move budget: pure checks over members, pools and requests."""

from __future__ import annotations

from allocation.models import Exemption, TransferRequest
from budgets.models import Member, Pool, PoolKind, Role
from budgets.selectors import member_managed_team_ids, pool_team_id


def member_controls_pool(*, member: Member, pool: Pool, amount: int) -> bool:
    """May ``member`` move ``amount`` out of ``pool`` without anyone's approval?

    An admin controls every pool of the organization; a manager the pools of the teams they
    manage (sub-teams included, and their members' pools); a member their own pool, up to the
    organization's peer transfer limit.
    """
    is_own = pool.kind == PoolKind.MEMBER and pool.member_id == member.pk
    if is_own and member.is_active and member.role != Role.ADMIN:
        return amount <= pool.organization.peer_transfer_limit
    return member_manages_pool(member=member, pool=pool)


def member_can_decide(*, member: Member, request: TransferRequest) -> bool:
    """May ``member`` approve or reject ``request``? A manager of the source pool's team, or
    an admin; never the requester."""
    return _decides_for(member=member, requester_id=request.requester_id, pool=request.source)


def _decides_for(*, member: Member, requester_id: int, pool: Pool) -> bool:
    """A manager of ``pool``'s team or an admin of its organization, not the requester."""
    return member.pk != requester_id and member_manages_pool(member=member, pool=pool)


def member_manages_pool(*, member: Member, pool: Pool) -> bool:
    """A manager of ``pool``'s team (sub-teams and members' pools included) or an admin."""
    if not member.is_active or member.organization_id != pool.organization_id:
        return False
    if member.role == Role.ADMIN:
        return True
    team_id = pool_team_id(pool=pool)
    return team_id is not None and team_id in member_managed_team_ids(member=member)


def pool_is_parent(*, parent: Pool, child: Pool) -> bool:
    """Is ``parent`` the pool one step above ``child`` in the same period?"""
    if parent.period_id != child.period_id:
        return False
    if child.kind == PoolKind.MEMBER:
        return (
            parent.kind == PoolKind.TEAM
            and child.member is not None
            and (parent.team_id == child.member.team_id)
        )
    if child.kind == PoolKind.SHARED:
        return parent.kind == PoolKind.TEAM and parent.team_id == child.team_id
    if child.kind == PoolKind.TEAM and child.team is not None:
        if child.team.parent_id is not None:
            return parent.kind == PoolKind.TEAM and parent.team_id == child.team.parent_id
        return parent.kind == PoolKind.ORGANIZATION
    return False


def member_can_allocate(*, member: Member, parent: Pool) -> bool:
    """May ``member`` allocate between ``parent`` and one of its children (either way)?
    The organization pool: admins. A team pool: its managers and admins."""
    if not member.is_active or member.organization_id != parent.organization_id:
        return False
    if member.role == Role.ADMIN:
        return True
    if parent.kind != PoolKind.TEAM or parent.team_id is None:
        return False
    return parent.team_id in member_managed_team_ids(member=member)


def member_can_request_exemption(*, member: Member, pool: Pool) -> bool:
    """The member whose pool it is, a manager of the pool's team, or an admin."""
    is_own = pool.kind == PoolKind.MEMBER and pool.member_id == member.pk
    return (is_own and member.is_active) or member_manages_pool(member=member, pool=pool)


def member_can_decide_exemption(*, member: Member, exemption: Exemption) -> bool:
    """A manager of the pool's team or an admin, who also answers for the pool that pays the
    grant (the organization pool: admins only, as for allocations); never the requester."""
    return _decides_for(
        member=member, requester_id=exemption.requester_id, pool=exemption.pool
    ) and member_manages_pool(member=member, pool=exemption.source_pool)
