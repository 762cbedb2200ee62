"""Plans: who plans, an approved plan is immutable, approval needs total >= lines; admin."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import transaction

from allocation.demo import DOLLAR, DemoOrganization, demo_organization_create
from allocation.errors import PeriodStateError, PlanNotDraftError, PlanTotalTooSmallError
from allocation.models import Plan
from allocation.periods import period_close, period_open_scheduled
from allocation.planning import plan_approve, plan_line_set, plan_propose, plan_total_set
from budgets.errors import NotAllowedError
from budgets.models import Period
from tests.allocation.test_admin import client_for, listed
from tests.allocation.test_periods import spend
from tests.conftest import NOW, PASSWORD
from tests.racing import race

pytestmark = pytest.mark.django_db


def draft(acme: DemoOrganization) -> Plan:
    spend(acme.pools["product-eng1"], 400 * DOLLAR, post=400 * DOLLAR)
    period_close(period=acme.period, now=acme.period.ends_at)
    nxt = Period.objects.get(organization=acme.organization, fiscal_year=2027, quarter=1)
    return plan_propose(period=nxt, actor=acme.members["finance"], now=acme.period.ends_at)


@pytest.mark.parametrize("who", ["product-lead", "product-eng1"])
def test_only_finance_and_admins_plan(acme: DemoOrganization, who: str) -> None:
    plan = draft(acme)
    with pytest.raises(NotAllowedError):
        plan_total_set(plan=plan, total=DOLLAR, actor=acme.members[who])
    plan.refresh_from_db()
    assert plan.total == 500 * DOLLAR  # 400 x 1.25, the only spend


def test_an_approved_plan_is_immutable_and_needs_its_total(acme: DemoOrganization) -> None:
    plan = draft(acme)
    finance = acme.members["finance"]
    plan_total_set(plan=plan, total=499 * DOLLAR, actor=finance)
    with pytest.raises(PlanTotalTooSmallError):
        plan_approve(plan=plan, actor=finance, now=acme.period.ends_at)
    plan_total_set(plan=plan, total=600 * DOLLAR, actor=finance)
    plan_approve(plan=plan, actor=finance, now=acme.period.ends_at)

    with pytest.raises(PlanNotDraftError):
        plan_line_set(line=plan.lines.first(), amount=0, actor=finance)  # type: ignore[arg-type]
    with pytest.raises(PlanNotDraftError):
        plan_total_set(plan=plan, total=DOLLAR, actor=finance)


def test_admin_plans_for_finance_and_admins_only(acme: DemoOrganization) -> None:
    plan = draft(acme)

    assert listed(client_for(acme.members["finance"]), "/admin/allocation/plan/") == {plan.pk}
    assert listed(client_for(acme.members["product-lead"]), "/admin/allocation/plan/") == set()
    client_for(acme.members["admin"]).post(
        "/admin/allocation/plan/", {"action": "approve_selected", "_selected_action": [plan.pk]}
    )
    plan.refresh_from_db()
    assert plan.status == "approved"
    page = client_for(acme.members["finance"]).get(f"/admin/allocation/plan/{plan.pk}/change/")
    assert "500.000000 USD" in page.content.decode()


def test_a_line_of_an_approved_plan_stays_as_approved_whatever_the_form_says(
    acme: DemoOrganization,
) -> None:
    approved = draft(acme)
    finance = acme.members["finance"]
    plan_approve(plan=approved, actor=finance, now=acme.period.ends_at)
    other = Plan.objects.create(
        organization=acme.organization, period=approved.period, total=0, created_by=finance
    )  # a draft with no lines
    line = approved.lines.get(member=acme.members["product-eng1"])

    # The line's change form, pointing the line at the other (draft) plan to pass the check.
    client_for(finance).post(
        f"/admin/allocation/planline/{line.pk}/change/",
        {"plan": other.pk, "kind": line.kind, "team": "", "member": line.member_id,
         "name": "", "baseline": line.baseline, "amount": 0},
    )  # fmt: skip

    line.refresh_from_db()
    assert (line.plan_id, line.amount) == (approved.pk, 500 * DOLLAR)


def test_a_line_form_shows_nothing_of_another_organization(acme: DemoOrganization) -> None:
    globex = demo_organization_create(
        slug="globex", password=PASSWORD, now=NOW, engineers_per_team=1
    )
    line = draft(acme).lines.get(member=acme.members["product-eng1"])

    page = client_for(acme.members["finance"]).get(f"/admin/allocation/planline/{line.pk}/change/")

    assert page.status_code == 200
    content = page.content.decode()
    assert "globex-" not in content  # no other organization's members in a choice list
    assert f'value="{globex.teams["product"].pk}"' not in content
    assert 'name="amount"' in content  # the amount is what finance edits here


@pytest.mark.parametrize(
    ("who", "amount"), [("finance", 7 * DOLLAR), ("product-lead", 500 * DOLLAR)]
)
def test_finance_edits_a_draft_line_in_the_list(
    acme: DemoOrganization, who: str, amount: int
) -> None:
    line = draft(acme).lines.get(member=acme.members["product-eng1"])

    client_for(acme.members[who]).post(
        "/admin/allocation/planline/",
        {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": line.pk,
         "form-0-amount": 7 * DOLLAR, "_save": "Save"},
    )  # fmt: skip

    line.refresh_from_db()
    assert line.amount == amount


@pytest.mark.django_db(transaction=True)
def test_a_plan_approved_while_its_period_opens_is_refused(
    acme: DemoOrganization, postgres_only: None
) -> None:
    plan = draft(acme)
    opened = threading.Event()

    def open_slowly() -> None:
        with transaction.atomic():
            period_open_scheduled(period=plan.period, now=plan.period.starts_at)
            opened.set()  # funded without a plan; still to commit
            time.sleep(1)

    def approve() -> object:
        opened.wait(10)
        return plan_approve(plan=plan, actor=acme.members["finance"], now=plan.period.starts_at)

    outcomes = race([open_slowly, approve], threads=2)

    assert isinstance(outcomes[1], PeriodStateError)
    plan.refresh_from_db()
    assert plan.status == "draft"  # an approved plan is one the open funded
