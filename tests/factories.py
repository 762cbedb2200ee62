"""Factories that build valid ledger states through the services, never around them."""

from __future__ import annotations

from typing import Any

import factory

from ledger.models import Account, AccountKind, Transfer, TransferCode
from ledger.services import account_create, transfer_create


class AccountFactory(factory.Factory):  # type: ignore[misc]
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"account {n}")
    currency = "USD"
    kind = AccountKind.POOL
    is_limited = True

    @classmethod
    def _create(cls, model_class: type[Account], *args: Any, **kwargs: Any) -> Account:
        return account_create(**kwargs)


class SystemAccountFactory(AccountFactory):
    kind = AccountKind.SYSTEM
    is_limited = False


def fund(account: Account, amount: int, *, source: Account | None = None) -> Transfer:
    """Move ``amount`` into ``account`` from an unlimited system account (created if absent)."""
    source = source or SystemAccountFactory(name="funding", currency=account.currency)
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
