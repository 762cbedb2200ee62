"""Reads for the allocation layer."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from allocation.models import Exemption, Plan, PlanLine, TransferRequest
from budgets.models import Member, PoolKind
from budgets.selectors import member_managed_team_ids, member_sees_organization, pools_visible_to


def transfer_requests_visible_to(*, member: Member) -> QuerySet[TransferRequest]:
    """Finance and admins: the organization's; a manager: those leaving or reaching their
    teams and members; everyone: those they made or that touch their own pools."""
    requests = TransferRequest.objects.filter(organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return requests
    teams = member_managed_team_ids(member=member)
    return requests.filter(
        Q(source__team_id__in=teams)
        | Q(source__member__team_id__in=teams)
        | Q(target__team_id__in=teams)
        | Q(target__member__team_id__in=teams)
        | Q(requester=member)
        | Q(source__member=member)
        | Q(target__member=member)
    )


def exemptions_visible_to(*, member: Member) -> QuerySet[Exemption]:
    """Finance and admins: the organization's; everyone else: those of or paid by a pool they
    see (a manager's teams and members, an engineer's own pools), and those they asked for."""
    exemptions = Exemption.objects.filter(organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return exemptions
    pools = pools_visible_to(member=member).values("pk")
    return exemptions.filter(Q(pool__in=pools) | Q(source_pool__in=pools) | Q(requester=member))


def plans_visible_to(*, member: Member) -> QuerySet[Plan]:
    """Plans are the organization's calendar, like periods: every member sees them; what is
    inside (lines, the total) is scoped by ``plan_lines_visible_to``."""
    return Plan.objects.filter(organization_id=member.organization_id)


def plan_lines_visible_to(*, member: Member) -> QuerySet[PlanLine]:
    """Finance and admins: every line; a manager: the lines of the teams they manage (sub-teams
    included), their shared pools and members; an engineer: their own line."""
    lines = PlanLine.objects.filter(plan__organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return lines
    teams = member_managed_team_ids(member=member)
    return lines.filter(
        Q(kind__in=[PoolKind.TEAM, PoolKind.SHARED], team_id__in=teams)
        | Q(kind=PoolKind.MEMBER, member__team_id__in=teams)
        | Q(member=member)
    )
