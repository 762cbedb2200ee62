"""Hypothesis drives random sequences of ledger operations against a reference model.

After every step each account's counters must equal the model's; at the end of every run
``ledger_verify`` must be clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ledger.errors import (
    AlreadyReversedError,
    HoldAlreadyResolvedError,
    HoldAmountExceededError,
    HoldExpiredError,
    InsufficientFundsError,
)
from ledger.models import Account, TransferCode
from ledger.selectors import ledger_verify
from ledger.services import (
    hold_create,
    hold_post,
    hold_void,
    holds_expire,
    transfer_create,
    transfer_reverse,
)
from tests.factories import fund, pool_account, system_account

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LIMITED, UNLIMITED = 3, 1
amounts = st.integers(min_value=1, max_value=1_500)


@dataclass
class ModelAccount:
    is_limited: bool
    counters: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # dp, cp, dpe, cpe, ov

    @property
    def available(self) -> int:
        return self.counters[1] - self.counters[0] - self.counters[2]


@dataclass
class ModelHold:
    pk: int
    debit: int
    credit: int
    amount: int
    expires_at: datetime
    resolved: str | None = None


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.accounts: list[Account] = [pool_account() for _ in range(LIMITED)]
        self.accounts += [system_account() for _ in range(UNLIMITED)]
        self.model = {a.pk: ModelAccount(is_limited=a.is_limited) for a in self.accounts}
        self.holds: list[ModelHold] = []
        self.posted: list[tuple[int, int, int, int]] = []  # pk, debit, credit, amount
        self.reversed: set[int] = set()
        source = self.accounts[-1]
        for account in self.accounts[:LIMITED]:
            fund(account, 2_000, source=source)
            self._apply(source.pk, account.pk, 2_000, posted=True)

    def _apply(
        self, debit: int, credit: int, amount: int, *, posted: bool, overage: bool = False
    ) -> None:
        offset = 0 if posted else 2
        self.model[debit].counters[0 + offset] += amount
        self.model[credit].counters[1 + offset] += amount
        if overage:
            self.model[debit].counters[4] += amount

    def _pair(self, data: st.DataObject) -> tuple[int, int]:
        ids = [account.pk for account in self.accounts]
        debit = data.draw(st.sampled_from(ids))
        credit = data.draw(st.sampled_from([pk for pk in ids if pk != debit]))
        return debit, credit

    @rule(data=st.data(), amount=amounts, is_overage=st.booleans())
    def transfer(self, data: st.DataObject, amount: int, is_overage: bool) -> None:
        debit, credit = self._pair(data)
        code = TransferCode.OVERAGE if is_overage else TransferCode.TRANSFER
        refused = (
            self.model[debit].is_limited
            and not is_overage
            and (self.model[debit].available < amount)
        )
        with time_machine.travel(self.now, tick=False):
            if refused:
                with pytest.raises(InsufficientFundsError):
                    transfer_create(
                        debit_account_id=debit, credit_account_id=credit, amount=amount,
                        currency="USD", code=code,
                    )  # fmt: skip
                return
            made = transfer_create(
                debit_account_id=debit, credit_account_id=credit, amount=amount,
                currency="USD", code=code,
            )  # fmt: skip
        self._apply(debit, credit, amount, posted=True, overage=is_overage)
        self.posted.append((made.pk, debit, credit, amount))

    @rule(data=st.data(), amount=amounts, seconds=st.integers(min_value=1, max_value=120))
    def hold(self, data: st.DataObject, amount: int, seconds: int) -> None:
        debit, credit = self._pair(data)
        refused = self.model[debit].is_limited and self.model[debit].available < amount
        with time_machine.travel(self.now, tick=False):
            if refused:
                with pytest.raises(InsufficientFundsError):
                    hold_create(
                        debit_account_id=debit, credit_account_id=credit, amount=amount,
                        currency="USD", timeout=timedelta(seconds=seconds),
                    )  # fmt: skip
                return
            made = hold_create(
                debit_account_id=debit, credit_account_id=credit, amount=amount,
                currency="USD", timeout=timedelta(seconds=seconds),
            )  # fmt: skip
        self._apply(debit, credit, amount, posted=False)
        self.holds.append(
            ModelHold(made.pk, debit, credit, amount, self.now + timedelta(seconds=seconds))
        )

    def _release(self, hold: ModelHold, outcome: str, spent: int) -> None:
        self._apply(hold.debit, hold.credit, -hold.amount, posted=False)
        if spent:
            self._apply(hold.debit, hold.credit, spent, posted=True)
            self.posted.append((-1, hold.debit, hold.credit, spent))
        hold.resolved = outcome

    @rule(data=st.data(), share=st.floats(min_value=0, max_value=1.2))
    def post(self, data: st.DataObject, share: float) -> None:
        if not self.holds:
            return
        hold = data.draw(st.sampled_from(self.holds))
        amount = int(hold.amount * share)
        with time_machine.travel(self.now, tick=False):
            if hold.resolved == "expire" or (hold.resolved is None and self.now >= hold.expires_at):
                with pytest.raises(HoldExpiredError):
                    hold_post(hold_id=hold.pk, amount=amount)
            elif hold.resolved is not None:
                with pytest.raises(HoldAlreadyResolvedError):
                    hold_post(hold_id=hold.pk, amount=amount + hold.amount + 1)
            elif amount > hold.amount:
                with pytest.raises(HoldAmountExceededError):
                    hold_post(hold_id=hold.pk, amount=amount)
            else:
                hold_post(hold_id=hold.pk, amount=amount)
                self._release(hold, "post", amount)

    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        if not self.holds:
            return
        hold = data.draw(st.sampled_from(self.holds))
        with time_machine.travel(self.now, tick=False):
            if hold.resolved == "expire":
                with pytest.raises(HoldExpiredError):
                    hold_void(hold_id=hold.pk)
            elif hold.resolved == "post":
                with pytest.raises(HoldAlreadyResolvedError):
                    hold_void(hold_id=hold.pk)
            else:
                hold_void(hold_id=hold.pk)
                if hold.resolved is None:
                    self._release(hold, "void", 0)

    @rule(seconds=st.integers(min_value=1, max_value=90))
    def advance_clock(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def expire(self) -> None:
        expired = holds_expire(now=self.now, batch_size=3)
        due = [h for h in self.holds if h.resolved is None and h.expires_at <= self.now]
        assert expired == len(due)
        for hold in due:
            self._release(hold, "expire", 0)

    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        reversible = [p for p in self.posted if p[0] > 0]
        if not reversible:
            return
        pk, debit, credit, amount = data.draw(st.sampled_from(reversible))
        with time_machine.travel(self.now, tick=False):
            if pk in self.reversed:
                with pytest.raises(AlreadyReversedError):
                    transfer_reverse(transfer_id=pk)
            elif self.model[credit].is_limited and self.model[credit].available < amount:
                with pytest.raises(InsufficientFundsError):
                    transfer_reverse(transfer_id=pk)
            else:
                transfer_reverse(transfer_id=pk)
                self._apply(credit, debit, amount, posted=True)
                self.reversed.add(pk)

    @invariant()
    def counters_match_the_model(self) -> None:
        for account in self.accounts:
            account.refresh_from_db()
            stored = [
                account.debits_posted, account.credits_posted, account.debits_pending,
                account.credits_pending, account.overage_posted,
            ]  # fmt: skip
            assert stored == self.model[account.pk].counters, account.pk

    def teardown(self) -> None:
        assert ledger_verify().problems == []
        # Examples share one database: leave no open hold for the next example's sweep.
        for hold in self.holds:
            if hold.resolved is None:
                hold_void(hold_id=hold.pk)


@pytest.mark.parametrize(
    "path",
    [
        # Inside the test's transaction the services take their Python path ...
        pytest.param("python", marks=pytest.mark.django_db),
        # ... and in autocommit, on PostgreSQL, the one-statement fast path.
        pytest.param("fast", marks=pytest.mark.django_db(transaction=True)),
    ],
)
def test_random_operation_sequences_match_the_reference_model(path: str) -> None:
    if path == "fast" and connection.vendor != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
