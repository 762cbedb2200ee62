"""A demo organization built through the services: used by ``seed_demo`` and by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction

from allocation.models import TransferRequest
from allocation.services import pool_allocate, pool_fund, transfer_request_create
from budgets.models import Member, Organization, Period, Pool, PoolKind, Role, Team
from budgets.periods import quarter_at
from budgets.services import (
    credential_create,
    member_create,
    organization_create,
    period_create,
    period_open,
    pool_create,
    team_create,
)

DOLLAR = 1_000_000


@dataclass
class DemoOrganization:
    organization: Organization
    period: Period
    org_pool: Pool
    teams: dict[str, Team] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)  # by team slug, username or shared name
    requests: list[TransferRequest] = field(default_factory=list)


@transaction.atomic
def demo_organization_create(
    *, slug: str = "acme", password: str, now: datetime, engineers_per_team: int = 3
) -> DemoOrganization:
    """Three teams (one with a sub-team), a manager each, engineers, finance, an admin, a CI
    shared pool; the current quarter open, funded and allocated; a few pending requests."""
    organization = organization_create(
        name=slug.capitalize(), slug=slug, currency="USD", timezone="Europe/Berlin",
        fiscal_year_start_month=2, peer_transfer_limit=25 * DOLLAR,
    )  # fmt: skip
    fiscal_year, quarter = quarter_at(
        timezone_name=organization.timezone,
        fiscal_year_start_month=organization.fiscal_year_start_month,
        instant=now,
    )
    period = period_open(
        period=period_create(organization=organization, fiscal_year=fiscal_year, quarter=quarter)
    )
    org_pool = pool_create(period=period, kind=PoolKind.ORGANIZATION)
    demo = DemoOrganization(organization=organization, period=period, org_pool=org_pool)
    users = get_user_model()

    def person(username: str, role: Role, team: Team | None, manages: list[Team]) -> Member:
        user = users.objects.create_user(
            username=f"{slug}-{username}", email=f"{username}@{slug}.example", password=password
        )
        member = member_create(
            organization=organization, user=user, role=role, team=team, managed_teams=manages
        )
        demo.members[username] = member
        return member

    admin = person("admin", Role.ADMIN, None, [])
    finance = person("finance", Role.FINANCE, None, [])
    pool_fund(pool=org_pool, amount=100_000 * DOLLAR, actor=finance)

    layout = [("platform", None), ("infra", "platform"), ("product", None), ("research", None)]
    for team_slug, parent_slug in layout:
        parent = demo.teams.get(parent_slug) if parent_slug else None
        team = team_create(
            organization=organization, name=team_slug.capitalize(), slug=team_slug,
            parent=parent, cost_center=f"CC-{team_slug.upper()}",
        )  # fmt: skip
        demo.teams[team_slug] = team
        pool = pool_create(period=period, kind=PoolKind.TEAM, team=team)
        demo.pools[team_slug] = pool
        manager = person(f"{team_slug}-lead", Role.MANAGER, team, [team])
        upper = demo.pools[parent_slug] if parent_slug else org_pool
        allocator = (
            admin if upper.kind == PoolKind.ORGANIZATION else demo.members[f"{parent_slug}-lead"]
        )
        pool_allocate(
            source=upper, target=pool, amount=(5_000 if parent else 20_000) * DOLLAR,
            actor=allocator, reason="quarterly allocation",
        )  # fmt: skip
        for index in range(1, engineers_per_team + 1):
            name = f"{team_slug}-eng{index}"
            engineer = person(name, Role.ENGINEER, team, [])
            demo.pools[name] = pool_create(period=period, kind=PoolKind.MEMBER, member=engineer)
            pool_allocate(
                source=pool, target=demo.pools[name], amount=1_000 * DOLLAR, actor=manager,
                reason="quarterly allocation",
            )  # fmt: skip
            credential_create(
                organization=organization, kind="interactive", alias=f"{name}-claude-code",
                member=engineer,
            )  # fmt: skip

    platform = demo.teams["platform"]
    ci = pool_create(period=period, kind=PoolKind.SHARED, team=platform, name="ci-agents")
    demo.pools["ci-agents"] = ci
    pool_allocate(
        source=demo.pools["platform"], target=ci, amount=2_000 * DOLLAR,
        actor=demo.members["platform-lead"], reason="CI agents",
    )  # fmt: skip
    credential_create(
        organization=organization, kind="ci", alias="ci-review-bot", team=platform,
        shared_pool_name="ci-agents",
    )  # fmt: skip

    # Pending requests: a peer gift over the peer limit, a pull from a team, a team-to-team ask.
    asks = [
        ("platform-eng1", "product-eng1", 40, "pairing on the payments migration"),
        ("product", "product-eng2", 300, "agent-heavy refactor this sprint"),
        ("research", "infra", 500, "benchmark runs for the new cluster"),
    ]
    for source, target, dollars, reason in asks:
        if source not in demo.pools or target not in demo.pools:
            continue  # a smaller demo (fewer engineers per team) skips that ask
        requester = demo.members.get(target) or demo.members[f"{target}-lead"]
        demo.requests.append(
            transfer_request_create(
                source=demo.pools[source],
                target=demo.pools[target],
                amount=dollars * DOLLAR,
                reason=reason,
                requester=requester,
            )
        )
    return demo
