"""Moving budget: funding, allocation down and up the tree, transfer requests and decisions.

Every movement of money is one ledger transfer; every service is one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from allocation.errors import (
    NotAdjacentError,
    ReasonRequiredError,
    RequestNotPendingError,
    SelfApprovalError,
)
from allocation.locks import transfer_request_lock
from allocation.models import TransferRequest, TransferRequestStatus
from allocation.rules import (
    member_can_allocate,
    member_can_decide,
    member_controls_pool,
    pool_is_parent,
)
from budgets.errors import (
    CrossOrganizationError,
    InvalidInputError,
    NotAllowedError,
    PeriodNotOpenError,
)
from budgets.models import (
    Member,
    OrganizationAccount,
    Period,
    PeriodStatus,
    Pool,
    PoolKind,
    Role,
    SystemAccountPurpose,
)
from ledger.models import Transfer, TransferCode
from ledger.services import transfer_create


def actor_label(member: Member) -> str:
    return f"member:{member.pk}"


def ledger_namespace(pool: Pool) -> str:
    return f"org:{pool.organization_id}"


def ensure_amount(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidInputError("The amount must be a positive number of micro-units.")


def ensure_open(pool: Pool) -> None:
    # A closing period is being swept: money moves out of it only by the close itself.
    if pool.period.status in (PeriodStatus.CLOSING, PeriodStatus.CLOSED):
        raise PeriodNotOpenError(f"{pool.period} is {pool.period.status}.")


def _ensure_same_books(member: Member, source: Pool, target: Pool) -> None:
    if {member.organization_id, source.organization_id, target.organization_id} != {
        member.organization_id
    }:
        raise CrossOrganizationError("Budget never moves between organizations.")
    if source.period_id != target.period_id:
        raise InvalidInputError("Both pools must be in the same period.")
    if source.pk == target.pk:
        raise InvalidInputError("The source and target pools are the same.")


@transaction.atomic
def pool_fund(
    *, pool: Pool, amount: int, actor: Member, idempotency_key: str | None = None
) -> Transfer:
    """Fund the organization pool from the funding account (finance or admins).

    Raises NotAllowedError, InvalidInputError, PeriodNotOpenError, CrossOrganizationError.
    """
    ensure_amount(amount)
    if actor.organization_id != pool.organization_id:
        raise CrossOrganizationError("Budget never moves between organizations.")
    if actor.role not in (Role.FINANCE, Role.ADMIN) or not actor.is_active:
        raise NotAllowedError("Only finance and admins fund the organization pool.")
    if pool.kind != PoolKind.ORGANIZATION:
        raise InvalidInputError("Funding goes to the organization pool; allocate from there.")
    ensure_open(pool)
    funding = OrganizationAccount.objects.get(
        organization_id=pool.organization_id, purpose=SystemAccountPurpose.FUNDING
    )
    return transfer_create(
        debit_account_id=funding.account_id,
        credit_account_id=pool.account_id,
        amount=amount,
        currency=pool.organization.currency,
        code=TransferCode.FUNDING,
        idempotency_key=idempotency_key,
        idempotency_namespace=ledger_namespace(pool),
        metadata={"pool": pool.pk, "period": pool.period_id},
        actor=actor_label(actor),
    )


@transaction.atomic
def pool_allocate(
    *,
    source: Pool,
    target: Pool,
    amount: int,
    actor: Member,
    reason: str = "",
    idempotency_key: str | None = None,
) -> Transfer:
    """Move budget one step down the tree (or back up): org → team → sub-team, member, shared.

    Raises NotAllowedError, NotAdjacentError, InsufficientFundsError, InvalidInputError,
    PeriodNotOpenError, CrossOrganizationError.
    """
    ensure_amount(amount)
    _ensure_same_books(actor, source, target)
    ensure_open(source)
    if pool_is_parent(parent=source, child=target):
        parent = source
    elif pool_is_parent(parent=target, child=source):
        parent = target
    else:
        raise NotAdjacentError()
    if not member_can_allocate(member=actor, parent=parent):
        raise NotAllowedError("You do not manage the budget of this part of the tree.")
    return transfer_create(
        debit_account_id=source.account_id,
        credit_account_id=target.account_id,
        amount=amount,
        currency=source.organization.currency,
        code=TransferCode.ALLOCATION,
        idempotency_key=idempotency_key,
        idempotency_namespace=ledger_namespace(source),
        metadata={"source_pool": source.pk, "target_pool": target.pk, "reason": reason},
        actor=actor_label(actor),
    )


@transaction.atomic
def transfer_request_create(
    *, source: Pool, target: Pool, amount: int, reason: str, requester: Member
) -> TransferRequest:
    """Ask to move budget; executes at once when the requester controls the source pool.

    Raises InvalidInputError, CrossOrganizationError, PeriodNotOpenError, and when executing at
    once InsufficientFundsError (then nothing is created).
    """
    ensure_amount(amount)
    _ensure_same_books(requester, source, target)
    ensure_open(source)
    if not reason.strip():
        raise InvalidInputError("Say why the budget should move.")
    now = timezone.now()
    request = TransferRequest(
        organization_id=source.organization_id,
        source=source,
        target=target,
        amount=amount,
        reason=reason.strip(),
        requester=requester,
        expires_at=now + timedelta(days=source.organization.transfer_request_ttl_days),
    )
    request._history_user = requester.user  # type: ignore[attr-defined]
    request.save()
    if member_controls_pool(member=requester, pool=source, amount=amount):
        _execute(request=request, decided_by=requester, now=now)
    return request


@transaction.atomic
def transfer_request_approve(*, request: TransferRequest, approver: Member) -> TransferRequest:
    """Approve a pending request and move the money.

    Raises RequestNotPendingError, SelfApprovalError, NotAllowedError, PeriodNotOpenError,
    InsufficientFundsError (the request then stays pending and nothing moves).
    """
    request = transfer_request_lock(request_id=request.pk)
    now = timezone.now()
    _ensure_decidable(request=request, member=approver, now=now)
    # A closing period's money leaves only through its sweeps (allocation/periods.py).
    ensure_open(request.source)
    _execute(request=request, decided_by=approver, now=now)
    return request


@transaction.atomic
def transfer_request_reject(
    *, request: TransferRequest, approver: Member, reason: str
) -> TransferRequest:
    """Reject a pending request with a reason.

    Raises ReasonRequiredError, RequestNotPendingError, SelfApprovalError, NotAllowedError.
    """
    if not reason.strip():
        raise ReasonRequiredError()
    request = transfer_request_lock(request_id=request.pk)
    now = timezone.now()
    _ensure_decidable(request=request, member=approver, now=now)
    _decide(
        request=request,
        status=TransferRequestStatus.REJECTED,
        member=approver,
        now=now,
        reason=reason.strip(),
    )
    return request


@transaction.atomic
def transfer_request_cancel(*, request: TransferRequest, requester: Member) -> TransferRequest:
    """The requester withdraws a pending request. Raises NotAllowedError, RequestNotPendingError."""
    request = transfer_request_lock(request_id=request.pk)
    if request.requester_id != requester.pk:
        raise NotAllowedError("Only the requester cancels a request.")
    if request.status != TransferRequestStatus.PENDING:
        raise RequestNotPendingError(f"The request is {request.status}.")
    _decide(
        request=request,
        status=TransferRequestStatus.CANCELLED,
        member=requester,
        now=timezone.now(),
        reason="",
    )
    return request


def transfer_requests_expire(*, now: datetime) -> int:
    """Expire pending requests past their expiry; safe to run concurrently and repeatedly."""
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                TransferRequest.objects.select_for_update(skip_locked=True)
                .filter(status=TransferRequestStatus.PENDING, expires_at__lte=now)
                .order_by("pk")[:200]
            )
            for request in due:
                request.status = TransferRequestStatus.EXPIRED
                request.decided_at = now
                request.save(update_fields=["status", "decided_at"])
        expired += len(due)
        if len(due) < 200:
            return expired


def transfer_requests_expire_for_period(*, period: Period, now: datetime) -> int:
    """Expire the pending requests into or out of a period's pools (its close: a closing
    period's pools take no transfers, so they could only wait for their expiry)."""
    with transaction.atomic():
        pending = list(
            TransferRequest.objects.select_for_update(of=("self",))
            .filter(status=TransferRequestStatus.PENDING)
            .filter(Q(source__period=period) | Q(target__period=period))
            .order_by("pk")
        )
        for request in pending:
            request.status = TransferRequestStatus.EXPIRED
            request.decided_at = now
            request.save(update_fields=["status", "decided_at"])
    return len(pending)


def _ensure_decidable(*, request: TransferRequest, member: Member, now: datetime) -> None:
    if request.status != TransferRequestStatus.PENDING:
        raise RequestNotPendingError(f"The request is {request.status}.")
    if request.expires_at <= now:
        raise RequestNotPendingError("The request has expired.")
    if member.pk == request.requester_id:
        raise SelfApprovalError()
    if not member_can_decide(member=member, request=request):
        raise NotAllowedError("Only a manager of the source pool's team or an admin decides.")


def _execute(*, request: TransferRequest, decided_by: Member, now: datetime) -> None:
    """Move the money (once: the ledger key is the request's) and mark the request executed."""
    request.ledger_transfer = transfer_create(
        debit_account_id=request.source.account_id,
        credit_account_id=request.target.account_id,
        amount=request.amount,
        currency=request.source.account.currency,
        code=TransferCode.TRANSFER,
        idempotency_key=request.ledger_key,
        idempotency_namespace=ledger_namespace(request.source),
        metadata={"transfer_request": request.pk},
        actor=actor_label(decided_by),
    )
    _decide(
        request=request,
        status=TransferRequestStatus.EXECUTED,
        member=decided_by,
        now=now,
        reason="",
    )


def _decide(
    *,
    request: TransferRequest,
    status: TransferRequestStatus,
    member: Member,
    now: datetime,
    reason: str,
) -> None:
    request.status = status
    request.decided_by = member
    request.decided_at = now
    request.decision_reason = reason
    request._history_user = member.user  # type: ignore[attr-defined]
    request.save(
        update_fields=["status", "decided_by", "decided_at", "decision_reason", "ledger_transfer"]
    )
