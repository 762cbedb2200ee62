"""GET /metrics: a Prometheus scrape, parsed, with the gateway's counters and the books' gauges."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from allocation.demo import DOLLAR, DemoOrganization
from tests.api.test_authorizations import authorize, settle

pytestmark = pytest.mark.django_db
TOKEN = "metrics-secret"


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def metrics_token(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN


def test_the_scrape_counts_gateway_calls_and_reports_the_books(
    metrics_token: None, gateway: APIClient, acme: DemoOrganization
) -> None:
    client = Client()
    before = scrape(client)

    held = authorize(gateway, key="m1").json()
    settle(gateway, held["id"], input_tokens=10_000, output_tokens=1_000)
    authorize(gateway, key="m2", amount="5000")  # a denial: budget_exhausted
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("budget_ledger_gateway_request_seconds_count", endpoint="authorize") == 2
    assert delta("budget_ledger_gateway_request_seconds_count", endpoint="settle") == 1
    assert delta("budget_ledger_gateway_decisions_total", decision="allow", code="") == 1
    assert delta("budget_ledger_gateway_decisions_total", decision="deny",
                 code="budget_exhausted") == 1  # fmt: skip
    assert delta("budget_ledger_holds_total") == 1
    assert delta("budget_ledger_settles_total", status="settled") == 1
    org = (("currency", "USD"), ("organization", "acme"))
    assert after[("budget_ledger_organization_budget_micros", org)] == 100_000 * DOLLAR
    assert after[("budget_ledger_organization_spent_micros", org)] == 45_000  # $0.045
    assert after[("budget_ledger_organization_reserved_micros", org)] == 0


def test_without_the_token_the_scrape_is_refused(metrics_token: None) -> None:
    client = Client()

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")

    assert (missing.status_code, wrong.status_code) == (401, 401)


def test_with_no_token_configured_it_is_hidden_outside_debug(settings: Any) -> None:
    settings.METRICS_TOKEN, settings.DEBUG = None, False

    assert Client().get("/metrics").status_code == 404


def test_task_runs_and_failures_are_counted(
    metrics_token: None, acme: DemoOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budgets import tasks

    client = Client()
    before = scrape(client)
    tasks.alerts_check_task.apply()

    def broken(**kwargs: Any) -> list[int]:
        raise RuntimeError("the books are on fire")

    monkeypatch.setattr(tasks, "alerts_check", broken)
    failed = tasks.alerts_check_task.apply(throw=False)
    after = scrape(client)

    def delta(outcome: str) -> float:
        key = ("budget_ledger_task_runs_total",
               (("outcome", outcome), ("task", "budgets.tasks.alerts_check_task")))  # fmt: skip
        return after.get(key, 0) - before.get(key, 0)

    assert failed.failed()
    assert (delta("success"), delta("failure")) == (1, 1)
