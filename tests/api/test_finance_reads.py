"""People's read endpoints: tokens, the role matrix, other organizations, filters, pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.demo import DemoOrganization, demo_organization_create
from api.models import PersonalToken
from api.tokens import personal_token_create, personal_token_hash, personal_token_revoke
from tests.api.finance import client_for
from tests.conftest import NOW, PASSWORD
from tests.spending import call

pytestmark = pytest.mark.django_db

ROLES = ("admin", "finance", "platform-lead", "platform-eng1")

# How many of each the demo's members see: 18 pools (org, 4 teams, 12 engineers, CI), 18
# members, 4 teams. platform-lead manages platform and its sub-team infra.
MATRIX = {
    "/api/v1/organizations": {"admin": 1, "finance": 1, "platform-lead": 1, "platform-eng1": 1},
    "/api/v1/teams": {"admin": 4, "finance": 4, "platform-lead": 2, "platform-eng1": 1},
    "/api/v1/members": {"admin": 18, "finance": 18, "platform-lead": 8, "platform-eng1": 1},
    "/api/v1/periods": {"admin": 1, "finance": 1, "platform-lead": 1, "platform-eng1": 1},
    "/api/v1/pools": {"admin": 18, "finance": 18, "platform-lead": 9, "platform-eng1": 1},
    # The three pending asks: platform-lead's teams are the source of one and the target of
    # another; platform-eng1's pool is the source of the first.
    "/api/v1/transfer-requests": {
        "admin": 3,
        "finance": 3,
        "platform-lead": 2,
        "platform-eng1": 1,
    },
    # Funding, 4 team, 12 engineer and 1 CI allocations; a hold and its post per call.
    "/api/v1/transfers": {"admin": 22, "finance": 22, "platform-lead": 11, "platform-eng1": 3},
    "/api/v1/authorization-records": {
        "admin": 2,
        "finance": 2,
        "platform-lead": 1,
        "platform-eng1": 1,
    },
}


@pytest.fixture
def spent(acme: DemoOrganization) -> DemoOrganization:
    call(acme, "eng1-1")
    call(acme, "product-1", subject="product-eng1-claude-code")
    return acme


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", list(MATRIX))
def test_each_role_sees_its_scope(spent: DemoOrganization, path: str, role: str) -> None:
    response = client_for(spent, role).get(path)

    assert response.status_code == 200
    assert response.json()["count"] == MATRIX[path][role]


@pytest.mark.parametrize("role", ROLES)
def test_another_organizations_objects_are_not_found(acme: DemoOrganization, role: str) -> None:
    globex = demo_organization_create(slug="globex", password=PASSWORD, now=NOW)
    client = client_for(acme, role)

    paths = [
        f"/api/v1/organizations/{globex.organization.pk}",
        f"/api/v1/teams/{globex.teams['platform'].pk}",
        f"/api/v1/members/{globex.members['finance'].pk}",
        f"/api/v1/periods/{globex.period.pk}",
        f"/api/v1/pools/{globex.org_pool.pk}",
        f"/api/v1/transfer-requests/{globex.requests[0].pk}",
    ]
    answers = [client.get(path) for path in paths]

    assert [a.status_code for a in answers] == [404] * len(paths)
    assert {a.json()["code"] for a in answers} == {"not_found"}


def test_a_manager_does_not_see_another_teams_pool(acme: DemoOrganization) -> None:
    response = client_for(acme, "platform-lead").get(f"/api/v1/pools/{acme.pools['product'].pk}")

    assert response.status_code == 404


def test_a_pool_shows_its_balances_as_money(spent: DemoOrganization) -> None:
    pool = spent.pools["platform-eng1"]

    body = client_for(spent, "platform-eng1").get(f"/api/v1/pools/{pool.pk}").json()

    assert body["balance"] == {
        "budget": {"amount": "1000.000000", "currency": "USD"},
        "moved_out": {"amount": "0.000000", "currency": "USD"},
        "spent": {"amount": "0.045000", "currency": "USD"},
        "reserved": {"amount": "0.000000", "currency": "USD"},
        "available": {"amount": "999.955000", "currency": "USD"},
    }


def test_no_credentials_is_401_and_a_user_without_membership_is_403(
    acme: DemoOrganization,
) -> None:
    anonymous = APIClient().get("/api/v1/pools")
    outsider = get_user_model().objects.create_user(username="outsider", password=PASSWORD)
    _, raw = personal_token_create(user=outsider, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")

    stranger = client.get("/api/v1/pools")

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert (stranger.status_code, stranger.json()["code"]) == (403, "not_a_member")


def test_a_session_signs_in_people_too(acme: DemoOrganization) -> None:
    client = APIClient()
    assert client.login(username="acme-finance", password=PASSWORD)

    assert client.get("/api/v1/pools").json()["count"] == 18


def test_tokens_are_stored_hashed_and_stop_working_when_revoked_or_expired(
    acme: DemoOrganization,
) -> None:
    user = acme.members["finance"].user
    token, raw = personal_token_create(user=user, name="sheet")
    old, old_raw = personal_token_create(user=user, name="old", lifetime=timedelta(days=1))
    PersonalToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(1))

    def status(secret: str) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
        return int(client.get("/api/v1/organizations").status_code)

    before = status(raw)
    personal_token_revoke(token=token)

    assert token.token_hash == personal_token_hash(raw)
    assert raw not in token.token_hash
    assert (before, status(raw), status(old_raw), status("blp_nonsense")) == (200, 401, 401, 401)


def test_the_command_creates_a_token_that_works(acme: DemoOrganization, capsys: object) -> None:
    call_command("create_api_token", user="acme-finance", name="cli", days=7)
    raw = capsys.readouterr().out.strip().splitlines()[-1]  # type: ignore[attr-defined]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")

    assert client.get("/api/v1/organizations").status_code == 200


def test_pools_filter_by_kind_and_team_and_paginate(acme: DemoOrganization) -> None:
    client = client_for(acme, "finance")
    team = str(acme.teams["platform"].pk)

    members = client.get("/api/v1/pools", {"kind": "member"}).json()
    of_team = client.get("/api/v1/pools", {"team": team, "kind": "shared"}).json()
    page = client.get("/api/v1/pools", {"page_size": "5", "page": "2", "ordering": "-id"}).json()
    beyond = client.get("/api/v1/pools", {"page": "99"})

    assert members["count"] == 12
    assert [p["name"] for p in of_team["results"]] == ["ci-agents"]
    assert len(page["results"]) == 5
    assert page["previous"] is not None
    assert [p["id"] for p in page["results"]] == sorted(
        (p["id"] for p in page["results"]), reverse=True
    )
    assert (beyond.status_code, beyond.json()["code"]) == (404, "not_found")


def test_transfers_filter_by_pool_code_range_and_tag(spent: DemoOrganization) -> None:
    call(spent, "eng1-2", tags={"repo": "acme/api", "pr": "7"})
    client = client_for(spent, "finance")
    pool = str(spent.pools["platform-eng1"].pk)

    spend = client.get("/api/v1/transfers", {"pool": pool, "code": "spend", "phase": "post"})
    tagged = client.get("/api/v1/transfers", {"tag": "pr:7"})
    later = client.get("/api/v1/transfers", {"created_after": "2099-01-01T00:00:00Z"})
    bad_tag = client.get("/api/v1/transfers", {"tag": "nonsense"})
    bad_code = client.get("/api/v1/transfers", {"code": "gift"})

    assert [t["amount"]["amount"] for t in spend.json()["results"]] == ["0.045000", "0.045000"]
    assert tagged.json()["count"] == 1
    assert later.json()["count"] == 0
    assert (bad_tag.status_code, bad_tag.json()["code"]) == (400, "invalid_input")
    assert (bad_code.status_code, bad_code.json()["code"]) == (400, "invalid")


def test_authorization_records_filter_by_tag_and_status(spent: DemoOrganization) -> None:
    call(spent, "eng1-2", tags={"repo": "acme/api"})
    client = client_for(spent, "finance")

    tagged = client.get("/api/v1/authorization-records", {"tag": "repo:acme/api"}).json()
    settled = client.get("/api/v1/authorization-records", {"status": "settled"}).json()

    assert tagged["count"] == 1
    assert tagged["results"][0]["charged"]["amount"] == "0.045000"
    assert settled["count"] == 3


def test_an_offset_postgresql_refuses_is_read_as_utc(acme: DemoOrganization) -> None:
    # Found by schemathesis: PostgreSQL refuses offsets beyond 15:59 that Python accepts.
    client = client_for(acme, "finance")

    transfers = client.get("/api/v1/transfers", {"created_before": "0181-09-28T23:02:41+22:47"})
    report = client.get(
        "/api/v1/reports/spend",
        {"start": "2026-11-01T00:00:00+23:00", "end": "2026-12-01T00:00:00-23:30"},
    )
    overflow = client.get("/api/v1/transfers", {"created_before": "0001-01-01T00:00:00+23:00"})

    assert (transfers.status_code, transfers.json()["count"]) == (200, 0)
    assert report.status_code == 200
    assert (overflow.status_code, overflow.json()["code"]) == (400, "invalid")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/pools/99999999999999999999999",
        "/api/v1/plans/179733238241586774016/lines/409",
        "/api/v1/alerts/9223372036854775808",
    ],
)
def test_an_id_too_large_for_the_database_is_not_found(acme: DemoOrganization, path: str) -> None:
    client = client_for(acme, "finance")

    response = client.post(path, {}, format="json") if "lines" in path else client.get(path)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
