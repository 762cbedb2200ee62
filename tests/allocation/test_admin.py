"""Django admin for managers: who sees which requests, pools and members, and who decides."""

from __future__ import annotations

import pytest
from django.test import Client

from allocation.demo import DOLLAR, DemoOrganization, demo_organization_create
from allocation.models import TransferRequest
from budgets.models import Member
from budgets.selectors import pool_balance
from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db
LIST = "/admin/allocation/transferrequest/"


def client_for(member: Member | None) -> Client:
    client = Client()
    if member is not None:
        client.force_login(member.user)
    return client


def listed(client: Client, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].queryset}


@pytest.fixture
def globex() -> DemoOrganization:
    return demo_organization_create(slug="globex", password=PASSWORD, now=NOW, engineers_per_team=2)


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("product-lead", {0, 1}),  # requests into or out of Product
        ("research-lead", {2}),
        ("platform-lead", {0, 2}),  # platform-eng1's pool; Infra is Platform's sub-team
        ("finance", {0, 1, 2}),
        ("admin", {0, 1, 2}),
    ],
)
def test_each_role_lists_only_the_requests_it_may_see(
    acme: DemoOrganization, globex: DemoOrganization, who: str, visible: set[int]
) -> None:
    client = client_for(acme.members[who])

    assert listed(client, LIST) == {acme.requests[i].pk for i in visible}


@pytest.mark.parametrize("who", [None, "product-eng1"])
def test_anonymous_and_engineers_are_sent_to_the_login(
    acme: DemoOrganization, who: str | None
) -> None:
    client = client_for(acme.members[who] if who else None)

    response = client.get(LIST)
    approve = client.post(f"{LIST}{acme.requests[1].pk}/approve/")

    assert (response.status_code, approve.status_code) == (302, 302)
    assert "/admin/login/" in response["Location"]
    assert "/admin/login/" in approve["Location"]
    assert TransferRequest.objects.get(pk=acme.requests[1].pk).status == "pending"


def test_another_organization_sees_nothing_and_cannot_decide(
    acme: DemoOrganization, globex: DemoOrganization
) -> None:
    client = client_for(globex.members["admin"])
    ask = acme.requests[1]

    assert listed(client, LIST) == {r.pk for r in globex.requests}
    assert listed(client, "/admin/budgets/pool/") == {p.pk for p in globex.organization.pools.all()}
    assert client.get(f"{LIST}{ask.pk}/change/").status_code == 302
    assert client.post(f"{LIST}{ask.pk}/approve/").status_code == 404
    assert TransferRequest.objects.get(pk=ask.pk).status == "pending"


def test_manager_approves_from_the_detail_page_and_balances_change(
    acme: DemoOrganization,
) -> None:
    client = client_for(acme.members["product-lead"])
    ask = acme.requests[1]

    page = client.get(f"{LIST}{ask.pk}/change/")
    assert page.status_code == 200
    assert 'id="approve-button"' in page.content.decode()
    assert [b[2] for b in page.context["balances"]] == ["17000.000000 USD", "1000.000000 USD"]
    response = client.post(f"{LIST}{ask.pk}/approve/", follow=True)

    ask.refresh_from_db()
    assert ask.status == "executed"
    assert [b[2] for b in response.context["balances"]] == ["16700.000000 USD", "1300.000000 USD"]
    assert "approved and executed" in response.content.decode()
    assert 'id="approve-button"' not in response.content.decode()


def test_manager_of_another_team_cannot_open_or_approve(acme: DemoOrganization) -> None:
    client = client_for(acme.members["research-lead"])
    ask = acme.requests[1]

    assert client.get(f"{LIST}{ask.pk}/change/").status_code == 302
    assert client.post(f"{LIST}{ask.pk}/approve/").status_code == 404
    assert TransferRequest.objects.get(pk=ask.pk).status == "pending"


def test_finance_sees_but_cannot_decide(acme: DemoOrganization) -> None:
    client = client_for(acme.members["finance"])
    ask = acme.requests[1]

    page = client.get(f"{LIST}{ask.pk}/change/")
    response = client.post(f"{LIST}{ask.pk}/approve/", follow=True)

    assert 'id="approve-button"' not in page.content.decode()
    assert "(not_allowed)" in response.content.decode()
    assert TransferRequest.objects.get(pk=ask.pk).status == "pending"
    assert client.get(LIST).context["action_form"] is None  # no decision actions


def test_reject_needs_a_reason_then_records_it(acme: DemoOrganization) -> None:
    client = client_for(acme.members["product-lead"])
    ask = acme.requests[1]

    empty = client.post(f"{LIST}{ask.pk}/reject/", {"reason": " "}, follow=True)
    assert "(reason_required)" in empty.content.decode()
    client.post(f"{LIST}{ask.pk}/reject/", {"reason": "not this sprint"})

    ask.refresh_from_db()
    assert (ask.status, ask.decision_reason) == ("rejected", "not this sprint")
    history = client.get(f"{LIST}{ask.pk}/history/")
    assert history.status_code == 200
    assert "acme-product-lead" in history.content.decode()


def test_bulk_actions_approve_and_reject_with_a_reason(acme: DemoOrganization) -> None:
    client = client_for(acme.members["admin"])
    first, second = acme.requests[1], acme.requests[2]

    client.post(LIST, {"action": "approve_selected", "_selected_action": [first.pk]})
    form = client.post(LIST, {"action": "reject_selected", "_selected_action": [second.pk]})
    assert "needs a reason" in form.content.decode()
    client.post(
        LIST,
        {"action": "reject_selected", "_selected_action": [second.pk], "apply": "1",
         "reason": "budget freeze"},
    )  # fmt: skip

    assert TransferRequest.objects.get(pk=first.pk).status == "executed"
    assert TransferRequest.objects.get(pk=second.pk).decision_reason == "budget freeze"
    assert pool_balance(pool=acme.pools["product-eng2"]).available == 1_300 * DOLLAR


def test_list_filters_by_status_team_and_requester(acme: DemoOrganization) -> None:
    client = client_for(acme.members["admin"])
    research = acme.teams["research"].pk
    requester = acme.members["product-eng2"].pk

    assert listed(client, f"{LIST}?team={research}") == {acme.requests[2].pk}
    assert listed(client, f"{LIST}?requester__id__exact={requester}") == {acme.requests[1].pk}
    assert listed(client, f"{LIST}?status__exact=executed") == set()


@pytest.mark.parametrize(
    ("who", "pools", "members"),
    [
        ("product-lead", {"product", "product-eng1", "product-eng2", "product-eng3"},
         {"product-lead", "product-eng1", "product-eng2", "product-eng3"}),
        ("platform-lead", {"platform", "infra", "ci-agents", "platform-eng1", "platform-eng2",
                           "platform-eng3", "infra-eng1", "infra-eng2", "infra-eng3"},
         {"platform-lead", "platform-eng1", "platform-eng2", "platform-eng3", "infra-lead",
          "infra-eng1", "infra-eng2", "infra-eng3"}),
    ],
)  # fmt: skip
def test_managers_see_their_teams_pools_and_members(
    acme: DemoOrganization, who: str, pools: set[str], members: set[str]
) -> None:
    client = client_for(acme.members[who])

    assert listed(client, "/admin/budgets/pool/") == {acme.pools[name].pk for name in pools}
    assert listed(client, "/admin/budgets/member/") == {acme.members[m].pk for m in members}


def test_pool_list_shows_balances_as_money(acme: DemoOrganization) -> None:
    client = client_for(acme.members["finance"])

    body = client.get("/admin/budgets/pool/").content.decode()

    assert "40000.000000 USD" in body  # the org pool's available
    assert client.get(f"/admin/budgets/pool/{acme.org_pool.pk}/change/").status_code == 200
    assert client.get(f"/admin/budgets/pool/{acme.org_pool.pk}/history/").status_code == 200
