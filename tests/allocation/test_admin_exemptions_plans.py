"""Django admin for exemptions and plans: who sees what and who decides (the matrix of the
transfer requests: anonymous, engineer, manager of the team, of another team, finance, admin,
another organization)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from allocation.demo import DOLLAR, DemoOrganization, demo_organization_create
from allocation.exemptions import exemption_request
from allocation.models import Exemption
from tests.allocation.test_admin import client_for, listed
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LIST = "/admin/allocation/exemption/"


def ask(demo: DemoOrganization) -> Exemption:
    now = timezone.now()
    return exemption_request(
        pool=demo.pools["product-eng1"], amount=200 * DOLLAR, starts_at=now,
        ends_at=now + timedelta(days=1), use_case="agent migration", reason="release",
        requester=demo.members["product-eng1"], now=now,
    )  # fmt: skip


@pytest.fixture
def demos() -> tuple[DemoOrganization, DemoOrganization, Exemption, Exemption]:
    now = timezone.now()
    acme = demo_organization_create(slug="acme", password=PASSWORD, now=now)
    globex = demo_organization_create(
        slug="globex", password=PASSWORD, now=now, engineers_per_team=1
    )
    return acme, globex, ask(acme), ask(globex)


@pytest.mark.parametrize(
    ("who", "sees", "decides"),
    [
        ("product-lead", True, True),
        ("research-lead", False, False),
        ("finance", True, False),
        ("admin", True, True),
    ],
)
def test_each_role_sees_and_decides_as_its_scope_allows(
    demos: tuple[DemoOrganization, DemoOrganization, Exemption, Exemption],
    who: str, sees: bool, decides: bool,
) -> None:  # fmt: skip
    acme, _, mine, theirs = demos
    client = client_for(acme.members[who])

    assert listed(client, LIST) == ({mine.pk} if sees else set())
    client.post(f"{LIST}{mine.pk}/approve/")

    mine.refresh_from_db()
    assert mine.status == ("granted" if decides else "pending")
    theirs.refresh_from_db()
    assert theirs.status == "pending"


@pytest.mark.parametrize("who", [None, "product-eng1"])
def test_anonymous_and_engineers_are_sent_to_the_login(
    demos: tuple[DemoOrganization, DemoOrganization, Exemption, Exemption], who: str | None
) -> None:
    acme, _, mine, _ = demos
    client = client_for(acme.members[who] if who else None)

    response = client.post(f"{LIST}{mine.pk}/approve/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    mine.refresh_from_db()
    assert mine.status == "pending"


def test_another_organization_cannot_open_or_decide(
    demos: tuple[DemoOrganization, DemoOrganization, Exemption, Exemption],
) -> None:
    _, globex, mine, theirs = demos
    client = client_for(globex.members["admin"])

    assert listed(client, LIST) == {theirs.pk}
    assert client.post(f"{LIST}{mine.pk}/approve/").status_code == 404
    mine.refresh_from_db()
    assert mine.status == "pending"


def test_manager_sees_buttons_rejects_with_a_reason_and_admin_revokes(
    demos: tuple[DemoOrganization, DemoOrganization, Exemption, Exemption],
) -> None:
    acme, _, mine, _ = demos
    lead = client_for(acme.members["product-lead"])

    page = lead.get(f"{LIST}{mine.pk}/change/").content.decode()
    assert 'id="approve-button"' in page
    empty = lead.post(f"{LIST}{mine.pk}/reject/", {"reason": ""}, follow=True)
    assert "(reason_required)" in empty.content.decode()
    lead.post(f"{LIST}{mine.pk}/approve/")
    admin = client_for(acme.members["admin"])
    assert 'id="revoke-button"' in admin.get(f"{LIST}{mine.pk}/change/").content.decode()
    admin.post(f"{LIST}{mine.pk}/revoke/")

    mine.refresh_from_db()
    assert (mine.status, mine.clawed_back) == ("revoked", 200 * DOLLAR)
    assert client_for(acme.members["admin"]).get(f"{LIST}{mine.pk}/history/").status_code == 200
