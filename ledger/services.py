"""Writes to the ledger. Every function here is one short transaction.

Amounts are integer micro-units. The hot-path services (hold_create, hold_post, hold_void,
transfer_create) speak SQL through Django's connection rather than the ORM: each account is
changed by one conditional UPDATE that both locks the row and checks the funds, so a
reservation is a handful of round trips and no check-then-act window (ARCHITECTURE.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone
from moneyed import get_currency

from ledger.errors import (
    REMEMBERED_REFUSALS,
    AccountClosedError,
    AccountNotFoundError,
    AlreadyReversedError,
    CurrencyMismatchError,
    HoldAlreadyResolvedError,
    HoldAmountExceededError,
    HoldExpiredError,
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidAmountError,
    LedgerError,
    NotAHoldError,
    NotReversibleError,
    SameAccountError,
    TransferNotFoundError,
)
from ledger.locks import row_lock_clause, skip_locked_clause
from ledger.models import (
    Account,
    AccountKind,
    OpenHold,
    Refusal,
    Transfer,
    TransferCode,
    TransferPhase,
)

#: Codes that may still debit a closed account: draining it at period close, and recording
#: usage that already happened (an overage is never dropped).
CLOSED_ACCOUNT_DEBIT_CODES = frozenset(
    {TransferCode.SWEEP, TransferCode.ROLLOVER, TransferCode.LAPSE, TransferCode.OVERAGE}
)
MAX_HOLD_TIMEOUT = timedelta(days=31)
_ACCOUNT = Account._meta.db_table
_TRANSFER = Transfer._meta.db_table
_OPEN_HOLD = OpenHold._meta.db_table
_REFUSAL = Refusal._meta.db_table


# --- accounts -------------------------------------------------------------------------------


def account_create(
    *, name: str, currency: str, kind: AccountKind | str, is_limited: bool
) -> Account:
    """Open an account. Raises CurrencyMismatchError for an unknown currency code."""
    _ensure_currency(currency)
    return Account.objects.create(
        name=name, currency=currency, kind=AccountKind(kind), is_limited=is_limited
    )


@transaction.atomic
def account_close(*, account_id: int) -> Account:
    """Close an account to new transfers and holds. Raises AccountNotFoundError."""
    account = Account.objects.select_for_update(no_key=True).filter(pk=account_id).first()
    if account is None:
        raise AccountNotFoundError(account_id=account_id)
    if not account.is_closed:
        account.is_closed = True
        account.save(update_fields=["is_closed"])
    return account


# --- posted transfers -----------------------------------------------------------------------


def transfer_create(
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    currency: str,
    code: TransferCode | str,
    idempotency_key: str | None = None,
    idempotency_namespace: str = "",
    metadata: Mapping[str, Any] | None = None,
    actor: str = "",
) -> Transfer:
    """Post a single-phase transfer. Only code ``overage`` may overdraw a limited account.

    Raises InvalidAmountError, SameAccountError, AccountNotFoundError, AccountClosedError,
    CurrencyMismatchError, InsufficientFundsError, IdempotencyConflictError.
    """
    code = TransferCode(code)
    request = _transfer_request(
        operation="transfer_create", debit_account_id=debit_account_id,
        credit_account_id=credit_account_id, amount=amount, currency=currency, code=code,
        idempotency_key=idempotency_key, idempotency_namespace=idempotency_namespace,
        metadata=metadata,
    )  # fmt: skip
    meta = request.fields["metadata"]
    is_overage = code == TransferCode.OVERAGE

    def execute() -> Transfer:
        _move(
            _Move(
                debit_account_id, debits_posted=amount, overage_posted=amount if is_overage else 0
            ),
            debit_check=_Check(
                currency=currency,
                requires_open=code not in CLOSED_ACCOUNT_DEBIT_CODES,
                requires_available=None if is_overage else amount,
            ),
            credit=_Move(credit_account_id, credits_posted=amount),
            credit_check=_Check(currency=currency, requires_open=True),
        )
        return _transfer_insert(
            request=request,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount,
            currency=currency,
            code=code,
            phase=TransferPhase.POSTED,
            metadata=meta,
            actor=actor,
        )

    return _run_keyed(request=request, execute=execute)


def transfer_reverse(
    *,
    transfer_id: int,
    idempotency_key: str | None = None,
    idempotency_namespace: str = "",
    metadata: Mapping[str, Any] | None = None,
    actor: str = "",
) -> Transfer:
    """Undo a posted transfer with a new, opposite one (code ``reversal``).

    Raises TransferNotFoundError, NotReversibleError, AlreadyReversedError,
    AccountClosedError, InsufficientFundsError, IdempotencyConflictError.
    """
    original = Transfer.objects.filter(pk=transfer_id).first()
    if original is None:
        raise TransferNotFoundError(transfer_id=transfer_id)
    if original.phase not in (TransferPhase.POSTED, TransferPhase.POST) or original.amount == 0:
        raise NotReversibleError(transfer_id=transfer_id, phase=original.phase)
    meta = dict(metadata or {})
    # The reversal debits what the original credited.
    debit_id, credit_id = original.credit_account_id, original.debit_account_id
    request = _Request(
        operation="transfer_reverse",
        namespace=idempotency_namespace,
        key=idempotency_key,
        accounts=(debit_id, credit_id),
        fields={"transfer": transfer_id, "metadata": meta},
    )

    def execute() -> Transfer:
        if Transfer.objects.filter(reverses_id=transfer_id).exists():
            raise AlreadyReversedError(transfer_id=transfer_id)
        _move(
            _Move(debit_id, debits_posted=original.amount),
            debit_check=_Check(
                currency=original.currency, requires_open=True, requires_available=original.amount
            ),
            credit=_Move(credit_id, credits_posted=original.amount),
            credit_check=_Check(currency=original.currency, requires_open=True),
        )
        return _transfer_insert(
            request=request,
            debit_account_id=debit_id,
            credit_account_id=credit_id,
            amount=original.amount,
            currency=original.currency,
            code=TransferCode.REVERSAL,
            phase=TransferPhase.POSTED,
            reverses_id=transfer_id,
            metadata=meta,
            actor=actor,
        )

    try:
        return _run_keyed(request=request, execute=execute)
    except IntegrityError:
        # Two reversals raced; the unique index let one through.
        if Transfer.objects.filter(reverses_id=transfer_id).exists():
            raise AlreadyReversedError(transfer_id=transfer_id) from None
        raise


# --- holds ----------------------------------------------------------------------------------


def hold_create(
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    currency: str,
    timeout: timedelta,
    code: TransferCode | str = TransferCode.SPEND,
    idempotency_key: str | None = None,
    idempotency_namespace: str = "",
    metadata: Mapping[str, Any] | None = None,
    actor: str = "",
) -> Transfer:
    """Reserve ``amount`` until ``now + timeout`` (a pending transfer).

    Raises InvalidAmountError, SameAccountError, AccountNotFoundError, AccountClosedError,
    CurrencyMismatchError, InsufficientFundsError, IdempotencyConflictError.
    """
    request = _hold_request(
        debit_account_id=debit_account_id, credit_account_id=credit_account_id, amount=amount,
        currency=currency, timeout=timeout, code=code, idempotency_key=idempotency_key,
        idempotency_namespace=idempotency_namespace, metadata=metadata,
    )  # fmt: skip
    code, meta = TransferCode(request.fields["code"]), request.fields["metadata"]

    if fast_path_available():
        fast = _fast_hold_create(request=request, timeout=timeout, actor=actor)
        if fast is not None:
            return fast

    def execute() -> Transfer:
        _move(
            _Move(debit_account_id, debits_pending=amount),
            debit_check=_Check(currency=currency, requires_open=True, requires_available=amount),
            credit=_Move(credit_account_id, credits_pending=amount),
            credit_check=_Check(currency=currency, requires_open=True),
        )
        hold = _transfer_insert(
            request=request,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount,
            currency=currency,
            code=code,
            phase=TransferPhase.PENDING,
            timeout=timeout,
            metadata=meta,
            actor=actor,
        )
        assert hold.expires_at is not None
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_OPEN_HOLD} (hold_id, debit_account_id, credit_account_id, "
                "amount, expires_at, currency, code) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    hold.pk,
                    debit_account_id,
                    credit_account_id,
                    amount,
                    _db_datetime(hold.expires_at),
                    currency,
                    code.value,
                ],
            )
        return hold

    return _run_keyed(request=request, execute=execute)


def _hold_request(
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    currency: str,
    timeout: timedelta,
    code: TransferCode | str,
    idempotency_key: str | None,
    idempotency_namespace: str,
    metadata: Mapping[str, Any] | None,
) -> _Request:
    """A hold's request, validated (hold_create's argument checks)."""
    code = TransferCode(code)
    request = _transfer_request(
        operation="hold_create", debit_account_id=debit_account_id,
        credit_account_id=credit_account_id, amount=amount, currency=currency, code=code,
        idempotency_key=idempotency_key, idempotency_namespace=idempotency_namespace,
        metadata=metadata,
        # The timeout, not the absolute expiry, so that a retry is the same request.
        timeout_us=timeout // timedelta(microseconds=1),
    )  # fmt: skip
    if not timedelta(0) < timeout <= MAX_HOLD_TIMEOUT:
        raise InvalidAmountError(f"A hold's timeout must be within (0, {MAX_HOLD_TIMEOUT}].")
    if code == TransferCode.OVERAGE:
        raise InvalidAmountError("An overage is recorded as a posted transfer, never held.")
    return request


def _transfer_request(
    *,
    operation: str,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    currency: str,
    code: TransferCode,
    idempotency_key: str | None,
    idempotency_namespace: str,
    metadata: Mapping[str, Any] | None,
    **extra: Any,
) -> _Request:
    """A transfer's or a hold's request, its amount and accounts checked."""
    _ensure_positive(amount)
    _ensure_distinct(debit_account_id, credit_account_id)
    return _Request(
        operation=operation,
        namespace=idempotency_namespace,
        key=idempotency_key,
        accounts=(debit_account_id, credit_account_id),
        fields={
            "debit": debit_account_id, "credit": credit_account_id, "amount": amount,
            "currency": currency, "code": code.value, **extra, "metadata": dict(metadata or {}),
        },
    )  # fmt: skip


def hold_post(
    *, hold_id: int, amount: int, metadata: Mapping[str, Any] | None = None, actor: str = ""
) -> Transfer:
    """Spend ``amount`` (≤ held) of a hold and release the rest; returns the resolution.

    Posting again with the same amount returns the same resolution.
    Raises InvalidAmountError, TransferNotFoundError, NotAHoldError, HoldExpiredError,
    HoldAmountExceededError, HoldAlreadyResolvedError.
    """
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise InvalidAmountError("A post's amount must be a non-negative number of micro-units.")
    return _hold_resolve(
        hold_id=hold_id,
        phase=TransferPhase.POST,
        amount=amount,
        metadata=dict(metadata or {}),
        actor=actor,
    )


def hold_void(
    *, hold_id: int, metadata: Mapping[str, Any] | None = None, actor: str = ""
) -> Transfer:
    """Release a hold without spending; voiding again returns the same resolution.

    Raises TransferNotFoundError, NotAHoldError, HoldAlreadyResolvedError.
    """
    return _hold_resolve(
        hold_id=hold_id,
        phase=TransferPhase.VOID,
        amount=None,
        metadata=dict(metadata or {}),
        actor=actor,
    )


def holds_expire(*, now: datetime, batch_size: int = 500, actor: str = "system:hold-expiry") -> int:
    """Expire every open hold due at ``now``, in batches; returns how many it expired.

    Safe to run repeatedly and on several workers at once: each batch claims its holds with
    FOR UPDATE SKIP LOCKED, so a hold being posted or expired elsewhere is left to that
    transaction.
    """
    expired = 0
    while True:
        with transaction.atomic():
            count = _holds_expire_batch(now=now, batch_size=batch_size, actor=actor)
        expired += count
        if count < batch_size:
            return expired


def _holds_expire_batch(*, now: datetime, batch_size: int, actor: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT hold_id, debit_account_id, credit_account_id, amount, currency, code "
            f"FROM {_OPEN_HOLD} WHERE expires_at <= %s ORDER BY expires_at, hold_id LIMIT %s"
            + skip_locked_clause(),
            [_db_datetime(now), batch_size],
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        moves: dict[int, _Move] = {}
        for _hold_id, debit_id, credit_id, amount, _currency, _code in rows:
            moves.setdefault(debit_id, _Move(debit_id)).debits_pending -= amount
            moves.setdefault(credit_id, _Move(credit_id)).credits_pending -= amount
        for account_id in sorted(moves):
            _account_update(cursor, moves[account_id], None)
        hold_ids = [row[0] for row in rows]
        cursor.execute(
            f"DELETE FROM {_OPEN_HOLD} WHERE hold_id IN ({', '.join(['%s'] * len(hold_ids))})",
            hold_ids,
        )
    created_at = timezone.now()
    Transfer.objects.bulk_create(
        [
            Transfer(
                debit_account_id=debit_id,
                credit_account_id=credit_id,
                amount=amount,
                currency=currency,
                code=code,
                phase=TransferPhase.EXPIRE,
                pending_id=hold_id,
                metadata={},
                actor=actor,
                created_at=created_at,
            )
            for hold_id, debit_id, credit_id, amount, currency, code in rows
        ]
    )
    return len(rows)


def _hold_resolve(
    *,
    hold_id: int,
    phase: TransferPhase,
    amount: int | None,
    metadata: dict[str, Any],
    actor: str,
) -> Transfer:
    if fast_path_available():
        fast = _fast_hold_resolve(
            hold_id=hold_id, phase=phase, amount=amount, metadata=metadata, actor=actor
        )
        if fast is not None:
            return fast
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Deleting the open-hold row claims the hold and locks it (locks.py, step 1).
                cursor.execute(
                    f"DELETE FROM {_OPEN_HOLD} WHERE hold_id = %s RETURNING debit_account_id, "
                    "credit_account_id, amount, expires_at, currency, code",
                    [hold_id],
                )
                row = cursor.fetchone()
                if row is None:
                    return _hold_resolution_replay(hold_id=hold_id, phase=phase, amount=amount)
                debit_id, credit_id, held, expires_at, currency, code = row
                if phase == TransferPhase.POST:
                    assert amount is not None
                    if _aware(expires_at) <= timezone.now():
                        raise HoldExpiredError(hold_id=hold_id)
                    if amount > held:
                        raise HoldAmountExceededError(hold_id=hold_id, held=held, amount=amount)
                    posted = amount
                else:
                    posted, amount = 0, held
                _move(
                    _Move(debit_id, debits_pending=-held, debits_posted=posted),
                    debit_check=None,
                    credit=_Move(credit_id, credits_pending=-held, credits_posted=posted),
                    credit_check=None,
                )
            return _transfer_insert(
                request=None,
                debit_account_id=debit_id,
                credit_account_id=credit_id,
                amount=amount,
                currency=currency,
                code=TransferCode(code),
                phase=phase,
                pending_id=hold_id,
                metadata=metadata,
                actor=actor,
            )
    except IntegrityError:
        # Only reachable if the open-hold index and the resolutions disagree; the unique
        # index on Transfer.pending still refused the second resolution.
        return _hold_resolution_replay(hold_id=hold_id, phase=phase, amount=amount)


def _hold_resolution_replay(*, hold_id: int, phase: TransferPhase, amount: int | None) -> Transfer:
    """The hold is not open: return its resolution if it is this very request, else refuse."""
    hold = Transfer.objects.filter(pk=hold_id).first()
    if hold is None:
        raise TransferNotFoundError(transfer_id=hold_id)
    if hold.phase != TransferPhase.PENDING:
        raise NotAHoldError(transfer_id=hold_id, phase=hold.phase)
    resolution = Transfer.objects.filter(pending_id=hold_id).first()
    if resolution is None:
        raise HoldAlreadyResolvedError(
            "The hold is being resolved by another request; retry.", hold_id=hold_id
        )
    same_request = resolution.phase == phase and (
        phase == TransferPhase.VOID or resolution.amount == amount
    )
    if same_request:
        return resolution
    if resolution.phase == TransferPhase.EXPIRE:
        raise HoldExpiredError("The hold expired and was released.", hold_id=hold_id)
    raise HoldAlreadyResolvedError(
        f"The hold was already resolved ({resolution.phase}).",
        hold_id=hold_id,
        resolution_id=resolution.pk,
        resolution_phase=resolution.phase,
    )


# --- the fast path (PostgreSQL) -------------------------------------------------------------
#
# ledger_fast_hold_create and ledger_fast_hold_resolve (migration 0003) do in one round trip
# what the Python path below does in five or six, and only on a clean success; on anything
# else they raise SQLSTATE LB001 and change nothing, and the Python path runs. They are used
# when the ledger owns its transaction (autocommit), never inside a caller's transaction,
# whose failure they would abort.

_FAST_PATH_MISSES = frozenset({"LB001", "23505"})  # not a clean success; a duplicate key


def fast_path_available() -> bool:
    """True when a fast-path statement may run: PostgreSQL, and no caller's transaction open."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def fast_call(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """Run one fast-path statement; None when it declined (SQLSTATE LB001 or a duplicate key:
    the statement changed nothing and the caller's ordinary path takes over)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) in _FAST_PATH_MISSES:
            return None
        raise


@dataclass(frozen=True)
class HoldStatement:
    """The twelve arguments of ledger_fast_hold_create for one validated hold, for a caller
    that runs the hold inside its own one-statement function (budgets' gateway fast path).
    Such a function runs under the same rules: only through fast_call, only when
    fast_path_available(), and with hold_create as the fallback when it declines."""

    args: list[Any]
    expires_at: datetime


def hold_create_statement(
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    currency: str,
    timeout: timedelta,
    now: datetime,
    code: TransferCode | str = TransferCode.SPEND,
    idempotency_key: str | None = None,
    idempotency_namespace: str = "",
    metadata: Mapping[str, Any] | None = None,
    actor: str = "",
) -> HoldStatement:
    """Validate a hold as hold_create does and give its fast-path arguments.

    Raises what hold_create raises for its arguments (InvalidAmountError, SameAccountError).
    """
    request = _hold_request(
        debit_account_id=debit_account_id, credit_account_id=credit_account_id, amount=amount,
        currency=currency, timeout=timeout, code=code, idempotency_key=idempotency_key,
        idempotency_namespace=idempotency_namespace, metadata=metadata,
    )  # fmt: skip
    return _hold_statement(request=request, timeout=timeout, actor=actor, now=now)


def _hold_statement(
    *, request: _Request, timeout: timedelta, actor: str, now: datetime
) -> HoldStatement:
    fields = request.fields
    return HoldStatement(
        args=[
            fields["debit"], fields["credit"], fields["amount"], fields["currency"],
            fields["code"], now + timeout, request.namespace, request.key, request.digest,
            _METADATA_FIELD.get_db_prep_value(fields["metadata"], connection), actor, now,
        ],
        expires_at=now + timeout,
    )  # fmt: skip


def _fast_hold_create(*, request: _Request, timeout: timedelta, actor: str) -> Transfer | None:
    fields = request.fields
    now = timezone.now()
    statement = _hold_statement(request=request, timeout=timeout, actor=actor, now=now)
    row = fast_call(
        "SELECT ledger_fast_hold_create(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        statement.args,
    )
    if row is None:
        return None
    return _transfer_instance(
        pk=row[0],
        debit_account_id=fields["debit"],
        credit_account_id=fields["credit"],
        amount=fields["amount"],
        currency=fields["currency"],
        code=fields["code"],
        phase=TransferPhase.PENDING,
        expires_at=now + timeout,
        idempotency_namespace=request.namespace,
        idempotency_key=request.key,
        request_digest=request.digest,
        metadata=fields["metadata"],
        actor=actor,
        created_at=now,
    )


def _fast_hold_resolve(
    *, hold_id: int, phase: TransferPhase, amount: int | None, metadata: dict[str, Any], actor: str
) -> Transfer | None:
    now = timezone.now()
    row = fast_call(
        "SELECT * FROM ledger_fast_hold_resolve(%s, %s, %s, %s, %s, %s)",
        [
            hold_id, phase.value, amount or 0,
            _METADATA_FIELD.get_db_prep_value(metadata, connection), actor, now,
        ],
    )  # fmt: skip
    if row is None:
        return None
    resolution_id, debit_id, credit_id, resolved_amount, currency, code = row
    return _transfer_instance(
        pk=resolution_id,
        debit_account_id=debit_id,
        credit_account_id=credit_id,
        amount=resolved_amount,
        currency=currency,
        code=code,
        phase=phase,
        pending_id=hold_id,
        metadata=metadata,
        actor=actor,
        created_at=now,
    )


def _transfer_instance(*, pk: int, **fields: Any) -> Transfer:
    """A Transfer for a row just written, without reading it back."""
    transfer = Transfer(pk=pk, **fields)
    transfer._state.adding = False
    transfer._state.db = connection.alias
    return transfer


# --- idempotency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """A client request as far as idempotency is concerned."""

    operation: str
    namespace: str
    key: str | None
    accounts: tuple[int, int]
    fields: Mapping[str, Any]

    @property
    def digest(self) -> str:
        if self.key is None:
            return ""
        canonical = json.dumps(
            {"operation": self.operation, **self.fields},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class _KeyTaken(Exception):
    """The key already holds an outcome; roll back and replay it (never seen by callers)."""


def _run_keyed(*, request: _Request, execute: Callable[[], Transfer]) -> Transfer:
    """Run ``execute`` once per key: replay an earlier outcome, remember a refusal."""
    if request.key is None:
        with transaction.atomic():
            return execute()
    if not 1 <= len(request.key) <= 200:
        raise InvalidAmountError("An idempotency key must be 1 to 200 characters.")
    try:
        with transaction.atomic():
            return execute()
    except (IntegrityError, _KeyTaken):
        outcome = _keyed_outcome(request)
        if outcome is None:
            raise
        return outcome
    except LedgerError as refusal:
        if refusal.code not in REMEMBERED_REFUSALS:
            raise
    return _run_keyed_refused(request=request, execute=execute)


def _run_keyed_refused(*, request: _Request, execute: Callable[[], Transfer]) -> Transfer:
    """Re-run a refused keyed request under its accounts' locks and remember the refusal.

    Under the locks no same-key request can be between its funds check and its insert, so
    the answer recorded here is the only one the key ever gives.
    """
    refusal: LedgerError | None = None
    try:
        with transaction.atomic():
            _accounts_lock(request.accounts)
            outcome = _keyed_outcome(request)
            if outcome is not None:
                return outcome
            try:
                with transaction.atomic():
                    return execute()
            except LedgerError as error:
                if error.code not in REMEMBERED_REFUSALS:
                    raise
                refusal = error
                assert request.key is not None
                Refusal.objects.create(
                    idempotency_namespace=request.namespace,
                    idempotency_key=request.key,
                    request_digest=request.digest,
                    code=error.code,
                    message=error.message,
                    details=json.loads(json.dumps(error.details, default=str)),
                )
    except (IntegrityError, _KeyTaken):
        outcome = _keyed_outcome(request)
        if outcome is None:
            raise
        return outcome
    raise refusal


def _keyed_outcome(request: _Request) -> Transfer | None:
    """The earlier outcome under this key: its transfer, or its refusal raised again."""
    transfer = Transfer.objects.filter(
        idempotency_namespace=request.namespace, idempotency_key=request.key
    ).first()
    if transfer is not None:
        if transfer.request_digest != request.digest:
            raise IdempotencyConflictError(idempotency_key=request.key)
        return transfer
    refusal = Refusal.objects.filter(
        idempotency_namespace=request.namespace, idempotency_key=request.key
    ).first()
    if refusal is not None:
        if refusal.request_digest != request.digest:
            raise IdempotencyConflictError(idempotency_key=request.key)
        raise REMEMBERED_REFUSALS[refusal.code](refusal.message, **refusal.details)
    return None


def _accounts_lock(account_ids: Iterable[int]) -> None:
    """Lock accounts in ascending id order (locks.py)."""
    ids = sorted(set(account_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {_ACCOUNT} WHERE id IN ({', '.join(['%s'] * len(ids))}) "
            "ORDER BY id" + row_lock_clause(),
            ids,
        )


# --- account counters -----------------------------------------------------------------------


@dataclass
class _Move:
    """Deltas to one account's counters."""

    account_id: int
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0
    overage_posted: int = 0


@dataclass(frozen=True)
class _Check:
    """Conditions the account row must meet for the move to apply."""

    currency: str
    requires_open: bool
    requires_available: int | None = None


def _move(
    debit: _Move, *, debit_check: _Check | None, credit: _Move, credit_check: _Check | None
) -> None:
    """Apply both moves in ascending account id order (locks.py), or raise and change nothing."""
    steps = sorted([(debit, debit_check), (credit, credit_check)], key=lambda s: s[0].account_id)
    with connection.cursor() as cursor:
        for move, check in steps:
            if not _account_update(cursor, move, check):
                _refuse(move.account_id, check)


def _account_update(cursor: CursorWrapper, move: _Move, check: _Check | None) -> bool:
    sql = (
        f"UPDATE {_ACCOUNT} SET debits_posted = debits_posted + %s, "
        "credits_posted = credits_posted + %s, debits_pending = debits_pending + %s, "
        "credits_pending = credits_pending + %s, overage_posted = overage_posted + %s "
        "WHERE id = %s"
    )
    params: list[Any] = [
        move.debits_posted,
        move.credits_posted,
        move.debits_pending,
        move.credits_pending,
        move.overage_posted,
        move.account_id,
    ]
    if check is not None:
        sql += " AND currency = %s"
        params.append(check.currency)
        if check.requires_open:
            sql += " AND NOT is_closed"
        if check.requires_available is not None:
            sql += " AND (NOT is_limited OR credits_posted - debits_posted - debits_pending >= %s)"
            params.append(check.requires_available)
    cursor.execute(sql, params)
    return bool(cursor.rowcount == 1)


def _refuse(account_id: int, check: _Check | None) -> None:
    """Say why an account refused a move (the slow path; the transaction rolls back)."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise AccountNotFoundError(account_id=account_id)
    if check is not None and account.currency != check.currency:
        raise CurrencyMismatchError(
            f"The account is in {account.currency}, the transfer in {check.currency}.",
            account_id=account_id,
        )
    if check is not None and check.requires_open and account.is_closed:
        raise AccountClosedError(account_id=account_id)
    raise InsufficientFundsError(
        account_id=account_id,
        available=account.available,
        requested=check.requires_available if check else None,
    )


# --- transfer rows --------------------------------------------------------------------------

_TRANSFER_COLUMNS = (
    "debit_account_id, credit_account_id, amount, currency, code, phase, pending_id, reverses_id, "
    "expires_at, idempotency_namespace, idempotency_key, request_digest, metadata, actor, "
    "created_at"
)


def _transfer_insert(
    *,
    request: _Request | None,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    currency: str,
    code: TransferCode,
    phase: TransferPhase,
    metadata: dict[str, Any],
    actor: str,
    timeout: timedelta | None = None,
    pending_id: int | None = None,
    reverses_id: int | None = None,
) -> Transfer:
    """Insert one transfer row; raise _KeyTaken if a refusal already holds its key."""
    created_at = timezone.now()
    transfer = Transfer(
        debit_account_id=debit_account_id,
        credit_account_id=credit_account_id,
        amount=amount,
        currency=currency,
        code=code,
        phase=phase,
        pending_id=pending_id,
        reverses_id=reverses_id,
        expires_at=created_at + timeout if timeout is not None else None,
        idempotency_namespace=request.namespace if request else "",
        idempotency_key=request.key if request else None,
        request_digest=request.digest if request else "",
        metadata=metadata,
        actor=actor,
        created_at=created_at,
    )
    values = [
        debit_account_id,
        credit_account_id,
        amount,
        currency,
        code.value,
        phase.value,
        pending_id,
        reverses_id,
        _db_datetime(transfer.expires_at) if transfer.expires_at else None,
        transfer.idempotency_namespace,
        transfer.idempotency_key,
        transfer.request_digest,
        _METADATA_FIELD.get_db_prep_value(metadata, connection),
        actor,
        _db_datetime(created_at),
    ]
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        if transfer.idempotency_key is None:
            cursor.execute(
                f"INSERT INTO {_TRANSFER} ({_TRANSFER_COLUMNS}) VALUES ({placeholders}) "
                "RETURNING id",
                values,
            )
        else:
            # A refusal committed while this request waited for the account lock owns the
            # key: insert nothing, and replay that refusal.
            cursor.execute(
                f"INSERT INTO {_TRANSFER} ({_TRANSFER_COLUMNS}) SELECT {placeholders} "
                f"WHERE NOT EXISTS (SELECT 1 FROM {_REFUSAL} WHERE idempotency_namespace = %s "
                "AND idempotency_key = %s) RETURNING id",
                [*values, transfer.idempotency_namespace, transfer.idempotency_key],
            )
        row = cursor.fetchone()
    if row is None:
        raise _KeyTaken
    transfer.pk = row[0]
    transfer._state.adding = False
    transfer._state.db = connection.alias
    return transfer


_METADATA_FIELD = Transfer._meta.get_field("metadata")


# --- small helpers --------------------------------------------------------------------------


def _ensure_positive(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmountError(amount=repr(amount))


def _ensure_distinct(debit_account_id: int, credit_account_id: int) -> None:
    if debit_account_id == credit_account_id:
        raise SameAccountError(account_id=debit_account_id)


def _ensure_currency(currency: str) -> None:
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise CurrencyMismatchError(f"{currency!r} is not an ISO 4217 currency code.")
    try:
        get_currency(currency)
    except Exception as error:  # moneyed raises CurrencyDoesNotExist, not exported typed
        raise CurrencyMismatchError(f"{currency!r} is not an ISO 4217 currency code.") from error


def _db_datetime(value: datetime) -> Any:
    """A datetime as the database driver wants it (SQLite stores naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def _aware(value: datetime | str) -> datetime:
    """A datetime read by raw SQL: PostgreSQL returns it aware, SQLite as naive UTC text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
