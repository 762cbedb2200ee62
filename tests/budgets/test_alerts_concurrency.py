"""Alerts on real PostgreSQL with real threads: each threshold exactly once, whatever races."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from allocation.demo import DOLLAR, DemoOrganization
from budgets.alerts import alerts_check
from budgets.gateway import AuthorizeRequest, Usage, authorization_create, authorization_settle
from budgets.models import Alert, WebhookDelivery
from budgets.webhooks import webhook_create
from tests.racing import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]
SUBJECT = "platform-eng1-claude-code"  # a $1,000 pool


def settle_then_check(acme: DemoOrganization, index: int) -> Callable[[], list[int]]:
    def call() -> list[int]:
        held = authorization_create(
            organization=acme.organization,
            request=AuthorizeRequest(idempotency_key=f"call-{index}", subject=SUBJECT,
                                     model="claude-sonnet-4-5", amount=50 * DOLLAR),
        )  # fmt: skip
        authorization_settle(
            organization=acme.organization, authorization_id=str(held.id),
            usage=Usage(amount=50 * DOLLAR),
        )  # fmt: skip
        return alerts_check(now=held.created_at)

    return call


def test_concurrent_settles_and_checks_raise_each_threshold_once(acme: DemoOrganization) -> None:
    webhook_create(organization=acme.organization, name="ops", url="http://127.0.0.1:9/x",
                   events=[])  # fmt: skip

    # 20 calls of $50 spend the pool exactly: 50 %, 80 % and 100 % are each crossed once.
    outcomes = race([settle_then_check(acme, index) for index in range(20)])
    late = race([lambda: alerts_check(now=Alert.objects.first().raised_at)] * 8, threads=8)  # type: ignore[union-attr]

    assert not [o for o in outcomes + late if isinstance(o, BaseException)]
    pool = acme.pools["platform-eng1"].pk
    keys = Counter(Alert.objects.filter(kind="threshold").values_list("key", flat=True))
    assert keys == {f"threshold:pool:{pool}:{t}": 1 for t in ("0.5", "0.8", "1")}
    assert WebhookDelivery.objects.filter(alert__kind="threshold").count() == 3
    # Each $50 call is above the default single-call amount ($25): one alert, one delivery each.
    assert Alert.objects.filter(kind="call").count() == 20
    assert WebhookDelivery.objects.filter(alert__kind="call").count() == 20
