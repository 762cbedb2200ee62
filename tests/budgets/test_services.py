"""Organizations, teams, members, periods, pools and credentials: creation and refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.test import Client

from allocation.demo import DemoOrganization
from budgets.errors import CrossOrganizationError, InvalidInputError
from budgets.models import OrganizationAccount, Pool, PoolKind, Role, Team
from budgets.services import (
    credential_create,
    member_create,
    organization_create,
    period_create,
    period_open,
    pool_create,
    team_create,
)

pytestmark = pytest.mark.django_db


def user(name: str) -> User:
    return get_user_model().objects.create_user(username=name, password="x")


def test_organization_gets_funding_and_lapsed_accounts() -> None:
    org = organization_create(name="Initech", slug="initech", currency="EUR", timezone="UTC")

    accounts = OrganizationAccount.objects.filter(organization=org).select_related("account")
    assert sorted((a.purpose, a.account.currency, a.account.is_limited) for a in accounts) == [
        ("funding", "EUR", False), ("lapsed", "EUR", False),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "overrides",
    [{"timezone": "Nowhere/City"}, {"fiscal_year_start_month": 13}, {"peer_transfer_limit": -1}],
)
def test_organization_refuses_bad_settings_and_creates_nothing(
    overrides: dict[str, object],
) -> None:
    with pytest.raises(InvalidInputError):
        organization_create(name="Bad", slug="bad", **overrides)  # type: ignore[arg-type]

    assert not OrganizationAccount.objects.exists()


def test_team_tree_stays_in_one_organization() -> None:
    one = organization_create(name="One", slug="one")
    two = organization_create(name="Two", slug="two")
    parent = team_create(organization=one, name="Platform", slug="platform")

    child = team_create(organization=one, name="Infra", slug="infra", parent=parent)
    with pytest.raises(CrossOrganizationError):
        team_create(organization=two, name="Infra", slug="infra", parent=parent)

    assert child.parent == parent
    assert not Team.objects.filter(organization=two).exists()


def test_members_join_one_organization_and_only_managers_manage() -> None:
    one = organization_create(name="One", slug="one")
    two = organization_create(name="Two", slug="two")
    team = team_create(organization=one, name="Platform", slug="platform")

    manager = member_create(
        organization=one, user=user("m"), role=Role.MANAGER, team=team, managed_teams=[team]
    )
    with pytest.raises(InvalidInputError):
        member_create(organization=one, user=user("e"), role=Role.ENGINEER, managed_teams=[team])
    with pytest.raises(CrossOrganizationError):
        member_create(organization=two, user=user("x"), team=team)

    assert manager.user.is_staff
    assert list(manager.managed_teams.all()) == [team]


def test_period_bounds_and_one_open_period_per_organization() -> None:
    org = organization_create(name="One", slug="one", timezone="America/New_York")
    q1 = period_create(organization=org, fiscal_year=2026, quarter=1)
    q2 = period_create(organization=org, fiscal_year=2026, quarter=2)

    period_open(period=q1)
    with pytest.raises(InvalidInputError):
        period_open(period=q2)
    with pytest.raises(InvalidInputError):
        period_open(period=q1)

    assert q1.starts_at == datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert q1.ends_at == datetime(2026, 4, 1, 4, tzinfo=UTC)  # daylight saving began


def test_pools_name_exactly_their_owner_once_per_period(acme: DemoOrganization) -> None:
    period = acme.period
    team = acme.teams["product"]

    with pytest.raises(InvalidInputError):
        pool_create(period=period, kind=PoolKind.TEAM)
    with pytest.raises(InvalidInputError):
        pool_create(period=period, kind=PoolKind.SHARED, team=team)
    with pytest.raises(IntegrityError), transaction.atomic():
        pool_create(period=period, kind=PoolKind.TEAM, team=team)

    shared = pool_create(period=period, kind=PoolKind.SHARED, team=team, name="review-bot")
    assert (shared.account.is_limited, shared.spend_account.is_limited) == (True, False)
    assert Pool.objects.filter(period=period, team=team, kind=PoolKind.TEAM).count() == 1


def test_credentials_bind_to_a_member_or_a_shared_pool(acme: DemoOrganization) -> None:
    org = acme.organization

    with pytest.raises(InvalidInputError):
        credential_create(organization=org, kind="interactive", alias="no-owner")
    with pytest.raises(InvalidInputError):
        credential_create(organization=org, kind="agent", alias="loose", team=acme.teams["product"])
    agent = credential_create(
        organization=org, kind="agent", alias="pr-agent", team=acme.teams["product"],
        shared_pool_name="agents", external_id="sha256:abc",
    )  # fmt: skip

    assert (agent.kind, agent.shared_pool_name) == ("agent", "agents")


def test_admin_edits_of_configuration_are_in_the_history_with_the_user(
    acme: DemoOrganization,
) -> None:
    operator = get_user_model().objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(operator)
    team = acme.teams["research"]

    response = client.post(
        f"/admin/budgets/team/{team.pk}/change/",
        {"organization": acme.organization.pk, "name": "Research Lab", "slug": "research",
         "cost_center": "CC-LAB", "is_active": "on"},
    )  # fmt: skip

    assert response.status_code == 302
    latest = team.history.latest()
    assert (latest.name, latest.cost_center, latest.history_user) == (
        "Research Lab", "CC-LAB", operator,
    )  # fmt: skip
    assert client.get(f"/admin/budgets/team/{team.pk}/history/").status_code == 200
