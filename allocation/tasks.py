"""Celery tasks: each takes ids (or nothing), re-reads state, calls one service, and is safe to
run twice, on two workers at once, and after a crash (the services are idempotent: see
allocation/periods.py and allocation/exemptions.py). Enqueued after commit.

Beat runs the sweeps (config/settings.py, CELERY_BEAT_SCHEDULE); with no REDIS_URL they run in
process, eagerly, when enqueued.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from allocation.exemptions import exemptions_end_due, exemptions_start_due
from allocation.periods import period_close, period_open_scheduled, periods_due
from allocation.services import transfer_requests_expire
from budgets.models import Period, PeriodStatus
from ledger.services import holds_expire

logger = logging.getLogger(__name__)


@shared_task
def holds_expire_task() -> int:
    """Expire the holds due now (every minute)."""
    return holds_expire(now=timezone.now())


@shared_task
def transfer_requests_expire_task() -> int:
    """Expire the transfer requests past their expiry (daily)."""
    return transfer_requests_expire(now=timezone.now())


@shared_task
def exemptions_start_due_task() -> int:
    """Grant the approved exemptions whose window has started (every minute)."""
    return exemptions_start_due(now=timezone.now())


@shared_task
def exemptions_end_due_task() -> int:
    """Claw back the granted exemptions whose window has ended (every minute)."""
    return exemptions_end_due(now=timezone.now())


@shared_task
def periods_due_task() -> None:
    """Enqueue the close of every ended or closing period and the open of every due one."""
    to_close, to_open = periods_due(now=timezone.now())
    for period_id in to_close:
        _enqueue_after_commit(period_close_task, period_id)
    for period_id in to_open:
        _enqueue_after_commit(period_open_task, period_id)


@shared_task
def period_close_task(*, period_id: int) -> None:
    """Close (or sweep again) one period; then open the next one, after commit."""
    period = Period.objects.get(pk=period_id)
    report = period_close(period=period, now=timezone.now())
    logger.info(
        "period %s: %d pools swept, %d holds pending, closed=%s",
        period_id, len(report.moves), report.pending_holds, report.is_closed,
    )  # fmt: skip
    upcoming = periods_due(now=timezone.now())[1]
    for pk in upcoming:
        if Period.objects.filter(
            pk=pk, organization_id=period.organization_id, status=PeriodStatus.PLANNED
        ).exists():
            _enqueue_after_commit(period_open_task, pk)


@shared_task
def period_open_task(*, period_id: int) -> None:
    """Open one started period (funding it from its plan or the previous allocations)."""
    period_open_scheduled(period=Period.objects.get(pk=period_id), now=timezone.now())


def _enqueue_after_commit(task: Any, period_id: int) -> None:
    transaction.on_commit(partial(task.delay, period_id=period_id))
