"""Exemptions: a temporary increase of a pool for a window and a use case.

pending → approved → granted → ended, or rejected / cancelled / revoked / expired. The grant
moves ``amount`` from the source pool (the pool one level up, or the organization pool) at the
window's start; at its end, or on an early revoke, the unspent part, min(grant, available), is
clawed back. Each moves money once: the ledger keys are ``exemption:<id>:grant`` and
``exemption:<id>:clawback``. Every service is one transaction, under the exemption's row lock.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from allocation.errors import (
    ExemptionNotDecidableError,
    ExemptionStateError,
    ReasonRequiredError,
    SelfApprovalError,
)
from allocation.locks import exemption_lock
from allocation.models import Exemption, ExemptionSource, ExemptionStatus
from allocation.rules import (
    member_can_decide_exemption,
    member_can_request_exemption,
    member_manages_pool,
)
from allocation.services import actor_label, ensure_amount, ensure_open, ledger_namespace
from budgets.errors import CrossOrganizationError, InvalidInputError, NotAllowedError
from budgets.models import Member, Pool, PoolKind
from ledger.errors import DomainError
from ledger.models import Account, TransferCode
from ledger.services import transfer_create

logger = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:exemptions"


def exemption_source_pool(*, pool: Pool, source: ExemptionSource | str) -> Pool:
    """Where a grant comes from: the pool one level up (a member's team, a shared pool's
    team, a sub-team's parent, a top-level team's organization pool) or the organization pool.
    Raises InvalidInputError."""
    period_pools = Pool.objects.filter(period_id=pool.period_id)
    if pool.kind == PoolKind.ORGANIZATION:
        raise InvalidInputError("The organization pool is funded, not exempted.")
    if source == ExemptionSource.ORGANIZATION:
        found = period_pools.filter(kind=PoolKind.ORGANIZATION).first()
    elif pool.kind == PoolKind.MEMBER:
        found = period_pools.filter(kind=PoolKind.TEAM, team__members=pool.member_id).first()
    elif pool.kind == PoolKind.SHARED:
        found = period_pools.filter(kind=PoolKind.TEAM, team=pool.team).first()
    elif pool.team is not None and pool.team.parent is not None:
        found = period_pools.filter(kind=PoolKind.TEAM, team=pool.team.parent).first()
    else:
        found = period_pools.filter(kind=PoolKind.ORGANIZATION).first()
    if found is None:
        raise InvalidInputError("The pool one level up has no pool in this period.")
    return found


@transaction.atomic
def exemption_request(
    *,
    pool: Pool,
    amount: int,
    starts_at: datetime,
    ends_at: datetime,
    use_case: str,
    reason: str,
    requester: Member,
    now: datetime,
    source: ExemptionSource | str = ExemptionSource.TEAM,
) -> Exemption:
    """Ask for a temporary increase of ``pool`` (by its member, their manager or an admin).

    Raises InvalidInputError, NotAllowedError, CrossOrganizationError, PeriodNotOpenError.
    """
    ensure_amount(amount)
    if requester.organization_id != pool.organization_id:
        raise CrossOrganizationError("Exemptions stay within one organization.")
    ensure_open(pool)
    if not member_can_request_exemption(member=requester, pool=pool):
        raise NotAllowedError("Only the pool's member, their manager or an admin asks for it.")
    if not use_case.strip() or not reason.strip():
        raise InvalidInputError("Name the use case and say why.")
    if not starts_at < ends_at:
        raise InvalidInputError("The window must start before it ends.")
    if ends_at <= now:
        raise InvalidInputError("The window has already ended.")
    period = pool.period
    if starts_at < period.starts_at or ends_at > period.ends_at:
        raise InvalidInputError(f"The window must lie inside {period} (the pool's period).")
    exemption = Exemption(
        organization_id=pool.organization_id,
        pool=pool,
        source=ExemptionSource(source),
        source_pool=exemption_source_pool(pool=pool, source=source),
        amount=amount,
        starts_at=starts_at,
        ends_at=ends_at,
        use_case=use_case.strip(),
        reason=reason.strip(),
        requester=requester,
    )
    exemption._history_user = requester.user  # type: ignore[attr-defined]
    exemption.save()
    return exemption


@transaction.atomic
def exemption_approve(*, exemption: Exemption, approver: Member, now: datetime) -> Exemption:
    """Approve a pending exemption; granted at once when its window has started.

    Raises ExemptionNotDecidableError, SelfApprovalError, NotAllowedError, and when granting
    at once InsufficientFundsError or PeriodNotOpenError (then nothing changes).
    """
    exemption = exemption_lock(exemption_id=exemption.pk)
    _ensure_decidable(exemption=exemption, member=approver, now=now)
    _record(exemption, ExemptionStatus.APPROVED, approver, decided_at=now)
    if exemption.starts_at <= now:
        _grant(exemption=exemption, now=now, actor=approver)
    return exemption


@transaction.atomic
def exemption_reject(
    *, exemption: Exemption, approver: Member, reason: str, now: datetime
) -> Exemption:
    """Reject a pending exemption with a reason.

    Raises ReasonRequiredError, ExemptionNotDecidableError, SelfApprovalError, NotAllowedError.
    """
    if not reason.strip():
        raise ReasonRequiredError()
    exemption = exemption_lock(exemption_id=exemption.pk)
    _ensure_decidable(exemption=exemption, member=approver, now=now)
    exemption.decision_reason = reason.strip()
    _record(exemption, ExemptionStatus.REJECTED, approver, decided_at=now)
    return exemption


@transaction.atomic
def exemption_revoke(
    *, exemption: Exemption, actor: Member, now: datetime, reason: str = ""
) -> Exemption:
    """End an approved or granted exemption early (a manager of the pool's team or an admin);
    a granted one is clawed back like at its end. Raises NotAllowedError, ExemptionStateError.
    """
    exemption = exemption_lock(exemption_id=exemption.pk)
    if not member_manages_pool(member=actor, pool=exemption.pool):
        raise NotAllowedError("A manager of the pool's team or an admin revokes an exemption.")
    if exemption.status not in (ExemptionStatus.APPROVED, ExemptionStatus.GRANTED):
        raise ExemptionStateError(f"A {exemption.status} exemption cannot be revoked.")
    exemption.decision_reason = reason.strip() or exemption.decision_reason
    if exemption.status == ExemptionStatus.GRANTED:
        _claw_back(exemption=exemption, actor=actor_label(actor))
    exemption.ended_at = now
    _record(exemption, ExemptionStatus.REVOKED, actor)
    return exemption


@transaction.atomic
def exemption_cancel(*, exemption: Exemption, requester: Member, now: datetime) -> Exemption:
    """The requester withdraws a pending exemption. Raises NotAllowedError, ExemptionStateError."""
    exemption = exemption_lock(exemption_id=exemption.pk)
    if exemption.requester_id != requester.pk:
        raise NotAllowedError("Only the requester cancels an exemption.")
    if exemption.status != ExemptionStatus.PENDING:
        raise ExemptionStateError(f"A {exemption.status} exemption cannot be cancelled.")
    _record(exemption, ExemptionStatus.CANCELLED, requester, decided_at=now)
    return exemption


@transaction.atomic
def exemption_start(*, exemption: Exemption, now: datetime) -> Exemption:
    """Grant an approved exemption whose window has started (the scheduler's step); an
    approval whose window passed ungranted expires. Running it again does nothing.

    Raises InsufficientFundsError, PeriodNotOpenError (the exemption stays approved).
    """
    exemption = exemption_lock(exemption_id=exemption.pk)
    if exemption.status != ExemptionStatus.APPROVED or exemption.starts_at > now:
        return exemption
    if exemption.ends_at <= now:
        _record(exemption, ExemptionStatus.EXPIRED, None)
        return exemption
    _grant(exemption=exemption, now=now, actor=None)
    return exemption


@transaction.atomic
def exemption_end(*, exemption: Exemption, now: datetime, actor: Member | None) -> Exemption:
    """Claw back the unspent part of a granted exemption, min(grant, available), and end it.
    Called at the window's end (or when its period closes). Running it again does nothing."""
    exemption = exemption_lock(exemption_id=exemption.pk)
    if exemption.status != ExemptionStatus.GRANTED:
        return exemption
    _claw_back(exemption=exemption, actor=actor_label(actor) if actor else SYSTEM_ACTOR)
    exemption.ended_at = now
    _record(exemption, ExemptionStatus.ENDED, actor)
    return exemption


def exemptions_start_due(*, now: datetime) -> int:
    """Grant every approved exemption whose window has started; returns how many it granted.
    A grant the source cannot pay is logged and kept on the exemption, and retried next run."""
    granted = 0
    due = Exemption.objects.filter(status=ExemptionStatus.APPROVED, starts_at__lte=now)
    for exemption_id in due.order_by("pk").values_list("pk", flat=True):
        try:
            result = exemption_start(exemption=Exemption(pk=exemption_id), now=now)
        except DomainError as error:
            logger.warning(
                "exemption %s not granted: %s (%s)", exemption_id, error.message, error.code
            )
            Exemption.objects.filter(pk=exemption_id).update(
                last_error=f"{error.code}: {error.message}"
            )
            continue
        granted += result.status == ExemptionStatus.GRANTED
    return granted


def exemptions_end_due(*, now: datetime) -> int:
    """End every granted exemption whose window has ended (claw back), and expire pending ones
    whose window passed undecided; returns how many it ended."""
    ended = 0
    due = Exemption.objects.filter(status=ExemptionStatus.GRANTED, ends_at__lte=now)
    for exemption_id in due.order_by("pk").values_list("pk", flat=True):
        result = exemption_end(exemption=Exemption(pk=exemption_id), now=now, actor=None)
        ended += result.status == ExemptionStatus.ENDED
    for exemption in Exemption.objects.filter(status=ExemptionStatus.PENDING, ends_at__lte=now):
        with transaction.atomic():
            locked = exemption_lock(exemption_id=exemption.pk)
            if locked.status == ExemptionStatus.PENDING:
                _record(locked, ExemptionStatus.EXPIRED, None, decided_at=now)
    return ended


def _ensure_decidable(*, exemption: Exemption, member: Member, now: datetime) -> None:
    if exemption.status != ExemptionStatus.PENDING:
        raise ExemptionNotDecidableError(f"The exemption is {exemption.status}.")
    if exemption.ends_at <= now:
        raise ExemptionNotDecidableError("The exemption's window has passed.")
    if member.pk == exemption.requester_id:
        raise SelfApprovalError()
    if not member_can_decide_exemption(member=member, exemption=exemption):
        raise NotAllowedError("Only a manager of the pool's team or an admin decides.")


def _grant(*, exemption: Exemption, now: datetime, actor: Member | None) -> None:
    ensure_open(exemption.pool)
    exemption.grant_transfer = transfer_create(
        debit_account_id=exemption.source_pool.account_id,
        credit_account_id=exemption.pool.account_id,
        amount=exemption.amount,
        currency=exemption.pool.account.currency,
        code=TransferCode.EXEMPTION_GRANT,
        idempotency_key=exemption.grant_key,
        idempotency_namespace=ledger_namespace(exemption.pool),
        metadata={"exemption": exemption.pk},
        actor=actor_label(actor) if actor else SYSTEM_ACTOR,
    )
    exemption.granted_at = now
    exemption.last_error = ""
    _record(exemption, ExemptionStatus.GRANTED, actor)


def _claw_back(*, exemption: Exemption, actor: str) -> None:
    """Move min(grant, available) back to the source, reading available under the locks."""
    ids = sorted([exemption.pool.account_id, exemption.source_pool.account_id])
    accounts = {
        a.pk: a
        for a in Account.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
    }
    amount = max(0, min(exemption.amount, accounts[exemption.pool.account_id].available))
    if amount:
        exemption.clawback_transfer = transfer_create(
            debit_account_id=exemption.pool.account_id,
            credit_account_id=exemption.source_pool.account_id,
            amount=amount,
            currency=exemption.pool.account.currency,
            code=TransferCode.EXEMPTION_CLAWBACK,
            idempotency_key=exemption.clawback_key,
            idempotency_namespace=ledger_namespace(exemption.pool),
            metadata={"exemption": exemption.pk},
            actor=actor,
        )
    exemption.clawed_back = amount


def _record(
    exemption: Exemption,
    status: ExemptionStatus,
    member: Member | None,
    *,
    decided_at: datetime | None = None,
) -> None:
    exemption.status = status
    if decided_at is not None:
        exemption.decided_by = member
        exemption.decided_at = decided_at
    if member is not None:
        exemption._history_user = member.user  # type: ignore[attr-defined]
    exemption.save()
