"""Quarterly plans over the API: propose, edit lines and total, approve, compare with what the
pools really got; lines scoped by role; Idempotency-Key; a refusal writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from allocation.demo import DemoOrganization, demo_organization_create
from allocation.models import Plan, PlanLine
from allocation.periods import period_close, period_open_scheduled
from allocation.planning import plan_propose
from api.models import IdempotentAnswer
from budgets.models import Period
from budgets.services import period_create
from tests.api.finance import client_for
from tests.api.test_finance_writes import post
from tests.conftest import NOW, PASSWORD
from tests.spending import call

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def coming(acme: DemoOrganization) -> Period:
    """The next quarter, planned; platform-eng1 has spent $0.045 in this one."""
    call(acme, "c1")
    return period_create(organization=acme.organization, fiscal_year=2027, quarter=1)


def line_of(plan_body: dict[str, Any], **owner: Any) -> dict[str, Any]:
    lines: list[dict[str, Any]] = plan_body["lines"]
    [line] = [row for row in lines if all(row[k] == v for k, v in owner.items())]
    return line


def propose(acme: DemoOrganization, period: Period) -> Plan:
    return plan_propose(period=period, actor=acme.members["finance"], now=NOW)


def test_finance_proposes_from_the_measured_baseline(
    acme: DemoOrganization, coming: Period
) -> None:
    client = client_for(acme, "finance")
    body = {"period": coming.pk, "baseline": "period", "buffer": "0.2"}

    first = post(client, "/api/v1/plans", body, key="propose")
    again = post(client, "/api/v1/plans", body, key="propose")
    other = post(client, "/api/v1/plans", {**body, "buffer": "0.3"}, key="propose")

    plan = first.json()
    assert (first.status_code, plan["status"], plan["buffer"]) == (201, "draft", "0.200")
    assert len(plan["lines"]) == 17  # 4 teams, 12 engineers, the CI agents
    assert line_of(plan, kind="member", member=acme.members["platform-eng1"].pk) | {"id": 0} == {
        "id": 0, "kind": "member", "team": None, "member": acme.members["platform-eng1"].pk,
        "name": "", "baseline": {"amount": "0.045000", "currency": "USD"},
        "amount": {"amount": "0.054000", "currency": "USD"},
    }  # fmt: skip
    assert plan["total"] == {"amount": "0.054000", "currency": "USD"}
    assert (again.json(), again["Idempotent-Replayed"]) == (plan, "true")
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert Plan.objects.count() == 1


@pytest.mark.parametrize(
    ("role", "body", "expected"),
    [
        ("platform-lead", {}, (403, "not_allowed")),
        ("platform-eng1", {}, (403, "not_allowed")),
        ("finance", {"buffer": "-0.1"}, (400, "invalid")),
        ("finance", {"baseline": "1y"}, (400, "invalid")),
        ("finance", {"period": "open"}, (409, "period_state")),  # the open quarter
        ("finance", {"period": 999_999}, (404, "not_found")),
    ],
)
def test_a_refused_proposal_writes_nothing(
    acme: DemoOrganization, coming: Period, role: str, body: dict[str, Any], expected: Any
) -> None:
    period = acme.period.pk if body.get("period") == "open" else coming.pk
    body = {"period": period, **{k: v for k, v in body.items() if k != "period" or v != "open"}}

    response = post(client_for(acme, role), "/api/v1/plans", body, key="k")

    assert (response.status_code, response.json()["code"]) == expected
    assert (Plan.objects.count(), IdempotentAnswer.objects.count()) == (0, 0)


# Lines each role sees in a plan for the whole demo organization (17 lines); the total only
# for those who see the organization. platform-lead: Platform, Infra, the CI agents, 6 engineers.
LINES = {"admin": 17, "finance": 17, "platform-lead": 9, "product-lead": 4, "platform-eng1": 1}


@pytest.mark.parametrize("role", list(LINES))
def test_each_role_sees_its_lines(acme: DemoOrganization, coming: Period, role: str) -> None:
    plan = propose(acme, coming)
    client = client_for(acme, role)

    listed = client.get("/api/v1/plans").json()
    detail = client.get(f"/api/v1/plans/{plan.pk}").json()

    assert listed["count"] == 1
    assert listed["results"][0] == detail
    assert len(detail["lines"]) == LINES[role]
    sees_total = role in ("admin", "finance")
    assert (detail["total"] is not None) == sees_total
    if role == "platform-eng1":
        assert [line["member"] for line in detail["lines"]] == [acme.members[role].pk]


def test_another_organizations_plan_is_not_found(acme: DemoOrganization, coming: Period) -> None:
    globex = demo_organization_create(slug="globex", password=PASSWORD, now=NOW)
    foreign = propose(
        globex, period_create(organization=globex.organization, fiscal_year=2027, quarter=1)
    )
    line = foreign.lines.first()
    assert line is not None
    client = client_for(acme, "finance")

    answers = [
        client.get(f"/api/v1/plans/{foreign.pk}"),
        client.get(f"/api/v1/plans/{foreign.pk}/comparison"),
        post(client, f"/api/v1/plans/{foreign.pk}/approve"),
        post(client, f"/api/v1/plans/{foreign.pk}/total", {"total": "1"}),
        post(client, f"/api/v1/plans/{foreign.pk}/lines/{line.pk}", {"amount": "1"}),
        post(client, "/api/v1/plans", {"period": foreign.period_id}),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 6
    assert client.get("/api/v1/plans").json()["count"] == 0
    foreign.refresh_from_db()
    assert (foreign.status, Plan.objects.count()) == ("draft", 1)


def test_filters_and_ordering(acme: DemoOrganization, coming: Period) -> None:
    first, second = propose(acme, coming), propose(acme, coming)
    client = client_for(acme, "finance")
    post(client, f"/api/v1/plans/{second.pk}/approve")

    def ids(**query: Any) -> list[int]:
        return [row["id"] for row in client.get("/api/v1/plans", query).json()["results"]]

    assert ids(status="approved") == [second.pk]
    assert ids(status="draft") == [first.pk]
    assert ids(period=coming.pk, ordering="-id") == [second.pk, first.pk]
    assert ids(period=acme.period.pk) == []


def test_finance_edits_lines_and_total_then_approves(
    acme: DemoOrganization, coming: Period
) -> None:
    plan = propose(acme, coming)
    line = PlanLine.objects.get(plan=plan, member=acme.members["platform-eng1"])
    client = client_for(acme, "finance")

    post(client, f"/api/v1/plans/{plan.pk}/lines/{line.pk}", {"amount": "900"}, key="l")
    too_small = post(client, f"/api/v1/plans/{plan.pk}/approve")
    zero = post(client, f"/api/v1/plans/{plan.pk}/lines/{line.pk}", {"amount": "0"})
    edited = post(client, f"/api/v1/plans/{plan.pk}/lines/{line.pk}", {"amount": "900"}, key="l")
    total = post(client, f"/api/v1/plans/{plan.pk}/total", {"total": "1000"}, key="t")
    approved = post(client, f"/api/v1/plans/{plan.pk}/approve", key="a")
    after = post(client, f"/api/v1/plans/{plan.pk}/lines/{line.pk}", {"amount": "1"})

    assert line_of(zero.json(), id=line.pk)["amount"]["amount"] == "0.000000"
    assert edited["Idempotent-Replayed"] == "true"  # the first answer, amount 900
    assert line_of(edited.json(), id=line.pk)["amount"]["amount"] == "900.000000"
    assert (too_small.status_code, too_small.json()["code"]) == (409, "plan_total_too_small")
    assert total.json()["total"] == {"amount": "1000.000000", "currency": "USD"}
    assert (approved.status_code, approved.json()["status"]) == (200, "approved")
    assert approved.json()["approved_by"] == acme.members["finance"].pk
    assert (after.status_code, after.json()["code"]) == (409, "plan_not_draft")
    line.refresh_from_db()
    assert line.amount == 0  # the replayed 900 did not run again; the later 0 stands


@pytest.mark.parametrize(
    ("role", "owner", "expected"),
    [
        ("platform-lead", "platform-eng1", (403, "not_allowed")),  # sees the line, cannot plan
        ("platform-eng1", "platform-eng1", (403, "not_allowed")),
        ("platform-eng1", "platform-eng2", (404, "not_found")),
        ("product-lead", "platform-eng1", (404, "not_found")),
    ],
)
def test_only_finance_and_admins_edit(
    acme: DemoOrganization, coming: Period, role: str, owner: str, expected: Any
) -> None:
    plan = propose(acme, coming)
    line = PlanLine.objects.get(plan=plan, member=acme.members[owner])
    before = (plan.total, line.amount)
    client = client_for(acme, role)

    answers = [
        post(client, f"/api/v1/plans/{plan.pk}/lines/{line.pk}", {"amount": "1"}, key="1"),
        post(client, f"/api/v1/plans/{plan.pk}/total", {"total": "1"}, key="2"),
        post(client, f"/api/v1/plans/{plan.pk}/approve", key="3"),
    ]

    assert (answers[0].status_code, answers[0].json()["code"]) == expected
    assert [(a.status_code, a.json()["code"]) for a in answers[1:]] == [(403, "not_allowed")] * 2
    plan.refresh_from_db()
    line.refresh_from_db()
    assert (plan.status, plan.total, line.amount) == ("draft", *before)
    assert IdempotentAnswer.objects.count() == 0


def test_the_comparison_shows_what_each_visible_pool_got(
    acme: DemoOrganization, coming: Period
) -> None:
    plan = propose(acme, coming)
    finance = client_for(acme, "finance")
    eng1 = PlanLine.objects.get(plan=plan, member=acme.members["platform-eng1"])
    post(finance, f"/api/v1/plans/{plan.pk}/lines/{eng1.pk}", {"amount": "700"})
    post(finance, f"/api/v1/plans/{plan.pk}/total", {"total": "5000"})
    post(finance, f"/api/v1/plans/{plan.pk}/approve")
    before_open = client_for(acme, "platform-eng1").get(f"/api/v1/plans/{plan.pk}/comparison")

    period_close(period=acme.period, now=acme.period.ends_at)
    period_open_scheduled(period=coming, now=coming.starts_at)
    mine = client_for(acme, "platform-eng1").get(f"/api/v1/plans/{plan.pk}/comparison").json()
    everyone = finance.get(f"/api/v1/plans/{plan.pk}/comparison").json()

    assert before_open.json()[0]["allocated"] is None  # no pool in the period yet
    assert mine == [
        {
            "line": eng1.pk, "kind": "member", "team": None,
            "member": acme.members["platform-eng1"].pk, "name": "",
            "planned": {"amount": "700.000000", "currency": "USD"},
            "allocated": {"amount": "700.000000", "currency": "USD"},
            "spent": {"amount": "0.000000", "currency": "USD"},
        }
    ]  # fmt: skip
    assert len(everyone) == 17
