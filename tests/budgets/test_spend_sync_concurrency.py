"""The spend sync on real PostgreSQL with real threads: a spend transfer committed after a
later one is entered once, however long its transaction stays open."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from allocation.demo import DemoOrganization
from budgets.gateway import Usage, usage_record
from budgets.models import SpendEntry, SpendRollup
from budgets.spend import SYNC_LAG, ledger_spend, spend_entries_sync

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]


def _record(acme: DemoOrganization, key: str, subject: str, amount: int) -> None:
    usage_record(
        organization=acme.organization, idempotency_key=key, subject=subject,
        usage=Usage(amount=amount), occurred_at=timezone.now(), tags={},
    )  # fmt: skip


def test_a_transaction_open_longer_than_the_lag_is_not_skipped(acme: DemoOrganization) -> None:
    # Given a spend transfer whose transaction takes its id first and commits last, after a
    # sync that (at its clock) finds the later one older than SYNC_LAG.
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            with transaction.atomic():
                _record(acme, "slow", "ci-review-bot", 1_000_000)
                inserted.set()
                release.wait(30)
        except BaseException as error:  # noqa: BLE001 (the test asserts there is none)
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=slow)
    thread.start()
    assert inserted.wait(30)
    # Another pool: its row is not locked by the slow transaction.
    _record(acme, "quick", "product-eng1-claude-code", 20_000)
    spend_entries_sync(now=timezone.now() + 2 * SYNC_LAG)
    release.set()
    thread.join(30)

    # When the sync runs again after the slow transaction committed.
    spend_entries_sync(now=timezone.now() + 2 * SYNC_LAG)

    # Then both are entered and rolled up: the entries equal the ledger.
    assert errors == []
    organization_id = acme.organization.pk
    ledger = ledger_spend(
        organization_id=organization_id, start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    assert ledger == 1_020_000
    entries = SpendEntry.objects.filter(organization_id=organization_id)
    assert entries.aggregate(total=Sum("amount"))["total"] == 1_020_000
    rollup = SpendRollup.objects.filter(organization_id=organization_id)
    assert rollup.aggregate(total=Sum("amount"))["total"] == 1_020_000
