"""Reads for the allocation layer."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from allocation.models import TransferRequest
from budgets.models import Member
from budgets.selectors import member_managed_team_ids, member_sees_organization


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
