"""transfer_create and transfer_reverse: posted transfers and every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.errors import (
    AccountClosedError,
    AccountNotFoundError,
    AlreadyReversedError,
    CurrencyMismatchError,
    InsufficientFundsError,
    InvalidAmountError,
    NotReversibleError,
    SameAccountError,
)
from ledger.models import Transfer, TransferCode, TransferPhase
from ledger.services import account_close, hold_create, transfer_create, transfer_reverse
from tests.factories import counters, fund, pool_account, system_account

pytestmark = pytest.mark.django_db


def test_transfer_moves_posted_counters_on_both_sides() -> None:
    team, engineer = pool_account(), pool_account()
    fund(team, 5_000_000)

    transfer = transfer_create(
        debit_account_id=team.pk,
        credit_account_id=engineer.pk,
        amount=1_250_000,
        currency="USD",
        code=TransferCode.ALLOCATION,
        metadata={"reason": "Q4 budget"},
        actor="user:7",
    )

    assert (transfer.phase, transfer.amount, transfer.code) == ("posted", 1_250_000, "allocation")
    stored = Transfer.objects.get(pk=transfer.pk)
    assert (stored.metadata, stored.actor) == ({"reason": "Q4 budget"}, "user:7")
    assert counters(team) == (1_250_000, 5_000_000, 0, 0, 0)
    assert counters(engineer) == (0, 1_250_000, 0, 0, 0)
    assert team.available == 3_750_000


def test_transfer_above_available_is_refused_and_changes_nothing() -> None:
    team, engineer = pool_account(), pool_account()
    fund(team, 1_000_000)
    before = (counters(team), counters(engineer), Transfer.objects.count())

    with pytest.raises(InsufficientFundsError) as refusal:
        transfer_create(
            debit_account_id=team.pk,
            credit_account_id=engineer.pk,
            amount=1_000_001,
            currency="USD",
            code=TransferCode.ALLOCATION,
        )

    assert refusal.value.details == {
        "account_id": team.pk, "available": 1_000_000, "requested": 1_000_001,
    }  # fmt: skip
    assert (counters(team), counters(engineer), Transfer.objects.count()) == before


def test_transfer_of_exactly_available_empties_the_account() -> None:
    team, engineer = pool_account(), pool_account()
    fund(team, 20)  # $0.000020: one cheap call

    transfer_create(
        debit_account_id=team.pk, credit_account_id=engineer.pk, amount=20, currency="USD",
        code=TransferCode.TRANSFER,
    )  # fmt: skip

    assert counters(team) == (20, 20, 0, 0, 0)
    assert team.available == 0


def test_overage_may_overdraw_a_limited_account_and_is_recorded() -> None:
    pool, spend = pool_account(), system_account(name="spend")
    fund(pool, 100)

    transfer_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=130, currency="USD",
        code=TransferCode.OVERAGE,
    )  # fmt: skip

    assert counters(pool) == (130, 100, 0, 0, 130)
    assert pool.available == -30
    with pytest.raises(InsufficientFundsError):
        transfer_create(
            debit_account_id=pool.pk, credit_account_id=spend.pk, amount=1, currency="USD",
            code=TransferCode.SPEND,
        )  # fmt: skip


def test_unlimited_account_may_go_negative() -> None:
    funding, pool = system_account(), pool_account()

    transfer_create(
        debit_account_id=funding.pk, credit_account_id=pool.pk, amount=7, currency="USD",
        code=TransferCode.FUNDING,
    )  # fmt: skip

    assert counters(funding) == (7, 0, 0, 0, 0)
    assert funding.balance == -7


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "10"])
def test_transfer_refuses_an_amount_that_is_not_a_positive_integer(amount: object) -> None:
    team, engineer = pool_account(), pool_account()

    with pytest.raises(InvalidAmountError):
        transfer_create(
            debit_account_id=team.pk, credit_account_id=engineer.pk, amount=amount,  # type: ignore[arg-type]
            currency="USD", code=TransferCode.TRANSFER,
        )  # fmt: skip

    assert Transfer.objects.count() == 0


def test_transfer_to_the_same_account_is_refused() -> None:
    team = pool_account()

    with pytest.raises(SameAccountError):
        transfer_create(
            debit_account_id=team.pk, credit_account_id=team.pk, amount=1, currency="USD",
            code=TransferCode.TRANSFER,
        )  # fmt: skip


def test_transfer_in_another_currency_is_refused_and_changes_nothing() -> None:
    dollars, euros = pool_account(), pool_account(currency="EUR")
    fund(dollars, 100)
    before = (counters(dollars), counters(euros), Transfer.objects.count())

    with pytest.raises(CurrencyMismatchError):
        transfer_create(
            debit_account_id=dollars.pk, credit_account_id=euros.pk, amount=10, currency="USD",
            code=TransferCode.TRANSFER,
        )  # fmt: skip

    assert (counters(dollars), counters(euros), Transfer.objects.count()) == before


def test_transfer_to_a_missing_account_is_refused() -> None:
    team = pool_account()
    fund(team, 100)

    with pytest.raises(AccountNotFoundError):
        transfer_create(
            debit_account_id=team.pk, credit_account_id=999_999, amount=10, currency="USD",
            code=TransferCode.TRANSFER,
        )  # fmt: skip

    assert counters(team) == (0, 100, 0, 0, 0)


def test_closed_account_refuses_transfers_but_can_be_swept() -> None:
    pool, team = pool_account(), pool_account()
    fund(pool, 100)
    account_close(account_id=pool.pk)

    with pytest.raises(AccountClosedError):
        transfer_create(
            debit_account_id=team.pk, credit_account_id=pool.pk, amount=1, currency="USD",
            code=TransferCode.TRANSFER,
        )  # fmt: skip
    with pytest.raises(AccountClosedError):
        hold_create(
            debit_account_id=pool.pk, credit_account_id=team.pk, amount=1, currency="USD",
            timeout=timedelta(minutes=1),
        )  # fmt: skip
    transfer_create(
        debit_account_id=pool.pk, credit_account_id=team.pk, amount=100, currency="USD",
        code=TransferCode.SWEEP,
    )  # fmt: skip

    assert counters(pool) == (100, 100, 0, 0, 0)


def test_reversal_undoes_a_posted_transfer() -> None:
    team, engineer = pool_account(), pool_account()
    fund(team, 1_000)
    original = transfer_create(
        debit_account_id=team.pk, credit_account_id=engineer.pk, amount=400, currency="USD",
        code=TransferCode.ALLOCATION,
    )  # fmt: skip

    reversal = transfer_reverse(transfer_id=original.pk, actor="user:1")

    assert (reversal.debit_account_id, reversal.credit_account_id) == (engineer.pk, team.pk)
    assert (reversal.amount, reversal.code, reversal.reverses_id) == (400, "reversal", original.pk)
    assert counters(team) == (400, 1_400, 0, 0, 0)
    assert counters(engineer) == (400, 400, 0, 0, 0)
    assert (team.available, engineer.available) == (1_000, 0)


def test_reversing_twice_is_refused() -> None:
    team, engineer = pool_account(), pool_account()
    fund(team, 1_000)
    original = transfer_create(
        debit_account_id=team.pk, credit_account_id=engineer.pk, amount=400, currency="USD",
        code=TransferCode.ALLOCATION,
    )  # fmt: skip
    transfer_reverse(transfer_id=original.pk)

    with pytest.raises(AlreadyReversedError):
        transfer_reverse(transfer_id=original.pk)

    assert Transfer.objects.filter(code=TransferCode.REVERSAL).count() == 1


def test_reversal_needs_the_funds_back() -> None:
    team, engineer, spend = pool_account(), pool_account(), system_account()
    fund(team, 1_000)
    allocation = transfer_create(
        debit_account_id=team.pk, credit_account_id=engineer.pk, amount=400, currency="USD",
        code=TransferCode.ALLOCATION,
    )  # fmt: skip
    transfer_create(
        debit_account_id=engineer.pk, credit_account_id=spend.pk, amount=300, currency="USD",
        code=TransferCode.SPEND,
    )  # fmt: skip
    before = (counters(team), counters(engineer))

    with pytest.raises(InsufficientFundsError):
        transfer_reverse(transfer_id=allocation.pk)

    assert (counters(team), counters(engineer)) == before


def test_a_hold_is_not_reversible() -> None:
    pool, spend = pool_account(), system_account()
    fund(pool, 100)
    hold = hold_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=10, currency="USD",
        timeout=timedelta(minutes=5),
    )  # fmt: skip

    with pytest.raises(NotReversibleError):
        transfer_reverse(transfer_id=hold.pk)
    assert hold.phase == TransferPhase.PENDING
