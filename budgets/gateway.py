"""The gateway's hot path: authorize before a model call, settle or void after it.

One short transaction per call. It locks the spending pool's account row (inside the ledger)
and, for a call with a session id under a session cap, that session's counter; nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from budgets.cache import cached
from budgets.errors import InvalidInputError, InvalidStateError, NotFoundError, UnknownModelError
from budgets.models import (
    Authorization,
    AuthorizationStatus,
    Credential,
    CredentialKind,
    Decision,
    Member,
    Organization,
    PeriodStatus,
    Pool,
    PoolKind,
    SessionUsage,
)
from budgets.policies import EffectivePolicy, policy_effective
from budgets.pricing import price_for, usage_cost
from budgets.selectors import pool_balance
from ledger.errors import HoldExpiredError, IdempotencyConflictError, InsufficientFundsError
from ledger.models import Transfer, TransferCode
from ledger.services import (
    fast_call,
    fast_path_available,
    hold_create,
    hold_create_statement,
    hold_post,
    hold_void,
    transfer_create,
)

LEDGER_NAMESPACE = "gateway"


@dataclass(frozen=True)
class Spender:
    """Who spends and from which pool."""

    pool: Pool
    credential: Credential | None
    member: Member | None
    credential_kind: str


@dataclass(frozen=True)
class AuthorizeRequest:
    idempotency_key: str
    subject: str
    model: str
    input_tokens: int = 0
    max_output_tokens: int | None = None
    amount: int | None = None  # micro-units, instead of a token estimate
    session_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    ttl_seconds: int = 600

    @property
    def digest(self) -> str:
        canonical = json.dumps(
            {
                "subject": self.subject, "model": self.model, "input_tokens": self.input_tokens,
                "max_output_tokens": self.max_output_tokens, "amount": self.amount,
                "session_id": self.session_id, "tags": self.tags, "ttl": self.ttl_seconds,
            },
            sort_keys=True,
        )  # fmt: skip
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Usage:
    model: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    amount: int | None = None  # micro-units, instead of token counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens, "output_tokens": self.output_tokens,
            "amount": self.amount,
        }  # fmt: skip


def spender_resolve(*, organization: Organization, subject: str) -> Spender:
    """The pool a subject spends from in the open period: a credential by alias or external
    id, or a member by email. Cached (budgets/cache.py). Raises NotFoundError (also for
    another organization's)."""
    spender = cached(
        ("spender", organization.pk, subject),
        lambda: _spender_load(organization=organization, subject=subject),
    )
    credential = spender.credential
    if credential is not None and credential.expires_at and credential.expires_at <= timezone.now():
        raise NotFoundError("The credential has expired.")
    return spender


def _spender_load(*, organization: Organization, subject: str) -> Spender:
    now = timezone.now()
    credential = (
        Credential.objects.filter(organization=organization, is_active=True)
        .filter(Q(alias=subject) | Q(external_id=subject))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("member")
        .first()
    )
    pools = Pool.objects.filter(
        organization=organization, period__status=PeriodStatus.OPEN
    ).select_related("account", "spend_account", "organization", "member")
    if credential is not None:
        if credential.kind == CredentialKind.INTERACTIVE:
            pool = pools.filter(kind=PoolKind.MEMBER, member=credential.member).first()
        else:
            pool = pools.filter(
                kind=PoolKind.SHARED, team=credential.team, name=credential.shared_pool_name
            ).first()
        member = credential.member
        kind = credential.kind
    else:
        member = Member.objects.filter(
            organization=organization, is_active=True, user__email__iexact=subject
        ).first()
        pool = pools.filter(kind=PoolKind.MEMBER, member=member).first() if member else None
        kind = CredentialKind.INTERACTIVE
    if pool is None:
        raise NotFoundError("No spender with that subject has a pool in the open period.")
    return Spender(pool=pool, credential=credential, member=member, credential_kind=kind)


def authorization_create(*, organization: Organization, request: AuthorizeRequest) -> Authorization:
    """Reserve for a model call, or deny it (the denial is stored and replayed).

    Raises NotFoundError, UnknownModelError, InvalidInputError, IdempotencyConflictError.
    """
    if fast_path_available():
        fast = _authorize_fast(organization=organization, request=request)
        if fast is not None:
            return fast
    existing = Authorization.objects.filter(
        organization=organization, idempotency_key=request.idempotency_key
    ).first()
    if existing is not None:
        return _replay(existing, request.digest)
    spender = spender_resolve(organization=organization, subject=request.subject)
    policy = policy_effective(pool=spender.pool, credential_kind=spender.credential_kind)
    try:
        try:
            with transaction.atomic():
                return _decide(organization=organization, request=request, spender=spender,
                               policy=policy)  # fmt: skip
        except _Denied as denied:
            # The reservation's transaction rolled back whole; remember the denial alone.
            with transaction.atomic():
                return _deny(denied.authorization, denied.code, denied.message, denied.available)
    except IntegrityError:
        # The same key raced in from another request: its answer is the answer.
        existing = Authorization.objects.filter(
            organization=organization, idempotency_key=request.idempotency_key
        ).first()
        if existing is None:
            raise
        return _replay(existing, request.digest)


def _authorize_fast(
    *, organization: Organization, request: AuthorizeRequest
) -> Authorization | None:
    """A clean allow in one statement (budgets_fast_authorize, migration 0005). None hands the
    call to the ordinary path, unchanged: an earlier answer under the key, a denial, a soft
    limit, a session cap, anything to diagnose."""
    try:
        spender = spender_resolve(organization=organization, subject=request.subject)
        policy = policy_effective(pool=spender.pool, credential_kind=spender.credential_kind)
        now = timezone.now()
        if (
            policy.is_frozen
            or (policy.allowed_models and request.model not in policy.allowed_models)
            or (request.session_id and policy.session_cap_amount is not None)
            or (request.session_id and policy.session_cap_tokens is not None)
        ):
            return None
        authorization = _authorization_new(
            organization=organization, request=request, spender=spender, policy=policy, now=now
        )
        reservation = _reservation(request=request, authorization=authorization, on=now)
    except (NotFoundError, UnknownModelError):
        return None  # the ordinary path answers a replay under this key before these
    if reservation <= 0 or (
        policy.per_request_max is not None and reservation > policy.per_request_max
    ):
        return None
    pool = spender.pool
    statement = hold_create_statement(
        debit_account_id=pool.account_id, credit_account_id=pool.spend_account_id,
        amount=reservation, currency=pool.organization.currency,
        timeout=timedelta(seconds=request.ttl_seconds), now=now, code=TransferCode.SPEND,
        idempotency_key=str(authorization.id), idempotency_namespace=LEDGER_NAMESPACE,
        metadata={"authorization": str(authorization.id), "model": authorization.model},
        actor="gateway",
    )  # fmt: skip
    authorization.decision = Decision.ALLOW
    authorization.status = AuthorizationStatus.HELD
    row = fast_call(
        "SELECT * FROM budgets_fast_authorize("
        "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
        [*statement.args, policy.soft_limit_share, _row_json(authorization)],
    )
    if row is None:
        return None
    authorization.hold_id, authorization.available_at_decision = row
    authorization.reserved = reservation
    authorization.expires_at = statement.expires_at
    authorization._state.adding = False
    authorization._state.db = connection.alias
    return authorization


_AUTHORIZATION_COLUMNS = tuple(field.attname for field in Authorization._meta.concrete_fields)


def _row_json(authorization: Authorization) -> str:
    """The authorization as a JSON object of its columns (for jsonb_populate_record)."""
    row = {column: getattr(authorization, column) for column in _AUTHORIZATION_COLUMNS}
    return json.dumps(row, default=str)


def _authorization_new(
    *,
    organization: Organization,
    request: AuthorizeRequest,
    spender: Spender,
    policy: EffectivePolicy,
    now: datetime,
) -> Authorization:
    return Authorization(
        id=uuid.uuid4(), organization=organization, pool=spender.pool,
        credential=spender.credential, member=spender.member, subject=request.subject,
        idempotency_key=request.idempotency_key, request_digest=request.digest,
        requested_model=request.model, model=request.model, session_id=request.session_id,
        tags=request.tags, input_tokens=request.input_tokens, created_at=now,
        max_output_tokens=request.max_output_tokens or policy.default_max_output_tokens,
    )  # fmt: skip


def _reservation(*, request: AuthorizeRequest, authorization: Authorization, on: datetime) -> int:
    """The amount to hold: the amount sent, or the estimate priced at the answered model."""
    if request.amount is not None:
        return request.amount
    return usage_cost(
        price=price_for(model=authorization.model, on=on.date()),
        input_tokens=request.input_tokens,
        output_tokens=authorization.max_output_tokens,
    )


def _replay(existing: Authorization, digest: str) -> Authorization:
    if existing.request_digest != digest:
        raise IdempotencyConflictError(idempotency_key=existing.idempotency_key)
    return existing


def _decide(
    *,
    organization: Organization,
    request: AuthorizeRequest,
    spender: Spender,
    policy: EffectivePolicy,
) -> Authorization:
    now = timezone.now()
    pool = spender.pool
    authorization = _authorization_new(
        organization=organization, request=request, spender=spender, policy=policy, now=now
    )
    balance = pool_balance(pool=pool)
    if policy.is_frozen:
        return _deny(authorization, "pool_frozen", "The pool is frozen.", balance.available)
    if policy.allowed_models and request.model not in policy.allowed_models:
        return _deny(
            authorization, "model_not_allowed",
            f"{request.model} is not allowed here; allowed: {', '.join(policy.allowed_models)}.",
            balance.available,
        )  # fmt: skip
    price_for(model=request.model, on=now.date())  # an unknown model: 422, not a denial
    decision, message = Decision.ALLOW, ""
    share = policy.soft_limit_share
    used = balance.spent + balance.reserved
    if share is not None and balance.budget > 0 and used >= share * balance.budget:
        percent = (Decimal(used) * 100 / balance.budget).quantize(Decimal("1"))
        cheaper = policy.downgrade_map.get(request.model)
        if cheaper:
            decision, authorization.model = Decision.DOWNGRADE, cheaper
            message = (
                f"This pool has used {percent}% of its budget (soft limit "
                f"{share * 100:.0f}%): {request.model} is downgraded to {cheaper}."
            )
        else:
            message = (
                f"This pool has used {percent}% of its budget (soft limit {share * 100:.0f}%)."
            )
    reservation = _reservation(request=request, authorization=authorization, on=now)
    if reservation <= 0:
        raise InvalidInputError("The reservation must be positive: send tokens or an amount.")
    if policy.per_request_max is not None and reservation > policy.per_request_max:
        return _deny(
            authorization, "request_limit",
            "The call's reservation is above the per-request maximum.", balance.available,
        )  # fmt: skip
    estimated_tokens = request.input_tokens + authorization.max_output_tokens
    session = _session_reserve(
        request=request, pool=pool, policy=policy, amount=reservation, tokens=estimated_tokens
    )
    if session is False:
        return _deny(authorization, "session_limit", "The session's cap is reached.",
                     balance.available)  # fmt: skip
    try:
        hold = hold_create(
            debit_account_id=pool.account_id, credit_account_id=pool.spend_account_id,
            amount=reservation, currency=pool.organization.currency,
            timeout=timedelta(seconds=request.ttl_seconds), code=TransferCode.SPEND,
            idempotency_key=str(authorization.id), idempotency_namespace=LEDGER_NAMESPACE,
            metadata={"authorization": str(authorization.id), "model": authorization.model},
            actor="gateway",
        )  # fmt: skip
    except InsufficientFundsError as refusal:
        raise _Denied(
            authorization,
            "budget_exhausted",
            "The pool's budget is exhausted for this call.",
            int(refusal.details.get("available", balance.available)),
        ) from None
    authorization.decision = decision
    authorization.status = AuthorizationStatus.HELD
    authorization.hold = hold
    authorization.reserved = reservation
    authorization.available_at_decision = balance.available - reservation
    authorization.expires_at = hold.expires_at
    authorization.message = message
    authorization.save(force_insert=True)
    return authorization


class _Denied(Exception):
    """Deny after work that must be rolled back first (a session reservation)."""

    def __init__(
        self, authorization: Authorization, code: str, message: str, available: int
    ) -> None:
        super().__init__(message)
        self.authorization, self.code, self.message = authorization, code, message
        self.available = available


def _deny(authorization: Authorization, code: str, message: str, available: int) -> Authorization:
    authorization.decision = Decision.DENY
    authorization.status = AuthorizationStatus.DENIED
    authorization.code, authorization.message = code, message
    authorization.available_at_decision = available
    authorization.max_output_tokens = authorization.max_output_tokens or 0
    authorization.save(force_insert=True)
    return authorization


def _session_reserve(
    *, request: AuthorizeRequest, pool: Pool, policy: EffectivePolicy, amount: int, tokens: int
) -> bool | None:
    """Add to the session's counters under its row lock; False when a cap would be passed."""
    if not request.session_id or (
        policy.session_cap_amount is None and policy.session_cap_tokens is None
    ):
        return None
    # Insert-if-absent that never raises, so two first calls of a session cannot collide.
    SessionUsage.objects.bulk_create(
        [SessionUsage(pool=pool, session_id=request.session_id)], ignore_conflicts=True
    )
    session = SessionUsage.objects.select_for_update().get(pool=pool, session_id=request.session_id)
    if (
        policy.session_cap_amount is not None
        and session.amount + amount > policy.session_cap_amount
    ):
        return False
    if (
        policy.session_cap_tokens is not None
        and session.tokens + tokens > policy.session_cap_tokens
    ):
        return False
    session.amount += amount
    session.tokens += tokens
    session.save(update_fields=["amount", "tokens"])
    return True


def authorization_get(*, organization: Organization, authorization_id: str) -> Authorization:
    """An authorization of this organization. Raises NotFoundError (also for another's)."""
    return _authorization_find(
        Authorization.objects.all(), organization=organization, authorization_id=authorization_id
    )


def _authorization_find(
    queryset: Any, *, organization: Organization, authorization_id: str
) -> Authorization:
    try:
        key = uuid.UUID(str(authorization_id))
    except ValueError:
        raise NotFoundError("No such authorization.") from None
    authorization: Authorization | None = queryset.filter(organization=organization, pk=key).first()
    if authorization is None:
        raise NotFoundError("No such authorization.")
    return authorization


@dataclass(frozen=True)
class Settlement:
    """A settle's answer; ``available`` is the pool's, read after the settle."""

    id: uuid.UUID
    status: str
    charged: int
    released: int
    overage: int
    available: int


def authorization_settle(
    *, organization: Organization, authorization_id: str, usage: Usage
) -> Settlement:
    """Charge the real cost: post up to the hold, the excess as overage; after the hold
    expired, charge it all the same (settled_late). Usage is never dropped. Settling again
    with the same usage returns the same answer.

    Raises NotFoundError, InvalidStateError, UnknownModelError, InvalidInputError.
    """
    if fast_path_available():
        fast = _settle_fast(organization=organization, authorization_id=authorization_id,
                            usage=usage)  # fmt: skip
        if fast is not None:
            return fast
    authorization = _settle(
        organization=organization, authorization_id=authorization_id, usage=usage
    )
    assert authorization.pool is not None
    return Settlement(
        id=authorization.id, status=authorization.status, charged=authorization.charged,
        released=authorization.released, overage=authorization.overage,
        available=pool_balance(pool=authorization.pool).available,
    )  # fmt: skip


def _settle_fast(
    *, organization: Organization, authorization_id: str, usage: Usage
) -> Settlement | None:
    """A settle within the reservation, before expiry, without a session, in one statement
    after one read (budgets_fast_settle, migration 0005). None hands it to the ordinary path,
    unchanged: a replay, an overage, a late settle, an unknown id."""
    try:
        key = uuid.UUID(str(authorization_id))
    except ValueError:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, model, requested_model, created_at, reserved, session_id "
            "FROM budgets_authorization WHERE id = %s AND organization_id = %s",
            [key, organization.pk],
        )
        found = cursor.fetchone()
    if found is None or found[0] != AuthorizationStatus.HELD or found[5]:
        return None
    authorization = Authorization(
        id=key, model=found[1], requested_model=found[2], created_at=found[3], reserved=found[4]
    )
    cost, counterfactual = _costs(authorization=authorization, usage=usage)
    if cost > authorization.reserved:
        return None
    row = fast_call(
        "SELECT budgets_fast_settle(%s, %s, %s, %s, %s::jsonb, %s, %s)",
        [
            key, organization.pk, cost, counterfactual,
            json.dumps(_usage_record(authorization=authorization, usage=usage)), "gateway",
            timezone.now(),
        ],
    )  # fmt: skip
    if row is None:
        return None
    return Settlement(
        id=key, status=AuthorizationStatus.SETTLED, charged=cost,
        released=authorization.reserved - cost, overage=0, available=row[0],
    )  # fmt: skip


def _usage_record(*, authorization: Authorization, usage: Usage) -> dict[str, Any]:
    return {"request": usage.as_dict(), "charged_model": usage.model or authorization.model}


@transaction.atomic
def _settle(*, organization: Organization, authorization_id: str, usage: Usage) -> Authorization:
    authorization = _locked(organization=organization, authorization_id=authorization_id)
    if authorization.status in (AuthorizationStatus.SETTLED, AuthorizationStatus.SETTLED_LATE):
        if authorization.usage.get("request") == usage.as_dict():
            return authorization
        raise InvalidStateError("The authorization is already settled.")
    if authorization.status != AuthorizationStatus.HELD:
        raise InvalidStateError(f"A {authorization.status} authorization cannot be settled.")
    pool = authorization.pool
    if pool is None or authorization.hold_id is None:
        raise InvalidStateError("The authorization holds nothing.")
    cost, counterfactual = _costs(authorization=authorization, usage=usage)
    currency = pool.organization.currency
    posted = min(cost, authorization.reserved)
    try:
        hold_post(hold_id=authorization.hold_id, amount=posted, actor="gateway")
        status, released, excess = (
            AuthorizationStatus.SETTLED,
            authorization.reserved - posted,
            cost - posted,
        )
    except HoldExpiredError:
        status, released, excess = AuthorizationStatus.SETTLED_LATE, 0, cost
        posted = 0
    if excess:
        available = pool_balance(pool=pool).available
        within = max(0, min(excess, available)) if status == AuthorizationStatus.SETTLED_LATE else 0
        for code, amount in ((TransferCode.SPEND, within), (TransferCode.OVERAGE, excess - within)):
            if amount:
                transfer_create(
                    debit_account_id=pool.account_id, credit_account_id=pool.spend_account_id,
                    amount=amount, currency=currency, code=code,
                    metadata={"authorization": str(authorization.id), "review": code == "overage"},
                    actor="gateway",
                )  # fmt: skip
        overage = excess - within
    else:
        overage = 0
    _session_settle(authorization=authorization, cost=cost, usage=usage)
    authorization.status = status
    authorization.charged = cost
    authorization.released = released
    authorization.overage = overage
    authorization.cost_at_requested_model = counterfactual
    authorization.usage = _usage_record(authorization=authorization, usage=usage)
    authorization.settled_at = timezone.now()
    authorization.save()
    return authorization


@transaction.atomic
def authorization_void(*, organization: Organization, authorization_id: str) -> Authorization:
    """Release the hold without spending; voiding again returns the same answer.

    Raises NotFoundError, InvalidStateError.
    """
    authorization = _locked(organization=organization, authorization_id=authorization_id)
    if authorization.status == AuthorizationStatus.VOIDED:
        return authorization
    if authorization.status != AuthorizationStatus.HELD:
        raise InvalidStateError(f"A {authorization.status} authorization cannot be voided.")
    assert authorization.hold_id is not None
    # An expired hold was already released by the sweep: the void's effect, already done.
    with contextlib.suppress(HoldExpiredError):
        hold_void(hold_id=authorization.hold_id, actor="gateway")
    _session_settle(authorization=authorization, cost=0, usage=Usage())
    authorization.status = AuthorizationStatus.VOIDED
    authorization.released = authorization.reserved
    authorization.settled_at = timezone.now()
    authorization.save()
    return authorization


def _locked(*, organization: Organization, authorization_id: str) -> Authorization:
    """The authorization under its row lock. Raises NotFoundError (also for another's)."""
    return _authorization_find(
        Authorization.objects.select_for_update(of=("self",)).select_related(
            "pool__organization", "organization"
        ),
        organization=organization,
        authorization_id=authorization_id,
    )


def _costs(*, authorization: Authorization, usage: Usage) -> tuple[int, int]:
    """The cost at the model used, and the same usage at the model first requested (equal
    without a downgrade: savings are measured, never estimated)."""
    if usage.amount is not None:
        if usage.amount < 0:
            raise InvalidInputError("An amount cannot be negative.")
        return usage.amount, usage.amount
    on = authorization.created_at.date()
    counts = {
        "input_tokens": usage.input_tokens, "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_tokens": usage.cache_write_tokens, "output_tokens": usage.output_tokens,
    }  # fmt: skip
    used_model = usage.model or authorization.model
    cost = usage_cost(price=price_for(model=used_model, on=on), **counts)
    if used_model == authorization.requested_model:
        return cost, cost
    return cost, usage_cost(price=price_for(model=authorization.requested_model, on=on), **counts)


def _session_settle(*, authorization: Authorization, cost: int, usage: Usage) -> None:
    """Replace the session's reserved estimate with what was really used."""
    if not authorization.session_id:
        return
    session = (
        SessionUsage.objects.select_for_update()
        .filter(pool=authorization.pool, session_id=authorization.session_id)
        .first()
    )
    if session is None:
        return
    session.amount += cost - authorization.reserved
    session.tokens += (usage.input_tokens + usage.output_tokens) - (
        authorization.input_tokens + authorization.max_output_tokens
    )
    session.save(update_fields=["amount", "tokens"])


@dataclass(frozen=True)
class UsageRecord:
    transfer: Transfer | None
    charged: int
    overage: int


def usage_record(
    *,
    organization: Organization,
    idempotency_key: str,
    subject: str,
    usage: Usage,
    occurred_at: datetime,
    tags: dict[str, str],
) -> UsageRecord:
    """Record usage that had no authorization (imports, reconciliation). Always recorded: as
    spend while the pool can pay, else as overage, flagged for review. A retry with the same
    key returns the same record.

    Raises NotFoundError, UnknownModelError, InvalidInputError, IdempotencyConflictError.
    """
    request = {
        "subject": subject, "usage": usage.as_dict(), "occurred_at": occurred_at.isoformat(),
        "tags": tags,
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    keys = {code: f"usage:{idempotency_key}:{code}" for code in ("spend", "overage")}
    namespace = f"{LEDGER_NAMESPACE}:{organization.pk}"
    existing = Transfer.objects.filter(
        idempotency_namespace=namespace, idempotency_key__in=keys.values()
    ).first()
    if existing is not None:
        if existing.metadata.get("request_digest") != digest:
            raise IdempotencyConflictError(idempotency_key=idempotency_key)
        return _usage_result(existing)
    spender = spender_resolve(organization=organization, subject=subject)
    pool = spender.pool
    if usage.amount is not None:
        cost = usage.amount
    else:
        if not usage.model:
            raise InvalidInputError("Usage names its model, or sends an amount.")
        cost = usage_cost(
            price=price_for(model=usage.model, on=occurred_at.date()),
            input_tokens=usage.input_tokens, cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens,
        )  # fmt: skip
    if cost == 0:
        return UsageRecord(transfer=None, charged=0, overage=0)
    metadata = {**request, "request_digest": digest, "review": False}
    for code in (TransferCode.SPEND, TransferCode.OVERAGE):
        try:
            transfer = transfer_create(
                debit_account_id=pool.account_id, credit_account_id=pool.spend_account_id,
                amount=cost, currency=organization.currency, code=code,
                idempotency_key=keys[code.value], idempotency_namespace=namespace,
                metadata={**metadata, "review": code == TransferCode.OVERAGE}, actor="gateway",
            )  # fmt: skip
        except InsufficientFundsError:
            continue  # the pool cannot pay: the same usage goes on the books as overage
        return _usage_result(transfer)
    raise AssertionError("an overage is never refused for funds")  # pragma: no cover


def _usage_result(transfer: Transfer) -> UsageRecord:
    overage = transfer.amount if transfer.code == TransferCode.OVERAGE else 0
    return UsageRecord(transfer=transfer, charged=transfer.amount, overage=overage)


@dataclass(frozen=True)
class Meter:
    spender: Spender
    budget: int
    spent: int
    reserved: int
    available: int
    soft_limit_share: Decimal | None
    soft_limit_reached: bool


def meter_get(*, organization: Organization, subject: str) -> Meter:
    """The subject's pool as a meter: budget, spent, reserved, available, soft limit.

    Raises NotFoundError.
    """
    spender = spender_resolve(organization=organization, subject=subject)
    policy = policy_effective(pool=spender.pool, credential_kind=spender.credential_kind)
    balance = pool_balance(pool=spender.pool)
    share = policy.soft_limit_share
    reached = bool(
        share is not None
        and balance.budget > 0
        and balance.spent + balance.reserved >= share * balance.budget
    )
    return Meter(
        spender=spender, budget=balance.budget, spent=balance.spent, reserved=balance.reserved,
        available=balance.available, soft_limit_share=share, soft_limit_reached=reached,
    )  # fmt: skip
