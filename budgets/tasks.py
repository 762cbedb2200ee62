"""Celery tasks of the budgets layer: alerts (docs/alerts.md) and the spend-entry sync; each
calls one service and is safe to run twice.

The services commit before these tasks enqueue anything, so a delivery is enqueued only once its
row exists; a delivery whose message is lost is found again by ``webhook_deliveries_due_task``.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from budgets.alerts import alerts_check
from budgets.spend import spend_entries_sync
from budgets.webhooks import deliveries_due, delivery_attempt


@shared_task
def alerts_check_task() -> int:
    """Raise the alerts due now and send their deliveries (every ALERTS_CHECK_SECONDS)."""
    created = alerts_check(now=timezone.now())
    for delivery_id in created:
        webhook_deliver.delay(delivery_id)
    return len(created)


@shared_task
def webhook_deliver(delivery_id: int) -> str:
    """One attempt; a failure schedules the next at its backoff. A call that finds the
    delivery not due schedules nothing (whoever holds it does), so retries never multiply."""
    attempt = delivery_attempt(delivery_id=delivery_id, now=timezone.now())
    # In process (no broker) a countdown would run at once, in a loop: the sweep retries.
    if (
        attempt.sent
        and attempt.next_attempt_at is not None
        and not settings.CELERY_TASK_ALWAYS_EAGER
    ):
        webhook_deliver.apply_async((delivery_id,), eta=attempt.next_attempt_at)
    return attempt.status


@shared_task
def webhook_deliveries_due_task() -> int:
    """Send every delivery that is due and not in flight (every tick)."""
    due = deliveries_due(now=timezone.now())
    for delivery_id in due:
        webhook_deliver.delay(delivery_id)
    return len(due)


@shared_task
def spend_entries_sync_task() -> int:
    """Enter the spend transfers posted since the last run (every tick), so a report only
    catches up the last tick's tail instead of a backlog. Returns how many it entered."""
    return spend_entries_sync()
