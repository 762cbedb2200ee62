"""Alerts: thresholds and anomalies fire exactly, on crafted spend histories, with time held."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from allocation.demo import DOLLAR, DemoOrganization, demo_organization_create
from budgets.alerts import alert_acknowledge, alerts_check
from budgets.errors import InvalidStateError, NotAllowedError
from budgets.gateway import (
    AuthorizeRequest,
    Usage,
    authorization_create,
    authorization_settle,
    usage_record,
)
from budgets.models import Alert, AlertSettings
from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db
ENGINEER = "platform-eng1"  # $1,000 pool, credential platform-eng1-claude-code


def spend(acme: DemoOrganization, dollars: str, *, at: datetime = NOW, key: str = "") -> None:
    """Record ``dollars`` of spend on the engineer's pool at ``at``."""
    with time_machine.travel(at, tick=False):
        usage_record(
            organization=acme.organization, idempotency_key=key or f"{at.isoformat()}-{dollars}",
            subject=f"{ENGINEER}-claude-code",
            usage=Usage(amount=int(Decimal(dollars) * DOLLAR)), occurred_at=at, tags={},
        )  # fmt: skip


def check(at: datetime = NOW) -> set[str]:
    """Run the check at ``at``; the keys of the alerts it raised."""
    before = set(Alert.objects.values_list("key", flat=True))
    with time_machine.travel(at, tick=False):
        alerts_check(now=at)
    return set(Alert.objects.values_list("key", flat=True)) - before


def pool_key(acme: DemoOrganization, threshold: str) -> str:
    return f"threshold:pool:{acme.pools[ENGINEER].pk}:{threshold}"


def test_one_call_crossing_two_thresholds_raises_both_and_a_rerun_nothing(
    acme: DemoOrganization,
) -> None:
    spend(acme, "400")
    assert check() == set()

    spend(acme, "450")  # 85 %: past 50 % and 80 % at once
    raised = check()
    again = check()

    assert raised == {pool_key(acme, "0.5"), pool_key(acme, "0.8")}
    assert again == set()
    alert = Alert.objects.get(key=pool_key(acme, "0.8"))
    assert alert.details == {"threshold": "0.8", "spent": 850 * DOLLAR, "budget": 1_000 * DOLLAR}
    assert "past 80% of its budget" in alert.message
    assert alert.pool == acme.pools[ENGINEER]
    assert alert.period == acme.period


def test_the_last_threshold_fires_at_exactly_the_budget_and_overage_counts(
    acme: DemoOrganization,
) -> None:
    spend(acme, "999.999999")
    assert pool_key(acme, "1") not in check()

    spend(acme, "0.000001")
    assert pool_key(acme, "1") in check()


def test_thresholds_are_configurable_and_the_organization_has_its_own(
    acme: DemoOrganization,
) -> None:
    AlertSettings.objects.create(organization=acme.organization, thresholds=["0.001", "0.25"])

    spend(acme, "100")  # $100 of $100,000 funded: 0.1 % of the organization

    assert check() == {
        pool_key(acme, "0.001"), f"threshold:org:{acme.period.pk}:0.001",
    }  # fmt: skip


def test_a_threshold_written_another_way_is_the_same_threshold_and_not_raised_again(
    acme: DemoOrganization,
) -> None:
    spend(acme, "1000")
    first = check()
    AlertSettings.objects.create(organization=acme.organization, thresholds=[0.50, "0.80", 1.0])

    again = check()

    assert first == {pool_key(acme, "0.5"), pool_key(acme, "0.8"), pool_key(acme, "1")}
    assert again == set()


def test_one_organizations_unreadable_settings_do_not_stop_the_others_alerts(
    acme: DemoOrganization,
) -> None:
    globex = demo_organization_create(slug="globex", password=PASSWORD, now=NOW)
    AlertSettings.objects.create(organization=acme.organization, thresholds="0.8")
    spend(globex, "850")

    raised = check()

    engineer = globex.pools[ENGINEER].pk
    assert raised == {f"threshold:pool:{engineer}:0.5", f"threshold:pool:{engineer}:0.8"}


def test_a_day_above_three_times_its_seven_day_average(acme: DemoOrganization) -> None:
    for days_ago in range(1, 8):
        spend(acme, "10", at=NOW - timedelta(days=days_ago))
    spend(acme, "30", at=NOW - timedelta(hours=1))  # exactly 3x: not above
    assert check() == set()

    spend(acme, "0.01", at=NOW - timedelta(minutes=1))
    raised = check()

    today = NOW.astimezone(acme.period.starts_at.tzinfo).date().isoformat()
    assert raised == {f"spend_day:pool:{acme.pools[ENGINEER].pk}:{today}"}
    alert = Alert.objects.get(kind="spend_day")
    assert alert.details == {"day": today, "spent": 30_010_000, "average": "10000000"}


def test_a_new_pool_with_no_history_is_left_to_the_thresholds(acme: DemoOrganization) -> None:
    spend(acme, "300")

    assert not any(key.startswith("spend_day") for key in check())


def settled_session(acme: DemoOrganization, session: str, dollars: str, key: str) -> None:
    with time_machine.travel(NOW - timedelta(hours=2), tick=False):
        held = authorization_create(
            organization=acme.organization,
            request=AuthorizeRequest(
                idempotency_key=key, subject=f"{ENGINEER}-claude-code",
                model="claude-sonnet-4-5", amount=int(Decimal(dollars) * DOLLAR),
                session_id=session,
            ),
        )  # fmt: skip
        authorization_settle(
            organization=acme.organization, authorization_id=str(held.id),
            usage=Usage(amount=int(Decimal(dollars) * DOLLAR)),
        )  # fmt: skip


def test_a_session_above_ten_times_the_pool_median(acme: DemoOrganization) -> None:
    for index in range(5):
        settled_session(acme, f"normal-{index}", "1", key=f"n{index}")
    settled_session(acme, "runaway", "6", key="r1")
    settled_session(acme, "runaway", "4", key="r2")  # $10: exactly 10x the $1 median
    assert not any(key.startswith("session") for key in check())

    settled_session(acme, "runaway", "0.01", key="r3")
    raised = check()

    assert raised == {f"session:pool:{acme.pools[ENGINEER].pk}:runaway"}
    assert Alert.objects.get(kind="session").details["calls"] == 3


def test_a_single_call_above_the_amount(acme: DemoOrganization) -> None:
    AlertSettings.objects.create(organization=acme.organization, call_amount=5 * DOLLAR)
    settled_session(acme, "", "5", key="at-limit")
    settled_session(acme, "", "5.000001", key="above")

    raised = check()

    assert len(raised) == 1
    (key,) = raised
    assert key.startswith("call:")
    assert Alert.objects.get(key=key).details["charged"] == 5_000_001


def test_acknowledging_follows_the_roles(acme: DemoOrganization) -> None:
    spend(acme, "600")
    check()
    alert = Alert.objects.get(key=pool_key(acme, "0.5"))

    with pytest.raises(NotAllowedError):
        alert_acknowledge(alert=alert, member=acme.members["platform-eng1"])
    with pytest.raises(NotAllowedError):
        alert_acknowledge(alert=alert, member=acme.members["product-lead"])
    done = alert_acknowledge(alert=alert, member=acme.members["platform-lead"])
    with pytest.raises(InvalidStateError):
        alert_acknowledge(alert=alert, member=acme.members["finance"])

    assert done.acknowledged_by == acme.members["platform-lead"]


def test_a_closing_period_is_still_checked(acme: DemoOrganization) -> None:
    from budgets.models import Period

    spend(acme, "850")
    Period.objects.filter(pk=acme.period.pk).update(status="closing")  # late settles still land

    assert check() == {pool_key(acme, "0.5"), pool_key(acme, "0.8")}
