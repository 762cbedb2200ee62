"""Quarterly planning: propose the next period's budget from a measured baseline, edit it,
approve it (then it is immutable and funds the period when it opens), compare it afterwards.

Finance and admins plan. Every write is one transaction under the plan's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from django.db import transaction
from django.db.models import Sum

from allocation.errors import PeriodStateError, PlanNotDraftError, PlanTotalTooSmallError
from allocation.models import Plan, PlanBaseline, PlanLine, PlanStatus
from allocation.owners import Owner, owner_is_active, owner_pool
from allocation.periods import period_previous
from budgets.errors import CrossOrganizationError, InvalidInputError, NotAllowedError
from budgets.models import Member, Period, PeriodStatus, Pool, PoolKind, Role
from budgets.selectors import pool_balance
from ledger.models import Transfer, TransferPhase

DEFAULT_BUFFER = Decimal("0.25")
_DAYS = {PlanBaseline.DAYS_60: 60, PlanBaseline.DAYS_90: 90}


def _ensure_planner(*, actor: Member, period: Period) -> None:
    if actor.organization_id != period.organization_id:
        raise CrossOrganizationError("Plans stay within one organization.")
    if not actor.is_active or actor.role not in (Role.FINANCE, Role.ADMIN):
        raise NotAllowedError("Finance and admins plan the budget.")


def _with_buffer(baseline: int, buffer: Decimal) -> int:
    """baseline x (1 + buffer), rounded up to the micro-unit: exact, never a float."""
    return int((Decimal(baseline) * (1 + buffer)).to_integral_value(ROUND_CEILING))


@transaction.atomic
def plan_propose(
    *,
    period: Period,
    actor: Member,
    now: datetime,
    baseline: PlanBaseline | str = PlanBaseline.PERIOD,
    buffer: Decimal = DEFAULT_BUFFER,
) -> Plan:
    """A draft plan for ``period`` with one line per active team, member and shared pool of
    the quarter before it: the measured settled spend (of that quarter, or of the last 60 or
    90 days) and that times (1 + buffer). The total starts as the sum of the lines.

    Raises NotAllowedError, CrossOrganizationError, PeriodStateError, InvalidInputError.
    """
    _ensure_planner(actor=actor, period=period)
    baseline = PlanBaseline(baseline)
    if period.status != PeriodStatus.PLANNED:
        raise PeriodStateError(f"{period} is {period.status}; plans are for coming periods.")
    if not isinstance(buffer, Decimal) or buffer < 0:
        raise InvalidInputError("The buffer is a non-negative decimal, e.g. 0.25.")
    previous = period_previous(period=period)
    if previous is None:
        raise PeriodStateError("There is no previous quarter to measure.")
    plan = Plan(
        organization_id=period.organization_id, period=period, baseline=baseline,
        buffer=buffer, total=0, created_by=actor,
    )  # fmt: skip
    plan._history_user = actor.user  # type: ignore[attr-defined]
    plan.save()
    lines = []
    for pool in previous.pools.exclude(kind=PoolKind.ORGANIZATION).order_by("pk"):
        owner = Owner.of(pool)
        if not owner_is_active(owner):
            continue
        measured = (
            pool_balance(pool=pool).spent
            if baseline == PlanBaseline.PERIOD
            else owner_spend_since(pool=pool, since=now - timedelta(days=_DAYS[baseline]), now=now)
        )
        lines.append(
            PlanLine(
                plan=plan,
                kind=pool.kind,
                team_id=pool.team_id,
                member_id=pool.member_id,
                name=pool.name,
                baseline=max(0, measured),
                amount=_with_buffer(max(0, measured), buffer),
            )
        )
    for line in lines:
        line._history_user = actor.user  # type: ignore[attr-defined]
        line.save()
    plan.total = sum(line.amount for line in lines)
    plan.save(update_fields=["total"])
    return plan


def owner_spend_since(*, pool: Pool, since: datetime, now: datetime) -> int:
    """Settled spend in [since, now) of every pool the owner of ``pool`` has had."""
    owner = Owner.of(pool)
    spend_ids = list(
        Pool.objects.filter(organization_id=pool.organization_id, **owner.lookup).values_list(
            "spend_account_id", flat=True
        )
    )
    posted = Transfer.objects.filter(
        phase__in=[TransferPhase.POSTED, TransferPhase.POST],
        created_at__gte=since,
        created_at__lt=now,
    )
    credited = posted.filter(credit_account_id__in=spend_ids).aggregate(s=Sum("amount"))["s"] or 0
    debited = posted.filter(debit_account_id__in=spend_ids).aggregate(s=Sum("amount"))["s"] or 0
    return int(credited - debited)


def _plan_lock(plan_id: int) -> Plan:
    # Locks the period row too (no ``of``): an approval waits for an open in progress and then
    # sees the period open, so no plan is approved after the open read that there was none.
    return Plan.objects.select_for_update(no_key=True).select_related("period").get(pk=plan_id)


def _ensure_draft(plan: Plan) -> None:
    if plan.status != PlanStatus.DRAFT:
        raise PlanNotDraftError()


@transaction.atomic
def plan_line_set(*, line: PlanLine, amount: int, actor: Member) -> PlanLine:
    """Change a draft plan's line. Raises NotAllowedError, PlanNotDraftError, InvalidInputError."""
    # The plan the line really belongs to (a line never changes plans), not the one the
    # caller's copy names: a form may have changed it.
    plan = _plan_lock(PlanLine.objects.values_list("plan_id", flat=True).get(pk=line.pk))
    _ensure_planner(actor=actor, period=plan.period)
    _ensure_draft(plan)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise InvalidInputError("A line's amount is a non-negative number of micro-units.")
    line = PlanLine.objects.get(pk=line.pk, plan=plan)
    line.amount = amount
    line._history_user = actor.user  # type: ignore[attr-defined]
    line.save(update_fields=["amount"])
    return line


@transaction.atomic
def plan_total_set(*, plan: Plan, total: int, actor: Member) -> Plan:
    """Set a draft plan's organization total.

    Raises NotAllowedError, PlanNotDraftError, InvalidInputError.
    """
    plan = _plan_lock(plan.pk)
    _ensure_planner(actor=actor, period=plan.period)
    _ensure_draft(plan)
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise InvalidInputError("The total is a non-negative number of micro-units.")
    plan.total = total
    plan._history_user = actor.user  # type: ignore[attr-defined]
    plan.save(update_fields=["total"])
    return plan


@transaction.atomic
def plan_approve(*, plan: Plan, actor: Member, now: datetime) -> Plan:
    """Approve a draft plan: from now on it is immutable and it funds its period's open.

    Raises NotAllowedError, PlanNotDraftError, PlanTotalTooSmallError, PeriodStateError.
    """
    plan = _plan_lock(plan.pk)
    _ensure_planner(actor=actor, period=plan.period)
    _ensure_draft(plan)
    if plan.period.status != PeriodStatus.PLANNED:
        raise PeriodStateError(f"{plan.period} is {plan.period.status}.")
    if Plan.objects.filter(period=plan.period, status=PlanStatus.APPROVED).exists():
        raise PeriodStateError(f"{plan.period} already has an approved plan.")
    planned = plan.lines.aggregate(s=Sum("amount"))["s"] or 0
    if plan.total < planned:
        raise PlanTotalTooSmallError(total=plan.total, lines=planned)
    plan.status = PlanStatus.APPROVED
    plan.approved_by = actor
    plan.approved_at = now
    plan._history_user = actor.user  # type: ignore[attr-defined]
    plan.save(update_fields=["status", "approved_by", "approved_at"])
    return plan


@dataclass(frozen=True)
class PlanComparison:
    """A plan line beside what really happened to its pool."""

    line: PlanLine
    planned: int
    allocated: int | None  # moved into the pool and kept there, net (None: no pool)
    spent: int | None


def plan_compare(*, plan: Plan) -> list[PlanComparison]:
    """Each line's planned amount beside what its pool really kept (everything moved in,
    minus what it passed on) and spent in the period."""
    rows = []
    for line in plan.lines.select_related("team", "member__user").order_by("kind", "pk"):
        owner = Owner(
            kind=line.kind, team_id=line.team_id, member_id=line.member_id, name=line.name
        )
        pool = owner_pool(period=plan.period, owner=owner)
        balance = pool_balance(pool=pool) if pool is not None else None
        rows.append(
            PlanComparison(
                line=line,
                planned=line.amount,
                allocated=balance.budget - balance.moved_out if balance else None,
                spent=balance.spent if balance else None,
            )
        )
    return rows
