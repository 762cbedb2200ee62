"""Prometheus metrics: GET /metrics (docs/alerts.md, "Metrics").

Gateway latency histograms and counters are recorded by the gateway views; Celery task runs by
signals; per-organization budget, spent and reserved gauges are read from the books at scrape
time (one aggregate query; labels are the organization's slug and currency, so the label set is
bounded by the number of organizations).

With several processes (gunicorn workers, Celery workers) set ``PROMETHEUS_MULTIPROC_DIR`` to a
directory they share (on one host), as prometheus_client's multiprocess mode requires; the
scrape then sums them. Without it each process counts for itself.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from typing import Any

from celery.signals import task_postrun
from django.conf import settings
from django.db.models import F, Sum
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from budgets.models import PeriodStatus, Pool

GATEWAY_SECONDS = Histogram(
    "budget_ledger_gateway_request_seconds",
    "Time to answer a gateway call, by endpoint (errors included).",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
DECISIONS = Counter(
    "budget_ledger_gateway_decisions_total",
    "Authorization answers by decision and denial code.",
    ["decision", "code"],
)
HOLDS = Counter("budget_ledger_holds_total", "Holds placed by authorizations.")
SETTLES = Counter("budget_ledger_settles_total", "Authorizations settled, by status.", ["status"])
TASK_RUNS = Counter(
    "budget_ledger_task_runs_total", "Celery task runs, by task and outcome.", ["task", "outcome"]
)


class BooksCollector(Collector):
    """Per organization, over its open period's pools: budget, spent, reserved (micro-units)."""

    def collect(self) -> Iterator[Metric]:
        budget = GaugeMetricFamily(
            "budget_ledger_organization_budget_micros",
            "Money funded into the organization's open period (micro-units).",
            labels=["organization", "currency"],
        )
        spent = GaugeMetricFamily(
            "budget_ledger_organization_spent_micros",
            "Spent in the open period, overage included (micro-units).",
            labels=["organization", "currency"],
        )
        reserved = GaugeMetricFamily(
            "budget_ledger_organization_reserved_micros",
            "Held by open authorizations in the open period (micro-units).",
            labels=["organization", "currency"],
        )
        rows = (
            Pool.objects.filter(period__status=PeriodStatus.OPEN)
            .values("organization__slug", "organization__currency")
            .annotate(
                spent=Sum(F("spend_account__credits_posted") - F("spend_account__debits_posted")),
                reserved=Sum("account__debits_pending"),
            )
        )
        funded = dict(
            Pool.objects.filter(period__status=PeriodStatus.OPEN, kind="organization").values_list(
                "organization__slug", "account__credits_posted"
            )
        )
        for row in rows:
            labels = [row["organization__slug"], row["organization__currency"]]
            budget.add_metric(labels, funded.get(row["organization__slug"], 0))
            spent.add_metric(labels, row["spent"] or 0)
            reserved.add_metric(labels, row["reserved"] or 0)
        yield budget
        yield spent
        yield reserved


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return registry


_BOOKS = BooksCollector()


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The scrape. With METRICS_TOKEN set it needs ``Authorization: Bearer <token>``; without
    it, it answers only in debug (the books' totals are not for everyone)."""
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("A metrics token is required.\n", status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
    elif not settings.DEBUG:
        raise Http404
    registry = _registry()
    body = generate_latest(registry) + generate_latest(_BooksRegistry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


class _BooksRegistry(CollectorRegistry):
    """The books' gauges alone, read fresh at each scrape."""

    def __init__(self) -> None:
        super().__init__(auto_describe=False)
        self.register(_BOOKS)


@task_postrun.connect
def _task_ran(sender: Any = None, state: str | None = None, **kwargs: Any) -> None:
    name = getattr(sender, "name", "unknown")
    TASK_RUNS.labels(task=name, outcome="success" if state == "SUCCESS" else "failure").inc()
