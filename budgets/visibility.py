"""Who may read what, for people (the finance API): one queryset per kind of object.

Finance and admins see their whole organization; a manager the teams they manage (sub-teams
included), those teams' members and pools; an engineer their own team, themselves and their
own pools. Nobody sees another organization's objects: every queryset starts from the
member's organization, so a foreign id is simply not found.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from budgets.models import (
    Alert,
    Authorization,
    Commit,
    Member,
    Organization,
    OrganizationAccount,
    Period,
    Team,
)
from budgets.selectors import member_managed_team_ids, member_sees_organization, pools_visible_to
from ledger.models import Transfer

__all__ = [
    "alerts_visible_to",
    "authorizations_visible_to",
    "commits_visible_to",
    "members_visible_to",
    "organizations_visible_to",
    "periods_visible_to",
    "pools_visible_to",
    "teams_visible_to",
    "transfers_visible_to",
]


def organizations_visible_to(*, member: Member) -> QuerySet[Organization]:
    return Organization.objects.filter(pk=member.organization_id)


def periods_visible_to(*, member: Member) -> QuerySet[Period]:
    """Periods are the organization's calendar: everyone in it sees them."""
    return Period.objects.filter(organization_id=member.organization_id)


def teams_visible_to(*, member: Member) -> QuerySet[Team]:
    teams = Team.objects.filter(organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return teams
    return teams.filter(Q(pk__in=member_managed_team_ids(member=member)) | Q(pk=member.team_id))


def members_visible_to(*, member: Member) -> QuerySet[Member]:
    members = Member.objects.filter(organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return members
    return members.filter(Q(team_id__in=member_managed_team_ids(member=member)) | Q(pk=member.pk))


def transfers_visible_to(*, member: Member) -> QuerySet[Transfer]:
    """Ledger transfers touching a visible pool's account or spend account (finance and admins
    also the organization's funding and lapse accounts)."""
    pools = pools_visible_to(member=member)
    accounts = Q()
    for ids in (pools.values("account_id"), pools.values("spend_account_id")):
        accounts |= Q(debit_account_id__in=ids) | Q(credit_account_id__in=ids)
    if member_sees_organization(member=member):
        system = OrganizationAccount.objects.filter(organization_id=member.organization_id).values(
            "account_id"
        )
        accounts |= Q(debit_account_id__in=system) | Q(credit_account_id__in=system)
    return Transfer.objects.filter(accounts)


def authorizations_visible_to(*, member: Member) -> QuerySet[Authorization]:
    authorizations = Authorization.objects.filter(organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return authorizations
    return authorizations.filter(pool__in=pools_visible_to(member=member).values("pk"))


def commits_visible_to(*, member: Member) -> QuerySet[Commit]:
    """Commits are named by repo and sha, which are not secret inside an organization; what
    a receipt adds up is limited to the reader's pools."""
    return Commit.objects.filter(organization_id=member.organization_id)


def alerts_visible_to(*, member: Member) -> QuerySet[Alert]:
    """Finance and admins: every alert; the others: their visible pools' (an organization-wide
    alert has no pool, so only the first see it)."""
    alerts = Alert.objects.filter(organization_id=member.organization_id)
    if member_sees_organization(member=member):
        return alerts
    return alerts.filter(pool__in=pools_visible_to(member=member).values("pk"))
