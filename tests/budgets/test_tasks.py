"""The spend-entry sync as a beat job: it enters what the ledger posted, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db.models import Sum

from allocation.demo import DemoOrganization
from budgets.models import SpendEntry
from budgets.spend import ledger_spend
from budgets.tasks import spend_entries_sync_task
from config.celery import app
from tests.conftest import NOW
from tests.spending import call

pytestmark = pytest.mark.django_db


def test_the_task_enters_new_spend_once(acme: DemoOrganization) -> None:
    call(acme, "c1")
    call(acme, "c2", subject="product-eng1-claude-code")

    with time_machine.travel(NOW + timedelta(hours=1)):  # past SYNC_LAG: the watermark moves
        first = spend_entries_sync_task.apply().get()
        again = spend_entries_sync_task.apply().get()
        call(acme, "c3")
        later = spend_entries_sync_task.apply().get()

    assert (first, again, later) == (2, 0, 1)
    entered = SpendEntry.objects.aggregate(total=Sum("amount"))["total"]
    expected = ledger_spend(
        organization_id=acme.organization.pk, start=NOW, end=NOW + timedelta(seconds=1)
    )
    assert (entered, expected) == (135_000, 135_000)


def test_beat_runs_it_every_tick() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["spend-entries-sync"]
    tick = settings.CELERY_BEAT_SCHEDULE["holds-expire"]["schedule"]

    assert app.tasks[str(entry["task"])].name == spend_entries_sync_task.name  # registered
    assert entry["schedule"] == tick
