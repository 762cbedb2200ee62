"""Writes for organizations, teams, members, periods, pools and credentials."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from budgets.errors import CrossOrganizationError, InvalidInputError
from budgets.models import (
    Credential,
    CredentialKind,
    GatewayToken,
    Member,
    Organization,
    OrganizationAccount,
    Period,
    PeriodStatus,
    Pool,
    PoolKind,
    Role,
    SystemAccountPurpose,
    Team,
)
from budgets.periods import quarter_bounds, zone
from ledger.models import AccountKind
from ledger.services import account_create

STAFF_ROLES = frozenset({Role.MANAGER, Role.FINANCE, Role.ADMIN})


@transaction.atomic
def organization_create(
    *,
    name: str,
    slug: str,
    currency: str = "USD",
    timezone: str = "UTC",
    fiscal_year_start_month: int = 1,
    peer_transfer_limit: int = 50_000_000,
) -> Organization:
    """Create an organization and its funding and lapsed accounts. Raises InvalidInputError."""
    zone(timezone)
    if not 1 <= fiscal_year_start_month <= 12:
        raise InvalidInputError("A fiscal year starts in month 1 to 12.")
    if peer_transfer_limit < 0:
        raise InvalidInputError("The peer transfer limit cannot be negative.")
    organization = Organization.objects.create(
        name=name,
        slug=slug,
        currency=currency,
        timezone=timezone,
        fiscal_year_start_month=fiscal_year_start_month,
        peer_transfer_limit=peer_transfer_limit,
    )
    for purpose in SystemAccountPurpose:
        account = account_create(
            name=f"{slug} {purpose.value}",
            currency=currency,
            kind=AccountKind.SYSTEM,
            is_limited=False,
        )
        OrganizationAccount.objects.create(
            organization=organization, purpose=purpose, account=account
        )
    return organization


def team_create(
    *,
    organization: Organization,
    name: str,
    slug: str,
    parent: Team | None = None,
    cost_center: str = "",
) -> Team:
    """Create a team, optionally under a parent team. Raises CrossOrganizationError."""
    if parent is not None and parent.organization_id != organization.pk:
        raise CrossOrganizationError("A team's parent must be in the same organization.")
    return Team.objects.create(
        organization=organization, name=name, slug=slug, parent=parent, cost_center=cost_center
    )


@transaction.atomic
def member_create(
    *,
    organization: Organization,
    user: User,
    role: Role | str = Role.ENGINEER,
    team: Team | None = None,
    managed_teams: Iterable[Team] = (),
) -> Member:
    """Add a user to an organization. Raises CrossOrganizationError, InvalidInputError."""
    role = Role(role)
    managed = list(managed_teams)
    for candidate in [team, *managed]:
        if candidate is not None and candidate.organization_id != organization.pk:
            raise CrossOrganizationError("A member's teams must be in their organization.")
    if managed and role != Role.MANAGER:
        raise InvalidInputError("Only managers manage teams.")
    member = Member.objects.create(user=user, organization=organization, team=team, role=role)
    if managed:
        member.managed_teams.set(managed)
    # Managers, finance and admins work in Django admin; what they see is scoped by role.
    if role in STAFF_ROLES and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return member


def period_create(*, organization: Organization, fiscal_year: int, quarter: int) -> Period:
    """Create a planned fiscal quarter with its bounds. Raises InvalidInputError."""
    starts_at, ends_at = quarter_bounds(
        timezone_name=organization.timezone,
        fiscal_year_start_month=organization.fiscal_year_start_month,
        fiscal_year=fiscal_year,
        quarter=quarter,
    )
    return Period.objects.create(
        organization=organization,
        fiscal_year=fiscal_year,
        quarter=quarter,
        starts_at=starts_at,
        ends_at=ends_at,
    )


@transaction.atomic
def period_open(*, period: Period) -> Period:
    """Open a planned period (one open period per organization). Raises InvalidInputError."""
    period = Period.objects.select_for_update().get(pk=period.pk)
    if period.status != PeriodStatus.PLANNED:
        raise InvalidInputError(f"Only a planned period opens; this one is {period.status}.")
    if Period.objects.filter(organization_id=period.organization_id, status="open").exists():
        raise InvalidInputError("The organization already has an open period.")
    period.status = PeriodStatus.OPEN
    period.save(update_fields=["status"])
    return period


@transaction.atomic
def pool_create(
    *,
    period: Period,
    kind: PoolKind | str,
    team: Team | None = None,
    member: Member | None = None,
    name: str = "",
) -> Pool:
    """Create a pool with its own limited account and spend account.

    Raises CrossOrganizationError, InvalidInputError.
    """
    kind = PoolKind(kind)
    organization = period.organization
    for owner in (team, member):
        if owner is not None and owner.organization_id != organization.pk:
            raise CrossOrganizationError("A pool's owner must be in the period's organization.")
    expected = {
        PoolKind.ORGANIZATION: (False, False, False),
        PoolKind.TEAM: (True, False, False),
        PoolKind.MEMBER: (False, True, False),
        PoolKind.SHARED: (True, False, True),
    }[kind]
    if (team is not None, member is not None, bool(name)) != expected:
        raise InvalidInputError(f"A {kind.value} pool needs exactly its owner.")
    label = f"{organization.slug} {period} {kind.value} {team or member or ''} {name}".strip()
    account = account_create(
        name=label, currency=organization.currency, kind=AccountKind.POOL, is_limited=True
    )
    spend = account_create(
        name=f"{label} spend",
        currency=organization.currency,
        kind=AccountKind.SYSTEM,
        is_limited=False,
    )
    return Pool.objects.create(
        organization=organization,
        period=period,
        kind=kind,
        team=team,
        member=member,
        name=name,
        account=account,
        spend_account=spend,
    )


def credential_create(
    *,
    organization: Organization,
    kind: CredentialKind | str,
    alias: str,
    member: Member | None = None,
    team: Team | None = None,
    shared_pool_name: str = "",
    external_id: str = "",
    expires_at: datetime | None = None,
) -> Credential:
    """Register a spender's credential. Raises CrossOrganizationError, InvalidInputError."""
    kind = CredentialKind(kind)
    for owner in (member, team):
        if owner is not None and owner.organization_id != organization.pk:
            raise CrossOrganizationError("A credential's owner must be in its organization.")
    if kind == CredentialKind.INTERACTIVE and (member is None or shared_pool_name):
        raise InvalidInputError("An interactive credential belongs to a member.")
    if kind != CredentialKind.INTERACTIVE and (team is None or not shared_pool_name):
        raise InvalidInputError("Agent and CI credentials spend from a team's shared pool.")
    return Credential.objects.create(
        organization=organization,
        kind=kind,
        alias=alias,
        member=member,
        team=team,
        shared_pool_name=shared_pool_name,
        external_id=external_id,
        expires_at=expires_at,
    )


def gateway_token_create(*, organization: Organization, name: str) -> tuple[GatewayToken, str]:
    """A new gateway token; the raw token is returned once and only its hash is stored."""
    raw = f"blg_{secrets.token_urlsafe(32)}"
    token = GatewayToken.objects.create(
        organization=organization,
        name=name,
        token_hash=gateway_token_hash(raw),
        prefix=raw[:10],
    )
    return token, raw


def gateway_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def gateway_token_revoke(*, token: GatewayToken) -> GatewayToken:
    """Revoke a gateway token (idempotent)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
