"""The embedded default (`make run`, no REDIS_URL): beat runs each due job inside its own
process, because Task.apply_async honours always-eager; no broker, no worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from celery.beat import ScheduleEntry, Scheduler
from celery.result import EagerResult
from django.conf import settings
from django.utils import timezone

from allocation.demo import DOLLAR, DemoOrganization
from config.celery import app
from ledger.models import Transfer
from ledger.services import hold_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def without_broker() -> Iterator[None]:
    """What settings give when REDIS_URL is unset (the suite itself runs with a Redis)."""
    app.loader.import_default_modules()  # as beat does at start: the tasks are registered
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before


def test_beat_expires_a_due_hold_in_process(acme: DemoOrganization, without_broker: None) -> None:
    pool = acme.pools["product-eng1"]
    hold = hold_create(
        debit_account_id=pool.account_id, credit_account_id=pool.spend_account_id,
        amount=100 * DOLLAR, currency="USD", timeout=timedelta(seconds=1),
    )  # fmt: skip
    configured: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["holds-expire"]
    entry = ScheduleEntry(name="holds-expire", app=app, **configured)

    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        result = Scheduler(app=app, lazy=True).apply_async(entry)

    assert isinstance(result, EagerResult)
    assert result.get() == 1
    assert Transfer.objects.filter(pending_id=hold.pk, phase="expire").count() == 1
