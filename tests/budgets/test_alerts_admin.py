"""Alerts, webhooks and deliveries in Django admin: who sees, acknowledges, adds and re-sends."""

from __future__ import annotations

import pytest
from django.test import Client

from allocation.demo import DemoOrganization, demo_organization_create
from budgets.alerts import Candidate, alert_raise
from budgets.models import Alert, AlertSettings, Member, WebhookDelivery, WebhookSubscription
from budgets.webhooks import webhook_create
from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db
ALERTS = "/admin/budgets/alert/"
JSON = "application/json"


def client_for(member: Member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def listed(client: Client, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].queryset}


def alert_on(demo: DemoOrganization, pool: str) -> Alert:
    alert_raise(
        organization=demo.organization,
        candidate=Candidate(kind="threshold", key=f"threshold:{pool}", message=f"{pool} at 80%",
                            pool=demo.pools[pool]),
        now=NOW,
    )  # fmt: skip
    return Alert.objects.get(organization=demo.organization, key=f"threshold:{pool}")


@pytest.fixture
def alerts(acme: DemoOrganization) -> dict[str, Alert]:
    globex = demo_organization_create(slug="globex", password=PASSWORD, now=NOW,
                                      engineers_per_team=2)  # fmt: skip
    return {
        "platform": alert_on(acme, "platform-eng1"),
        "product": alert_on(acme, "product-eng1"),
        "globex": alert_on(globex, "platform-eng1"),
    }


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("platform-lead", {"platform"}),
        ("product-lead", {"product"}),
        ("finance", {"platform", "product"}),
        ("admin", {"platform", "product"}),
    ],
)
def test_each_role_lists_only_its_alerts(
    acme: DemoOrganization, alerts: dict[str, Alert], who: str, visible: set[str]
) -> None:
    assert listed(client_for(acme.members[who]), ALERTS) == {alerts[name].pk for name in visible}


def test_an_engineer_has_no_admin(acme: DemoOrganization, alerts: dict[str, Alert]) -> None:
    response = client_for(acme.members["platform-eng1"]).get(ALERTS)

    assert response.status_code == 302


def test_a_manager_acknowledges_an_alert_of_their_team(
    acme: DemoOrganization, alerts: dict[str, Alert]
) -> None:
    client = client_for(acme.members["platform-lead"])

    client.post(ALERTS, {"action": "acknowledge_selected",
                         "_selected_action": [alerts["platform"].pk]})  # fmt: skip

    alerts["platform"].refresh_from_db()
    assert alerts["platform"].acknowledged_by == acme.members["platform-lead"]


def test_an_org_admin_adds_a_webhook_and_finance_cannot(acme: DemoOrganization) -> None:
    form = {"name": "ops", "url": "https://hooks.example/ledger", "events": '["threshold"]',
            "format": "json", "is_active": "on"}  # fmt: skip

    refused = client_for(acme.members["finance"]).post("/admin/budgets/webhooksubscription/add/",
                                                       form)  # fmt: skip
    client_for(acme.members["admin"]).post("/admin/budgets/webhooksubscription/add/", form)

    assert refused.status_code == 403
    hook = WebhookSubscription.objects.get()
    assert (hook.organization, hook.events) == (acme.organization, ["threshold"])
    assert hook.secret.startswith("whsec_")
    assert len(hook.secret) > 40
    page = client_for(acme.members["admin"]).get(
        f"/admin/budgets/webhooksubscription/{hook.pk}/change/"
    )
    assert hook.secret in page.content.decode()


@pytest.mark.parametrize("thresholds", ['"0.8"', '["abc"]', '["NaN"]', "[true]", '["0"]'])
def test_an_org_admin_cannot_save_thresholds_the_check_cannot_read(
    acme: DemoOrganization, thresholds: str
) -> None:
    form = {"thresholds": thresholds, "day_multiple": "3", "session_multiple": "10",
            "call_amount": "25000000"}  # fmt: skip

    response = client_for(acme.members["admin"]).post("/admin/budgets/alertsettings/add/", form)

    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["thresholds"]
    assert not AlertSettings.objects.exists()


def test_only_an_org_admin_resends_a_delivery(
    acme: DemoOrganization, alerts: dict[str, Alert], monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = webhook_create(organization=acme.organization, name="ops",
                          url="http://127.0.0.1:9/x", events=[])  # fmt: skip
    delivery = WebhookDelivery.objects.create(subscription=hook, alert=alerts["platform"],
                                              status="failed", attempts=10)  # fmt: skip
    sent: list[int] = []
    monkeypatch.setattr("budgets.tasks.webhook_deliver.delay", sent.append)
    url = "/admin/budgets/webhookdelivery/"
    post = {"action": "resend_selected", "_selected_action": [delivery.pk]}

    client_for(acme.members["finance"]).post(url, post)
    delivery.refresh_from_db()
    assert (delivery.status, sent) == ("failed", [])

    client_for(acme.members["admin"]).post(url, post)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, sent) == ("pending", 0, [delivery.pk])


# --- the same over the API ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("platform-lead", {"platform"}),
        ("platform-eng1", {"platform"}),  # their own pool's
        ("product-eng1", {"product"}),
        ("finance", {"platform", "product"}),
    ],
)
def test_the_api_lists_each_role_its_alerts(
    acme: DemoOrganization, alerts: dict[str, Alert], who: str, visible: set[str]
) -> None:
    response = client_for(acme.members[who]).get("/api/v1/alerts")

    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {
        alerts[name].pk for name in visible
    }


def test_acknowledge_over_the_api(acme: DemoOrganization, alerts: dict[str, Alert]) -> None:
    lead = client_for(acme.members["platform-lead"])
    url = f"/api/v1/alerts/{alerts['platform'].pk}/acknowledge"

    first = lead.post(url, HTTP_IDEMPOTENCY_KEY="ack-1", content_type=JSON)
    replay = lead.post(url, HTTP_IDEMPOTENCY_KEY="ack-1", content_type=JSON)
    again = lead.post(url, HTTP_IDEMPOTENCY_KEY="ack-2", content_type=JSON)
    engineer = client_for(acme.members["platform-eng1"]).post(
        url, HTTP_IDEMPOTENCY_KEY="ack-3", content_type=JSON
    )
    foreign = lead.post(f"/api/v1/alerts/{alerts['globex'].pk}/acknowledge", content_type=JSON)
    unacknowledged = lead.get("/api/v1/alerts?acknowledged=false").json()["results"]

    assert (first.status_code, first.json()["acknowledged_by"]) == (
        200, acme.members["platform-lead"].pk,
    )  # fmt: skip
    assert replay.json() == first.json()
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state")
    assert (engineer.status_code, engineer.json()["code"]) == (403, "not_allowed")
    assert foreign.status_code == 404
    assert unacknowledged == []
