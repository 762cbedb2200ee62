"""PostgreSQL itself refuses bad rows, whatever code sends them (raw SQL, no services)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from ledger.models import Account, Transfer
from ledger.services import hold_create, hold_post
from tests.factories import counters, fund, pool_account, system_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


@pytest.fixture
def pool() -> Account:
    account = pool_account()
    fund(account, 1_000)
    return account


def execute(sql: str, params: list[int]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_database_refuses_to_update_a_transfer(pool: Account) -> None:
    transfer = Transfer.objects.get(credit_account=pool)

    with pytest.raises(DatabaseError, match="ledger rows are immutable: UPDATE"):
        execute("UPDATE ledger_transfer SET amount = 1 WHERE id = %s", [transfer.pk])

    assert Transfer.objects.get(pk=transfer.pk).amount == 1_000


def test_database_refuses_to_delete_a_transfer(pool: Account) -> None:
    transfer = Transfer.objects.get(credit_account=pool)

    with pytest.raises(DatabaseError, match="ledger rows are immutable: DELETE"):
        execute("DELETE FROM ledger_transfer WHERE id = %s", [transfer.pk])

    assert Transfer.objects.filter(pk=transfer.pk).exists()


def test_database_refuses_a_second_resolution_of_a_hold(pool: Account) -> None:
    spend = system_account()
    hold = hold_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=100, currency="USD",
        timeout=timedelta(minutes=5),
    )  # fmt: skip
    hold_post(hold_id=hold.pk, amount=40)

    with pytest.raises(IntegrityError, match="ledger_transfer_hold_resolves_once"):
        execute(
            "INSERT INTO ledger_transfer (debit_account_id, credit_account_id, amount, currency, "
            "code, phase, pending_id, idempotency_namespace, request_digest, metadata, actor, "
            "created_at) VALUES (%s, %s, 100, 'USD', 'spend', 'void', %s, '', '', '{}', '', now())",
            [pool.pk, spend.pk, hold.pk],
        )

    assert Transfer.objects.filter(pending=hold).count() == 1


@pytest.mark.parametrize("amount", [0, -5])
def test_database_refuses_a_non_positive_amount(pool: Account, amount: int) -> None:
    spend = system_account()

    with pytest.raises(IntegrityError, match="ledger_transfer_amount_positive"):
        execute(
            "INSERT INTO ledger_transfer (debit_account_id, credit_account_id, amount, currency, "
            "code, phase, idempotency_namespace, request_digest, metadata, actor, created_at) "
            "VALUES (%s, %s, %s, 'USD', 'spend', 'posted', '', '', '{}', '', now())",
            [pool.pk, spend.pk, amount],
        )


def test_database_refuses_a_transfer_in_another_currency_than_its_accounts(pool: Account) -> None:
    spend = system_account()

    with pytest.raises(IntegrityError, match="ledger_transfer_debit_currency"):
        execute(
            "INSERT INTO ledger_transfer (debit_account_id, credit_account_id, amount, currency, "
            "code, phase, idempotency_namespace, request_digest, metadata, actor, created_at) "
            "VALUES (%s, %s, 5, 'EUR', 'spend', 'posted', '', '', '{}', '', now())",
            [pool.pk, spend.pk],
        )


def test_database_refuses_to_overdraw_a_limited_account(pool: Account) -> None:
    with pytest.raises(IntegrityError, match="ledger_account_limited_not_overdrawn"):
        execute(
            "UPDATE ledger_account SET debits_pending = debits_pending + 1001 WHERE id = %s",
            [pool.pk],
        )

    assert counters(pool) == (0, 1_000, 0, 0, 0)


def test_database_allows_overdraft_only_as_recorded_overage(pool: Account) -> None:
    # Counters alone (no transfer behind them), inside a savepoint rolled back at once:
    # this proves the CHECK admits recorded overage, not that the services do.
    sid = transaction.savepoint()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_account SET debits_posted = 1500, overage_posted = 500 WHERE id = %s",
            [pool.pk],
        )
        cursor.execute("SELECT debits_posted FROM ledger_account WHERE id = %s", [pool.pk])
        assert cursor.fetchone() == (1500,)
    transaction.savepoint_rollback(sid)

    assert counters(pool) == (0, 1_000, 0, 0, 0)


def test_database_refuses_a_negative_counter(pool: Account) -> None:
    with pytest.raises(IntegrityError, match="ledger_account_counters_non_negative"):
        execute("UPDATE ledger_account SET credits_pending = -1 WHERE id = %s", [pool.pk])
