"""Holds: create, post, void, expire; and every refusal changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from ledger.errors import (
    HoldAlreadyResolvedError,
    HoldAmountExceededError,
    HoldExpiredError,
    InsufficientFundsError,
    InvalidAmountError,
    NotAHoldError,
    TransferNotFoundError,
)
from ledger.models import Account, OpenHold, Transfer, TransferCode, TransferPhase
from ledger.services import (
    account_close,
    hold_create,
    hold_post,
    hold_void,
    holds_expire,
    transfer_create,
)
from tests.factories import counters, fund, pool_account, system_account

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def pool() -> Account:
    account = pool_account(name="engineer pool")
    fund(account, 1_000_000)
    return account


@pytest.fixture
def spend() -> Account:
    return system_account(name="spend")


def hold(pool: Account, spend: Account, amount: int, minutes: int = 10) -> Transfer:
    return hold_create(
        debit_account_id=pool.pk,
        credit_account_id=spend.pk,
        amount=amount,
        currency="USD",
        timeout=timedelta(minutes=minutes),
    )


def test_hold_reserves_funds_until_resolved(pool: Account, spend: Account) -> None:
    with time_machine.travel(T0, tick=False):
        reservation = hold(pool, spend, 300_000)

    assert (reservation.phase, reservation.code, reservation.expires_at) == (
        "pending", "spend", T0 + timedelta(minutes=10),
    )  # fmt: skip
    assert counters(pool) == (0, 1_000_000, 300_000, 0, 0)
    assert counters(spend) == (0, 0, 0, 300_000, 0)
    assert pool.available == 700_000
    assert OpenHold.objects.get(hold=reservation).expires_at == T0 + timedelta(minutes=10)


def test_hold_above_available_is_refused_and_changes_nothing(pool: Account, spend: Account) -> None:
    hold(pool, spend, 600_000)
    before = (counters(pool), counters(spend), Transfer.objects.count(), OpenHold.objects.count())

    with pytest.raises(InsufficientFundsError):
        hold(pool, spend, 400_001)

    assert (
        counters(pool), counters(spend), Transfer.objects.count(), OpenHold.objects.count()
    ) == before  # fmt: skip


@pytest.mark.parametrize("timeout", [timedelta(0), timedelta(seconds=-1), timedelta(days=32)])
def test_hold_refuses_a_timeout_out_of_range(
    pool: Account, spend: Account, timeout: timedelta
) -> None:
    with pytest.raises(InvalidAmountError):
        hold_create(
            debit_account_id=pool.pk, credit_account_id=spend.pk, amount=1, currency="USD",
            timeout=timeout,
        )  # fmt: skip

    assert Transfer.objects.filter(phase=TransferPhase.PENDING).count() == 0


def test_post_spends_part_of_a_hold_and_releases_the_rest(pool: Account, spend: Account) -> None:
    reservation = hold(pool, spend, 300_000)

    resolution = hold_post(hold_id=reservation.pk, amount=123_456, actor="gateway:litellm")

    assert (resolution.phase, resolution.amount, resolution.pending_id) == (
        "post", 123_456, reservation.pk,
    )  # fmt: skip
    assert counters(pool) == (123_456, 1_000_000, 0, 0, 0)
    assert counters(spend) == (0, 123_456, 0, 0, 0)
    assert pool.available == 876_544
    assert not OpenHold.objects.filter(hold=reservation).exists()


def test_post_of_zero_releases_everything(pool: Account, spend: Account) -> None:
    reservation = hold(pool, spend, 300_000)

    resolution = hold_post(hold_id=reservation.pk, amount=0)

    assert (resolution.phase, resolution.amount) == ("post", 0)
    assert counters(pool) == (0, 1_000_000, 0, 0, 0)


def test_post_above_the_hold_is_refused_and_changes_nothing(pool: Account, spend: Account) -> None:
    reservation = hold(pool, spend, 300_000)
    before = (counters(pool), counters(spend), Transfer.objects.count())

    with pytest.raises(HoldAmountExceededError):
        hold_post(hold_id=reservation.pk, amount=300_001)

    assert (counters(pool), counters(spend), Transfer.objects.count()) == before
    assert OpenHold.objects.filter(hold=reservation).exists()


@pytest.mark.parametrize("amount", [-1, 2.5, None])
def test_post_refuses_an_invalid_amount(pool: Account, spend: Account, amount: object) -> None:
    reservation = hold(pool, spend, 300_000)

    with pytest.raises(InvalidAmountError):
        hold_post(hold_id=reservation.pk, amount=amount)  # type: ignore[arg-type]

    assert OpenHold.objects.filter(hold=reservation).exists()


def test_posting_again_with_the_same_amount_returns_the_same_resolution(
    pool: Account, spend: Account
) -> None:
    reservation = hold(pool, spend, 300_000)
    first = hold_post(hold_id=reservation.pk, amount=1_000)

    again = hold_post(hold_id=reservation.pk, amount=1_000)

    assert again.pk == first.pk
    assert counters(pool) == (1_000, 1_000_000, 0, 0, 0)


def test_posting_again_with_another_amount_is_refused(pool: Account, spend: Account) -> None:
    reservation = hold(pool, spend, 300_000)
    hold_post(hold_id=reservation.pk, amount=1_000)

    with pytest.raises(HoldAlreadyResolvedError):
        hold_post(hold_id=reservation.pk, amount=2_000)

    assert counters(pool) == (1_000, 1_000_000, 0, 0, 0)


def test_void_releases_the_whole_hold_once(pool: Account, spend: Account) -> None:
    reservation = hold(pool, spend, 300_000)

    resolution = hold_void(hold_id=reservation.pk)
    again = hold_void(hold_id=reservation.pk)

    assert (resolution.phase, resolution.amount, again.pk) == ("void", 300_000, resolution.pk)
    assert counters(pool) == (0, 1_000_000, 0, 0, 0)
    assert counters(spend) == (0, 0, 0, 0, 0)


def test_void_after_post_and_post_after_void_are_refused(pool: Account, spend: Account) -> None:
    posted, voided = hold(pool, spend, 100), hold(pool, spend, 200)
    hold_post(hold_id=posted.pk, amount=50)
    hold_void(hold_id=voided.pk)

    with pytest.raises(HoldAlreadyResolvedError):
        hold_void(hold_id=posted.pk)
    with pytest.raises(HoldAlreadyResolvedError):
        hold_post(hold_id=voided.pk, amount=10)

    assert counters(pool) == (50, 1_000_000, 0, 0, 0)


def test_resolving_something_that_is_not_a_hold_is_refused(pool: Account, spend: Account) -> None:
    posted = transfer_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=5, currency="USD",
        code=TransferCode.SPEND,
    )  # fmt: skip

    with pytest.raises(NotAHoldError):
        hold_post(hold_id=posted.pk, amount=1)
    with pytest.raises(TransferNotFoundError):
        hold_void(hold_id=987_654_321)


def test_post_after_the_expiry_time_is_refused(pool: Account, spend: Account) -> None:
    with time_machine.travel(T0, tick=False):
        reservation = hold(pool, spend, 300_000, minutes=10)
    before = (counters(pool), Transfer.objects.count())

    with (
        time_machine.travel(T0 + timedelta(minutes=10), tick=False),
        pytest.raises(HoldExpiredError),
    ):
        hold_post(hold_id=reservation.pk, amount=1)

    assert (counters(pool), Transfer.objects.count()) == before
    assert OpenHold.objects.filter(hold=reservation).exists()


def test_holds_expire_releases_only_due_holds_and_runs_once(pool: Account, spend: Account) -> None:
    with time_machine.travel(T0, tick=False):
        due_a, due_b = hold(pool, spend, 100, minutes=1), hold(pool, spend, 200, minutes=2)
        later = hold(pool, spend, 400, minutes=3)

    expired = holds_expire(now=T0 + timedelta(minutes=2), batch_size=1)
    expired_again = holds_expire(now=T0 + timedelta(minutes=2))

    assert (expired, expired_again) == (2, 0)
    resolutions = Transfer.objects.filter(phase=TransferPhase.EXPIRE).order_by("pending_id")
    assert [(r.pending_id, r.amount) for r in resolutions] == [(due_a.pk, 100), (due_b.pk, 200)]
    assert counters(pool) == (0, 1_000_000, 400, 0, 0)
    assert list(OpenHold.objects.values_list("hold_id", flat=True)) == [later.pk]


def test_post_of_an_expired_and_swept_hold_says_it_expired(pool: Account, spend: Account) -> None:
    with time_machine.travel(T0, tick=False):
        reservation = hold(pool, spend, 100, minutes=1)
    holds_expire(now=T0 + timedelta(minutes=5))

    with pytest.raises(HoldExpiredError):
        hold_post(hold_id=reservation.pk, amount=100)
    with pytest.raises(HoldExpiredError):
        hold_void(hold_id=reservation.pk)


def test_holds_on_a_closed_account_still_resolve(pool: Account, spend: Account) -> None:
    posted, voided = hold(pool, spend, 100), hold(pool, spend, 200)
    account_close(account_id=pool.pk)

    hold_post(hold_id=posted.pk, amount=80)
    hold_void(hold_id=voided.pk)

    assert counters(pool) == (80, 1_000_000, 0, 0, 0)
