"""Factories that build valid ledger states through the services, never around them."""

from __future__ import annotations

from typing import Any

from factory.base import Factory
from factory.declarations import Sequence

from ledger.models import Account, AccountKind, Transfer, TransferCode
from ledger.services import account_create, transfer_create


class AccountFactory(Factory[Account]):
    class Meta:
        model = Account

    name = Sequence(lambda n: f"account {n}")  # type: ignore[no-untyped-call]
    currency = "USD"
    kind = AccountKind.POOL
    is_limited = True

    @classmethod
    def _create(cls, model_class: type[Account], *args: Any, **kwargs: Any) -> Account:
        return account_create(**kwargs)


class SystemAccountFactory(AccountFactory):
    kind = AccountKind.SYSTEM
    is_limited = False


def pool_account(**overrides: Any) -> Account:
    """A limited pool account (USD unless told otherwise)."""
    return AccountFactory.create(**overrides)


def system_account(**overrides: Any) -> Account:
    """An unlimited system account (funding, spend)."""
    return SystemAccountFactory.create(**overrides)


def fund(account: Account, amount: int, *, source: Account | None = None) -> Transfer:
    """Move ``amount`` into ``account`` from an unlimited system account (created if absent)."""
    source = source or system_account(name="funding", currency=account.currency)
    return transfer_create(
        debit_account_id=source.pk,
        credit_account_id=account.pk,
        amount=amount,
        currency=account.currency,
        code=TransferCode.FUNDING,
    )


def counters(account: Account) -> tuple[int, int, int, int, int]:
    """The account's counters as stored now."""
    account.refresh_from_db()
    return (
        account.debits_posted,
        account.credits_posted,
        account.debits_pending,
        account.credits_pending,
        account.overage_posted,
    )
