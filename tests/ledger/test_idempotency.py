"""One client key, one outcome: retries replay it, a different request under it conflicts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.errors import IdempotencyConflictError, InsufficientFundsError
from ledger.models import Account, Refusal, Transfer, TransferCode
from ledger.services import hold_create, transfer_create, transfer_reverse
from tests.factories import counters, fund, pool_account, system_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool() -> Account:
    account = pool_account()
    fund(account, 1_000)
    return account


@pytest.fixture
def spend() -> Account:
    return system_account(name="spend")


def keyed_hold(pool: Account, spend: Account, amount: int, key: str, **extra: object) -> Transfer:
    return hold_create(
        debit_account_id=pool.pk,
        credit_account_id=spend.pk,
        amount=amount,
        currency="USD",
        timeout=timedelta(minutes=5),
        idempotency_key=key,
        idempotency_namespace="gateway:1",
        **extra,  # type: ignore[arg-type]
    )


def test_same_key_same_request_returns_the_original(pool: Account, spend: Account) -> None:
    first = keyed_hold(pool, spend, 300, "call-1", metadata={"model": "opus"})

    again = keyed_hold(pool, spend, 300, "call-1", metadata={"model": "opus"})

    assert again.pk == first.pk
    assert counters(pool) == (0, 1_000, 300, 0, 0)
    assert Transfer.objects.filter(idempotency_key="call-1").count() == 1


def test_retry_of_a_success_replays_it_even_when_funds_are_now_short(
    pool: Account, spend: Account
) -> None:
    first = keyed_hold(pool, spend, 600, "call-1")
    keyed_hold(pool, spend, 400, "call-2")

    again = keyed_hold(pool, spend, 600, "call-1")

    assert again.pk == first.pk
    assert counters(pool) == (0, 1_000, 1_000, 0, 0)


def test_same_key_different_request_is_a_conflict_and_changes_nothing(
    pool: Account, spend: Account
) -> None:
    keyed_hold(pool, spend, 300, "call-1")
    before = (counters(pool), Transfer.objects.count())

    with pytest.raises(IdempotencyConflictError):
        keyed_hold(pool, spend, 301, "call-1")
    with pytest.raises(IdempotencyConflictError):
        keyed_hold(pool, spend, 300, "call-1", metadata={"model": "haiku"})

    assert (counters(pool), Transfer.objects.count()) == before


def test_a_refusal_is_remembered_even_after_funds_arrive(pool: Account, spend: Account) -> None:
    with pytest.raises(InsufficientFundsError) as first:
        keyed_hold(pool, spend, 5_000, "call-1")
    fund(pool, 10_000)

    with pytest.raises(InsufficientFundsError) as again:
        keyed_hold(pool, spend, 5_000, "call-1")

    assert again.value.message == first.value.message
    assert again.value.details == {"account_id": pool.pk, "available": 1_000, "requested": 5_000}
    assert counters(pool) == (0, 11_000, 0, 0, 0)
    assert Refusal.objects.get(idempotency_key="call-1").code == "insufficient_funds"


def test_a_different_request_under_a_refused_key_is_a_conflict(
    pool: Account, spend: Account
) -> None:
    with pytest.raises(InsufficientFundsError):
        keyed_hold(pool, spend, 5_000, "call-1")

    with pytest.raises(IdempotencyConflictError):
        keyed_hold(pool, spend, 10, "call-1")

    assert counters(pool) == (0, 1_000, 0, 0, 0)


def test_keys_are_scoped_by_namespace(pool: Account, spend: Account) -> None:
    first = keyed_hold(pool, spend, 100, "call-1")

    other = hold_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=100, currency="USD",
        timeout=timedelta(minutes=5), idempotency_key="call-1", idempotency_namespace="gateway:2",
    )  # fmt: skip

    assert other.pk != first.pk
    assert counters(pool) == (0, 1_000, 200, 0, 0)


def test_keyed_transfer_and_reversal_replay(pool: Account, spend: Account) -> None:
    transfer = transfer_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=10, currency="USD",
        code=TransferCode.SPEND, idempotency_key="usage-1",
    )  # fmt: skip
    replay = transfer_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=10, currency="USD",
        code=TransferCode.SPEND, idempotency_key="usage-1",
    )  # fmt: skip
    reversal = transfer_reverse(transfer_id=transfer.pk, idempotency_key="refund-1")
    reversal_replay = transfer_reverse(transfer_id=transfer.pk, idempotency_key="refund-1")

    assert (replay.pk, reversal_replay.pk) == (transfer.pk, reversal.pk)
    assert counters(pool) == (10, 1_010, 0, 0, 0)


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_a_key_must_be_1_to_200_characters(pool: Account, spend: Account, key: str) -> None:
    from ledger.errors import InvalidAmountError

    with pytest.raises(InvalidAmountError):
        keyed_hold(pool, spend, 10, key)

    assert counters(pool) == (0, 1_000, 0, 0, 0)
