"""The calendar of the books: closing a quarter (rollover and lapse) and opening the next.

Both are safe to run twice, on two workers at once, and to resume after a crash:

- ``period_close`` sweeps one pool per transaction under that pool's account lock. Each sweep
  is a numbered round (an ``allocation.PoolSweep`` row, unique per pool and round) whose ledger
  transfers are keyed ``period-close:<period>:pool:<pool>:round:<n>:<step>``. A re-run finds
  the pools already swept empty and moves nothing; holds released after a sweep are moved by
  the next round. The period is marked closed once no hold, exemption or money is left in it.
- ``period_open`` runs in one transaction under the period's row lock: a crash rolls all of it
  back, a second worker waits and finds the period open; its ledger transfers are keyed
  ``period-open:<period>:pool:<pool>:<step>`` besides.

Lock order: period row, then ledger account rows in ascending id (ledger/locks.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from allocation.errors import PeriodNotEndedError, PeriodNotStartedError, PeriodStateError
from allocation.exemptions import exemption_end
from allocation.models import (
    Exemption,
    ExemptionStatus,
    Plan,
    PlanStatus,
    PoolSweep,
    RolloverMode,
    RolloverPolicy,
)
from allocation.owners import (
    Owner,
    owner_is_active,
    owner_pool_get_or_create,
    parent_owner,
)
from allocation.services import transfer_requests_expire_for_period
from budgets.models import (
    Organization,
    OrganizationAccount,
    Period,
    PeriodStatus,
    Pool,
    PoolKind,
    SystemAccountPurpose,
    Team,
)
from budgets.services import period_create
from ledger.models import Account, OpenHold, Transfer, TransferCode, TransferPhase
from ledger.services import account_close, transfer_create

logger = logging.getLogger(__name__)

CLOSE_ACTOR = "system:period-close"
OPEN_ACTOR = "system:period-open"
#: What funds a period that opens without an approved plan (settings.PERIOD_OPEN_WITHOUT_PLAN).
OPEN_FROM_PREVIOUS = "previous"
OPEN_UNFUNDED = "none"


def _namespace(organization_id: int) -> str:
    return f"org:{organization_id}"


# --- rollover rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloverRule:
    mode: str = RolloverMode.NONE
    cap_share: Decimal | None = None
    cap_amount: int | None = None

    def cap(self, *, budget: int) -> int | None:
        """The most that may roll over in total; None: no cap."""
        if self.mode == RolloverMode.NONE:
            return 0
        if self.mode == RolloverMode.SHARE and self.cap_share is not None:
            return int((Decimal(budget) * self.cap_share).to_integral_value(ROUND_FLOOR))
        if self.mode == RolloverMode.AMOUNT and self.cap_amount is not None:
            return self.cap_amount
        return None


def rollover_rule_for(*, pool: Pool) -> RolloverRule:
    """The nearest team's rollover policy up the tree, else the organization default, else
    none (everything lapses)."""
    policies = {
        policy.team_id: policy
        for policy in RolloverPolicy.objects.filter(organization_id=pool.organization_id)
    }
    team_id = pool.team_id or (pool.member.team_id if pool.member_id and pool.member else None)
    while team_id is not None:
        if team_id in policies:
            return _rule(policies[team_id])
        team_id = Team.objects.filter(pk=team_id).values_list("parent_id", flat=True).first()
    return _rule(policies[None]) if None in policies else RolloverRule()


def _rule(policy: RolloverPolicy) -> RolloverRule:
    return RolloverRule(mode=policy.mode, cap_share=policy.cap_share, cap_amount=policy.cap_amount)


# --- close --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolMove:
    """What one sweep of one pool moves (or would move, in a dry run)."""

    pool: str
    available: int
    rolled_over: int
    lapsed: int
    target: str


@dataclass
class CloseReport:
    period: Period
    moves: list[PoolMove] = field(default_factory=list)
    pending_holds: int = 0
    is_closed: bool = False


def period_close(*, period: Period, now: datetime, dry_run: bool = False) -> CloseReport:
    """Close an ended period: end its exemptions, roll each pool's unused balance over into its
    owner's next pool per the rollover policy and lapse the rest, and mark the period closed
    once nothing is pending. Safe to re-run: a later run sweeps what holds released since.

    Raises PeriodNotEndedError, PeriodStateError.
    """
    period = Period.objects.select_related("organization").get(pk=period.pk)
    report = CloseReport(period=period)
    if period.status == PeriodStatus.CLOSED:
        report.is_closed = True
        return report
    if period.status == PeriodStatus.PLANNED:
        raise PeriodStateError(f"{period} was never opened.")
    if now < period.ends_at:
        raise PeriodNotEndedError(f"{period} ends at {period.ends_at.isoformat()}.")
    pools = list(period.pools.select_related("member", "team").order_by("pk"))
    if dry_run:
        report.moves = [move for pool in pools if (move := _sweep_preview(pool)) is not None]
        report.pending_holds = _open_holds(pools)
        return report
    _period_mark(period=period, status=PeriodStatus.CLOSING)
    transfer_requests_expire_for_period(period=period, now=now)
    next_period = period_next_get_or_create(period=period)
    for exemption in Exemption.objects.filter(
        pool__period=period, status=ExemptionStatus.GRANTED
    ).order_by("pk"):
        exemption_end(exemption=exemption, now=now, actor=None)
    for pool in pools:
        move = _pool_sweep(pool=pool, next_period=next_period)
        if move is not None:
            report.moves.append(move)
    report.pending_holds = _open_holds(pools)
    report.is_closed = _period_finish(period=period, pools=pools)
    return report


def period_next_get_or_create(*, period: Period) -> Period:
    """The quarter after ``period``, created (planned) when missing."""
    fiscal_year, quarter = (
        (period.fiscal_year, period.quarter + 1)
        if period.quarter < 4
        else (period.fiscal_year + 1, 1)
    )
    found = Period.objects.filter(
        organization_id=period.organization_id, fiscal_year=fiscal_year, quarter=quarter
    ).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return period_create(
                organization=period.organization, fiscal_year=fiscal_year, quarter=quarter
            )
    except IntegrityError:
        return Period.objects.get(
            organization_id=period.organization_id, fiscal_year=fiscal_year, quarter=quarter
        )


def _period_mark(*, period: Period, status: PeriodStatus) -> None:
    with transaction.atomic():
        locked = Period.objects.select_for_update(no_key=True).get(pk=period.pk)
        if locked.status == PeriodStatus.OPEN and status == PeriodStatus.CLOSING:
            locked.status = status
            locked.save(update_fields=["status"])
        period.status = locked.status


def _sweep_amounts(*, pool: Pool, account: Account) -> tuple[int, int, int]:
    """(available, rollover, lapse) for the next round of ``pool``'s sweep."""
    available = account.available
    if available <= 0:
        return available, 0, 0
    owner = Owner.of(pool)
    rule = rollover_rule_for(pool=pool) if owner_is_active(owner) else RolloverRule()
    cap = rule.cap(budget=account.credits_posted)
    rolled = PoolSweep.objects.filter(pool=pool).aggregate(total=Sum("rolled_over"))["total"] or 0
    rollover = available if cap is None else max(0, min(available, cap - rolled))
    return available, rollover, available - rollover


def _sweep_preview(pool: Pool) -> PoolMove | None:
    account = Account.objects.get(pk=pool.account_id)
    available, rollover, lapse = _sweep_amounts(pool=pool, account=account)
    if available <= 0:
        return None
    return PoolMove(
        pool=str(pool), available=available, rolled_over=rollover, lapsed=lapse,
        target=Owner.of(pool).label if rollover else "",
    )  # fmt: skip


def _pool_sweep(*, pool: Pool, next_period: Period) -> PoolMove | None:
    """One round for one pool, in one transaction under its account lock."""
    organization_id = pool.organization_id
    lapsed_account_id = OrganizationAccount.objects.get(
        organization_id=organization_id, purpose=SystemAccountPurpose.LAPSED
    ).account_id
    owner = Owner.of(pool)
    # Created before the locks: creating a pool only inserts rows.
    target = owner_pool_get_or_create(period=next_period, owner=owner)
    with transaction.atomic():
        accounts = {
            account.pk: account
            for account in Account.objects.select_for_update(no_key=True)
            .filter(pk__in=[pool.account_id, target.account_id, lapsed_account_id])
            .order_by("pk")
        }
        available, rollover, lapse = _sweep_amounts(pool=pool, account=accounts[pool.account_id])
        if available <= 0:
            return None
        round_number = PoolSweep.objects.filter(pool=pool).count()
        key = f"period-close:{pool.period_id}:pool:{pool.pk}:round:{round_number}"
        for step, amount, credit_id, code in (
            ("rollover", rollover, target.account_id, TransferCode.ROLLOVER),
            ("lapse", lapse, lapsed_account_id, TransferCode.LAPSE),
        ):
            if amount:
                transfer_create(
                    debit_account_id=pool.account_id, credit_account_id=credit_id, amount=amount,
                    currency=accounts[pool.account_id].currency, code=code,
                    idempotency_key=f"{key}:{step}",
                    idempotency_namespace=_namespace(organization_id),
                    metadata={"period": pool.period_id, "pool": pool.pk, "round": round_number},
                    actor=CLOSE_ACTOR,
                )  # fmt: skip
        PoolSweep.objects.create(
            pool=pool, round=round_number, rolled_over=rollover, lapsed=lapse,
            target=target if rollover else None,
        )  # fmt: skip
    return PoolMove(
        pool=str(pool), available=available, rolled_over=rollover, lapsed=lapse,
        target=str(target) if rollover else "",
    )  # fmt: skip


def _open_holds(pools: list[Pool]) -> int:
    return OpenHold.objects.filter(debit_account_id__in=[p.account_id for p in pools]).count()


def _period_finish(*, period: Period, pools: list[Pool]) -> bool:
    """Mark the period closed and close its pools' accounts when nothing is pending in it."""
    account_ids = sorted(pool.account_id for pool in pools)
    with transaction.atomic():
        locked = Period.objects.select_for_update(no_key=True).get(pk=period.pk)
        if locked.status == PeriodStatus.CLOSED:
            return True
        accounts = list(
            Account.objects.select_for_update(no_key=True).filter(pk__in=account_ids).order_by("pk")
        )
        if (
            any(account.available > 0 for account in accounts)
            or OpenHold.objects.filter(debit_account_id__in=account_ids).exists()
            or Exemption.objects.filter(
                pool__period=period, status=ExemptionStatus.GRANTED
            ).exists()
        ):
            return False
        for account_id in account_ids:
            # Late settles still land here: the gateway records them as overage, which a
            # closed account accepts (ledger: CLOSED_ACCOUNT_DEBIT_CODES).
            account_close(account_id=account_id)
        locked.status = PeriodStatus.CLOSED
        locked.save(update_fields=["status"])
        period.status = locked.status
    logger.info("period %s of organization %s closed", period, period.organization_id)
    return True


# --- open ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FundingLine:
    """What one pool receives at the open: its own budget plus everything planned below it."""

    pool: str
    own: int
    received: int


@dataclass
class OpenReport:
    period: Period
    source: str  # "plan:<id>", "previous" or "none"
    total: int = 0
    lines: list[FundingLine] = field(default_factory=list)
    was_open: bool = False


def period_open_scheduled(*, period: Period, now: datetime, dry_run: bool = False) -> OpenReport:
    """Open a planned period that has started: create its pools for the active teams, members
    and shared pools, fund the organization pool and allocate down the tree from the approved
    plan, or without one per settings.PERIOD_OPEN_WITHOUT_PLAN (the previous quarter's
    allocations by default). Opening an open period again does nothing.

    Raises PeriodNotStartedError, PeriodStateError (closed, or the previous period still open).
    """
    with transaction.atomic():
        locked = (
            Period.objects.select_for_update(no_key=True)
            .select_related("organization")
            .get(pk=period.pk)
        )
        if locked.status == PeriodStatus.OPEN:
            return OpenReport(period=locked, source="", was_open=True)
        if locked.status != PeriodStatus.PLANNED:
            raise PeriodStateError(f"{locked} is {locked.status}.")
        if now < locked.starts_at:
            raise PeriodNotStartedError(f"{locked} starts at {locked.starts_at.isoformat()}.")
        if Period.objects.filter(
            organization_id=locked.organization_id, status=PeriodStatus.OPEN
        ).exists():
            raise PeriodStateError("Another period is still open: close it first.")
        previous = period_previous(period=locked)
        source, own, total = _open_amounts(period=locked, previous=previous)
        received = _subtree_totals(own)
        report = OpenReport(period=locked, source=source, total=total)
        report.lines = [
            FundingLine(pool=owner.label, own=own[owner], received=received[owner])
            for owner in sorted(received, key=_depth_order)
        ]
        if dry_run:
            transaction.set_rollback(True)
            return report
        _pools_fund(period=locked, received=received, total=total, source=source)
        locked.status = PeriodStatus.OPEN
        locked.save(update_fields=["status"])
        period.status = locked.status
    return report


def period_previous(*, period: Period) -> Period | None:
    """The quarter before ``period`` in the same organization, if the books have it."""
    return (
        Period.objects.filter(organization_id=period.organization_id, ends_at__lte=period.starts_at)
        .order_by("-ends_at")
        .first()
    )


def _open_amounts(*, period: Period, previous: Period | None) -> tuple[str, dict[Owner, int], int]:
    """(source, each owner's own budget, the organization total) for the open. Every active
    team, and every active owner of the previous quarter, gets a pool, funded or not."""
    source, own, total = _open_source_amounts(period=period, previous=previous)
    everyone = _previous_owners(previous) + [
        Owner(kind=PoolKind.TEAM, team_id=team_id)
        for team_id in Team.objects.filter(
            organization_id=period.organization_id, is_active=True
        ).values_list("pk", flat=True)
    ]
    for owner in everyone:
        own.setdefault(owner, 0)
    return source, own, total


def _open_source_amounts(
    *, period: Period, previous: Period | None
) -> tuple[str, dict[Owner, int], int]:
    plan = Plan.objects.filter(period=period, status=PlanStatus.APPROVED).first()
    if plan is not None:
        own = {
            Owner(kind=line.kind, team_id=line.team_id, member_id=line.member_id, name=line.name):
            line.amount
            for line in plan.lines.all()
        }  # fmt: skip
        own = {owner: amount for owner, amount in own.items() if owner_is_active(owner)}
        planned = sum(own.values())
        own[Owner(kind=PoolKind.ORGANIZATION)] = max(0, plan.total - planned)
        return f"plan:{plan.pk}", own, max(plan.total, planned)
    if previous is None or settings.PERIOD_OPEN_WITHOUT_PLAN == OPEN_UNFUNDED:
        return OPEN_UNFUNDED, {Owner(kind=PoolKind.ORGANIZATION): 0}, 0
    own = previous_allocations(period=previous)
    return OPEN_FROM_PREVIOUS, own, sum(own.values())


def _previous_owners(previous: Period | None) -> list[Owner]:
    if previous is None:
        return []
    owners = [Owner.of(pool) for pool in previous.pools.all()]
    return [owner for owner in owners if owner_is_active(owner)]


def previous_allocations(*, period: Period) -> dict[Owner, int]:
    """Each active owner's own budget in ``period`` as its allocations made it: what it was
    given from above (funding, allocations in, net of allocations handed back up) minus what
    it passed on below, never below zero."""
    pools = {pool.account_id: pool for pool in period.pools.select_related("member", "team")}
    owners = {account_id: Owner.of(pool) for account_id, pool in pools.items()}
    parents = {owner: parent_owner(owner) for owner in owners.values()}
    given: dict[Owner, int] = defaultdict(int)
    moves = Transfer.objects.filter(
        phase=TransferPhase.POSTED,
        code__in=[TransferCode.FUNDING, TransferCode.ALLOCATION],
        credit_account_id__in=list(pools) + _funding_ids(period.organization_id),
    ).values_list("debit_account_id", "credit_account_id", "code", "amount")
    for debit_id, credit_id, code, amount in moves:
        target = owners.get(credit_id)
        if target is None:
            continue
        source = owners.get(debit_id)
        if (code == TransferCode.FUNDING and target.kind == PoolKind.ORGANIZATION) or (
            source is not None and parents.get(target) == source
        ):
            given[target] += amount
        elif source is not None and parents.get(source) == target:
            given[source] -= amount
    own: dict[Owner, int] = {}
    for owner in owners.values():
        if not owner_is_active(owner):
            continue
        passed_on = sum(given[child] for child, parent in parents.items() if parent == owner)
        own[owner] = max(0, given[owner] - passed_on)
    return own


def _funding_ids(organization_id: int) -> list[int]:
    return list(
        OrganizationAccount.objects.filter(organization_id=organization_id).values_list(
            "account_id", flat=True
        )
    )


def _subtree_totals(own: dict[Owner, int]) -> dict[Owner, int]:
    """What each owner's pool receives: its own budget plus every owner's below it. Owners
    without a parent in the tree (a member with no team) receive nothing."""
    received: dict[Owner, int] = defaultdict(int)
    for owner, amount in own.items():
        node: Owner | None = owner
        chain: list[Owner] = []
        while node is not None:
            chain.append(node)
            node = parent_owner(node)
        if chain[-1].kind != PoolKind.ORGANIZATION:
            continue  # not reachable from the organization pool
        for ancestor in chain:
            received[ancestor] += amount
    for owner in own:
        received.setdefault(owner, 0)
    received.setdefault(Owner(kind=PoolKind.ORGANIZATION), 0)
    return dict(received)


def _depth_order(owner: Owner) -> tuple[int, Owner]:
    depth, node = 0, parent_owner(owner)
    while node is not None:
        depth, node = depth + 1, parent_owner(node)
    return depth, owner


def _pools_fund(*, period: Period, received: dict[Owner, int], total: int, source: str) -> None:
    """Create each owner's pool and move its budget down the tree, parents first."""
    organization: Organization = period.organization
    namespace = _namespace(organization.pk)
    pools: dict[Owner, Pool] = {}
    for owner in sorted(received, key=_depth_order):
        pools[owner] = pool = owner_pool_get_or_create(period=period, owner=owner)
        parent = parent_owner(owner)
        is_root = owner.kind == PoolKind.ORGANIZATION
        amount = total if is_root else received[owner]
        if amount == 0 or (parent is None and not is_root):
            continue
        if parent is None:
            debit_id = OrganizationAccount.objects.get(
                organization=organization, purpose=SystemAccountPurpose.FUNDING
            ).account_id
            code, step = TransferCode.FUNDING, "funding"
        else:
            debit_id, code, step = pools[parent].account_id, TransferCode.ALLOCATION, "allocation"
        transfer_create(
            debit_account_id=debit_id, credit_account_id=pool.account_id, amount=amount,
            currency=organization.currency, code=code,
            idempotency_key=f"period-open:{period.pk}:pool:{pool.pk}:{step}",
            idempotency_namespace=namespace,
            metadata={"period": period.pk, "pool": pool.pk, "source": source}, actor=OPEN_ACTOR,
        )  # fmt: skip


# --- the scheduler's view -----------------------------------------------------------------------


def periods_due(*, now: datetime) -> tuple[list[int], list[int]]:
    """(periods to close, periods to open) at ``now``: open periods that have ended and
    closing ones still pending; for each organization without an open period, the planned
    period that contains ``now`` (created from the last one when the books lack it)."""
    to_close = list(
        Period.objects.filter(
            Q(status=PeriodStatus.OPEN, ends_at__lte=now) | Q(status=PeriodStatus.CLOSING)
        ).values_list("pk", flat=True)
    )
    to_open: list[int] = []
    for organization in (
        Organization.objects.exclude(periods__status__in=[PeriodStatus.OPEN])
        .filter(periods__isnull=False)
        .distinct()
    ):
        # The quarter containing now, not the last one the books have: later quarters may
        # already be planned.
        current = organization.periods.filter(starts_at__lte=now, ends_at__gt=now).first()
        last = organization.periods.order_by("-ends_at").first()
        if current is None and last is not None and last.ends_at <= now:
            current = period_next_get_or_create(period=last)
        if current is not None and current.status == PeriodStatus.PLANNED:
            to_open.append(current.pk)
    return sorted(set(to_close)), to_open
