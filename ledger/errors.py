"""Typed domain errors. Every layer's errors derive from DomainError.

Each carries a stable machine-readable ``code`` (API clients switch on it) and a human
``message``. Services raise these, never HTTP exceptions; the API maps them to statuses.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every domain error: a stable ``code`` and a human ``message``."""

    code: ClassVar[str] = "error"
    default_message: ClassVar[str] = "The operation was refused."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


class LedgerError(DomainError):
    """Base of the ledger's errors."""

    code = "ledger_error"


class InvalidAmountError(LedgerError):
    code = "invalid_amount"
    default_message = "The amount must be a positive number of micro-units."


class SameAccountError(LedgerError):
    code = "same_account"
    default_message = "A transfer needs two different accounts."


class AccountNotFoundError(LedgerError):
    code = "account_not_found"
    default_message = "No such account."


class AccountClosedError(LedgerError):
    code = "account_closed"
    default_message = "The account is closed to new transfers."


class CurrencyMismatchError(LedgerError):
    code = "currency_mismatch"
    default_message = "The transfer's currency does not match both accounts."


class InsufficientFundsError(LedgerError):
    code = "insufficient_funds"
    default_message = "The account does not have enough available funds."


class IdempotencyConflictError(LedgerError):
    code = "idempotency_conflict"
    default_message = "This idempotency key was already used for a different request."


class TransferNotFoundError(LedgerError):
    code = "transfer_not_found"
    default_message = "No such transfer."


class NotAHoldError(LedgerError):
    code = "not_a_hold"
    default_message = "The transfer is not a hold."


class HoldAlreadyResolvedError(LedgerError):
    code = "hold_already_resolved"
    default_message = "The hold was already posted, voided or expired."


class HoldExpiredError(LedgerError):
    code = "hold_expired"
    default_message = "The hold has expired and can no longer be posted."


class HoldAmountExceededError(LedgerError):
    code = "post_exceeds_hold"
    default_message = "A hold can be posted for at most the amount it holds."


class NotReversibleError(LedgerError):
    code = "not_reversible"
    default_message = "Only a posted transfer with a positive amount can be reversed."


class AlreadyReversedError(LedgerError):
    code = "already_reversed"
    default_message = "The transfer was already reversed."


#: Errors a keyed request may be refused with and that a retry must see again.
REMEMBERED_REFUSALS: dict[str, type[LedgerError]] = {
    error.code: error
    for error in (
        InsufficientFundsError,
        AccountClosedError,
        AccountNotFoundError,
        CurrencyMismatchError,
        NotReversibleError,
        AlreadyReversedError,
        TransferNotFoundError,
    )
}
