"""Alerts before the invoice: budget thresholds and spend anomalies, each raised exactly once.

A periodic job (budgets/tasks.py) calls ``alerts_check``; it reads what the books say now and
raises what is due. Exactly once: an alert's ``key`` names what it is about and is unique per
organization, so two runs at once, or a run repeated after a crash, raise nothing twice; one
check that finds a pool past 50 % and 80 % at once raises both. Nothing here is on the gateway's
request path. docs/alerts.md has the rules and their reasons.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from budgets.errors import BudgetError, InvalidInputError, InvalidStateError, NotAllowedError
from budgets.models import (
    Alert,
    AlertKind,
    AlertSettings,
    Authorization,
    AuthorizationStatus,
    Member,
    Organization,
    Period,
    PeriodStatus,
    Pool,
    PoolKind,
    Role,
    WebhookDelivery,
    WebhookSubscription,
)
from budgets.periods import zone
from budgets.selectors import member_managed_team_ids, pool_team_id
from ledger.models import Transfer, TransferCode, TransferPhase
from ledger.money import format_micros

logger = logging.getLogger(__name__)

#: Sessions and calls are looked at over these windows (bounded work on a year of data).
SESSION_BASELINE = timedelta(days=30)
RECENT = timedelta(days=1)
#: A median of fewer sessions says too little to call one an outlier.
MIN_SESSIONS_FOR_MEDIAN = 5
SPEND_CODES = (TransferCode.SPEND, TransferCode.OVERAGE)
SPEND_PHASES = (TransferPhase.POSTED, TransferPhase.POST)
SETTLED = (AuthorizationStatus.SETTLED, AuthorizationStatus.SETTLED_LATE)
#: A closing period still takes late settles (docs/operations.md): its thresholds still count.
CHECKED_PERIODS = (PeriodStatus.OPEN, PeriodStatus.CLOSING)


@dataclass(frozen=True)
class Candidate:
    """An alert that is due unless already raised."""

    kind: str
    key: str
    message: str
    period: Period | None = None
    pool: Pool | None = None
    details: dict[str, Any] = field(default_factory=dict)


def alert_settings(*, organization: Organization) -> AlertSettings:
    """The organization's rules, or the defaults (unsaved) when it has none."""
    found = AlertSettings.objects.filter(organization=organization).first()
    return found or AlertSettings(organization=organization)


def thresholds_of(settings: AlertSettings) -> list[Decimal]:
    """The thresholds as Decimals, validated and normalized (0.80, "0.8" and 8E-1 are one
    threshold, and name its alert the same way). Raises InvalidInputError."""
    configured = settings.thresholds
    if not isinstance(configured, list) or not all(
        isinstance(value, str | int | float) and not isinstance(value, bool) for value in configured
    ):
        raise InvalidInputError('Thresholds are a list of decimal shares such as ["0.8"].')
    try:
        values = sorted({_normal(Decimal(str(value))) for value in configured})
    except ArithmeticError:
        raise InvalidInputError("Thresholds are decimal shares such as 0.8.") from None
    if any(not (0 < value <= 10) for value in values):
        raise InvalidInputError("A threshold is a share above 0 and at most 10 (1000 %).")
    return values


def _normal(value: Decimal) -> Decimal:
    """The one spelling of a share: no trailing zeros, no exponent. Raises ArithmeticError."""
    if not value.is_finite():
        raise ArithmeticError(value)
    return Decimal(format(value.normalize(), "f"))


def alerts_check(*, now: datetime) -> list[int]:
    """Raise every alert due at ``now`` in every organization with an open or closing period
    (a closing one still takes late settles); returns the ids of the webhook deliveries
    created (to be sent). Safe to run twice, at once. One organization's failure (its
    settings invalid) is logged and skips it alone."""
    deliveries: list[int] = []
    organizations = (
        Organization.objects.filter(periods__status__in=CHECKED_PERIODS).distinct().order_by("pk")
    )
    for organization in organizations:
        try:
            deliveries += alerts_check_organization(organization=organization, now=now)
        except BudgetError:
            logger.exception("alerts of organization %s not checked", organization.slug)
    return deliveries


def alerts_check_organization(*, organization: Organization, now: datetime) -> list[int]:
    settings = alert_settings(organization=organization)
    deliveries: list[int] = []
    periods = Period.objects.filter(organization=organization, status__in=CHECKED_PERIODS)
    for period in periods.order_by("starts_at"):
        deliveries += _period_check(
            organization=organization, period=period, settings=settings, now=now
        )
    return deliveries


def _period_check(
    *, organization: Organization, period: Period, settings: AlertSettings, now: datetime
) -> list[int]:
    pools = {
        pool.pk: pool
        for pool in Pool.objects.filter(period=period).select_related(
            "account", "spend_account", "period__organization", "team", "member__user"
        )
    }
    candidates = [
        *_thresholds(settings=settings, period=period, pools=pools),
        *_spend_days(settings=settings, organization=organization, pools=pools, now=now),
        *_sessions(settings=settings, organization=organization, pools=pools, now=now),
        *_calls(settings=settings, organization=organization, pools=pools, now=now),
    ]
    raised = set(
        Alert.objects.filter(
            organization=organization, key__in=[candidate.key for candidate in candidates]
        ).values_list("key", flat=True)
    )
    deliveries: list[int] = []
    for candidate in candidates:
        if candidate.key not in raised:
            deliveries += alert_raise(organization=organization, candidate=candidate, now=now)
    return deliveries


def alert_raise(*, organization: Organization, candidate: Candidate, now: datetime) -> list[int]:
    """Record the alert and its deliveries in one transaction; nothing if it was raised
    already (here or by a concurrent run). Returns the new deliveries' ids."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                organization=organization, kind=candidate.kind, key=candidate.key,
                period=candidate.period, pool=candidate.pool, message=candidate.message,
                details=candidate.details, raised_at=now,
            )  # fmt: skip
            subscriptions = WebhookSubscription.objects.filter(
                organization=organization, is_active=True
            )
            return [
                WebhookDelivery.objects.create(
                    subscription=subscription, alert=alert, next_attempt_at=now
                ).pk
                for subscription in subscriptions
                if not subscription.events or candidate.kind in subscription.events
            ]
    except IntegrityError:
        if Alert.objects.filter(organization=organization, key=candidate.key).exists():
            return []  # a concurrent run raised it: exactly once
        raise


def alert_acknowledge(*, alert: Alert, member: Member) -> Alert:
    """Mark an alert seen. Managers of its pool's team, finance and admins may.

    Raises InvalidStateError (already acknowledged), NotAllowedError.
    """
    if member.organization_id != alert.organization_id or not member.is_active:
        raise NotAllowedError("You cannot acknowledge this alert.")
    if member.role == Role.MANAGER:
        team_id = pool_team_id(pool=alert.pool) if alert.pool else None
        if team_id is None or team_id not in member_managed_team_ids(member=member):
            raise NotAllowedError("You cannot acknowledge this alert.")
    elif member.role not in (Role.FINANCE, Role.ADMIN):
        raise NotAllowedError("You cannot acknowledge this alert.")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.acknowledged_at is not None:
            raise InvalidStateError("The alert is already acknowledged.")
        locked.acknowledged_at, locked.acknowledged_by = timezone.now(), member
        locked.save(update_fields=["acknowledged_at", "acknowledged_by"])
    return locked


# --- the rules ---------------------------------------------------------------------------------


def _percent(share: Decimal) -> str:
    return f"{(share * 100).normalize():f}%"


def _thresholds(
    *, settings: AlertSettings, period: Period, pools: dict[int, Pool]
) -> list[Candidate]:
    """A pool's spend against the money it kept for itself this period (what came in minus
    what it passed on); the organization's spend against what was funded into it."""
    thresholds = thresholds_of(settings)
    currency = period.organization.currency
    found: list[Candidate] = []
    org_spent, org_budget = 0, 0
    for pool in pools.values():
        account, spend = pool.account, pool.spend_account
        spent = spend.credits_posted - spend.debits_posted
        budget = account.credits_posted - (account.debits_posted - spent)
        org_spent += spent
        if pool.kind == PoolKind.ORGANIZATION:
            org_budget = account.credits_posted
        for threshold in thresholds:
            if budget > 0 and spent >= threshold * budget:
                found.append(Candidate(
                    kind=AlertKind.THRESHOLD, key=f"threshold:pool:{pool.pk}:{threshold}",
                    message=(
                        f"{pool} has spent {format_micros(spent, currency)} of "
                        f"{format_micros(budget, currency)}: "
                        f"past {_percent(threshold)} of its budget."
                    ),
                    period=period, pool=pool,
                    details={"threshold": str(threshold), "spent": spent, "budget": budget},
                ))  # fmt: skip
    for threshold in thresholds:
        if org_budget > 0 and org_spent >= threshold * org_budget:
            found.append(Candidate(
                kind=AlertKind.THRESHOLD, key=f"threshold:org:{period.pk}:{threshold}",
                message=(
                    f"{period.organization} has spent {format_micros(org_spent, currency)} of "
                    f"{format_micros(org_budget, currency)} in {period}: "
                    f"past {_percent(threshold)}."
                ),
                period=period,
                details={"threshold": str(threshold), "spent": org_spent, "budget": org_budget},
            ))  # fmt: skip
    return found


def _spend_days(
    *, settings: AlertSettings, organization: Organization, pools: dict[int, Pool], now: datetime
) -> list[Candidate]:
    """Today's spend (the organization's day) above ``day_multiple`` x the daily average of
    the 7 days before it."""
    tz = zone(organization.timezone)
    today = now.astimezone(tz).date()
    start = datetime.combine(today - timedelta(days=7), datetime.min.time(), tzinfo=tz)
    by_account = {pool.account_id: pool for pool in pools.values()}
    rows = (
        Transfer.objects.filter(
            code__in=SPEND_CODES, phase__in=SPEND_PHASES, created_at__gte=start,
            created_at__lte=now, debit_account_id__in=list(by_account),
        )
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("debit_account_id", "day")
        .annotate(total=Sum("amount"))
    )  # fmt: skip
    today_spend: dict[int, int] = defaultdict(int)
    before: dict[int, int] = defaultdict(int)
    for row in rows:
        target = today_spend if row["day"] == today else before
        target[row["debit_account_id"]] += row["total"]
    found = []
    for account_id, spent_today in today_spend.items():
        average = Decimal(before[account_id]) / 7
        if average > 0 and spent_today > settings.day_multiple * average:
            pool = by_account[account_id]
            found.append(Candidate(
                kind=AlertKind.SPEND_DAY, key=f"spend_day:pool:{pool.pk}:{today.isoformat()}",
                message=(
                    f"{pool} spent {format_micros(spent_today, organization.currency)} today, "
                    f"{(spent_today / average).quantize(Decimal('0.1'))}x its 7-day daily "
                    f"average of {format_micros(int(average), organization.currency)}."
                ),
                period=pool.period, pool=pool,
                details={"day": today.isoformat(), "spent": spent_today,
                         "average": str(average.quantize(Decimal("1")))},
            ))  # fmt: skip
    return found


def _sessions(
    *, settings: AlertSettings, organization: Organization, pools: dict[int, Pool], now: datetime
) -> list[Candidate]:
    """A session active in the last day costing above ``session_multiple`` x the median
    session of its pool over the last 30 days (at least 5 sessions)."""
    rows = (
        Authorization.objects.filter(
            organization=organization, pool_id__in=list(pools), status__in=SETTLED,
            created_at__gte=now - SESSION_BASELINE, created_at__lte=now,
        )
        .exclude(session_id="")
        .values("pool_id", "session_id")
        .annotate(cost=Sum("charged"), last=Max("created_at"), calls=Count("id"))
    )  # fmt: skip
    sessions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        sessions[row["pool_id"]].append(row)
    found = []
    for pool_id, rows_of_pool in sessions.items():
        if len(rows_of_pool) < MIN_SESSIONS_FOR_MEDIAN:
            continue
        median = Decimal(statistics.median(row["cost"] for row in rows_of_pool))
        if median <= 0:
            continue
        pool = pools[pool_id]
        for row in rows_of_pool:
            if row["last"] >= now - RECENT and row["cost"] > settings.session_multiple * median:
                found.append(Candidate(
                    kind=AlertKind.SESSION,
                    key=f"session:pool:{pool_id}:{row['session_id']}",
                    message=(
                        f"Session {row['session_id']} of {pool} cost "
                        f"{format_micros(row['cost'], organization.currency)} over {row['calls']} "
                        f"calls, {(row['cost'] / median).quantize(Decimal('0.1'))}x the pool's "
                        f"median session."
                    ),
                    period=pool.period, pool=pool,
                    details={"session_id": row["session_id"], "cost": row["cost"],
                             "median": str(median), "calls": row["calls"]},
                ))  # fmt: skip
    return found


def _calls(
    *, settings: AlertSettings, organization: Organization, pools: dict[int, Pool], now: datetime
) -> list[Candidate]:
    """A single call created in the last day and charged above ``call_amount``."""
    if settings.call_amount is None:
        return []
    calls = Authorization.objects.filter(
        organization=organization, pool_id__in=list(pools), status__in=SETTLED,
        charged__gt=settings.call_amount,
        created_at__gte=now - RECENT, created_at__lte=now,
    ).only("id", "pool_id", "charged", "model", "subject", "session_id")  # fmt: skip
    found = []
    for call in calls:
        pool = pools[call.pool_id] if call.pool_id else None
        found.append(Candidate(
            kind=AlertKind.CALL, key=f"call:{call.pk}",
            message=(
                f"One call by {call.subject} on {call.model} cost "
                f"{format_micros(call.charged, organization.currency)} (above "
                f"{format_micros(settings.call_amount, organization.currency)})."
            ),
            period=pool.period if pool else None, pool=pool,
            details={"authorization": str(call.pk), "charged": call.charged,
                     "model": call.model, "subject": call.subject},
        ))  # fmt: skip
    return found
