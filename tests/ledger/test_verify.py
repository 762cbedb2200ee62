"""ledger_verify recomputes the books from the transfers and catches any drift."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ledger.models import Account
from ledger.selectors import ledger_verify
from ledger.services import hold_create, hold_post, transfer_create
from tests.factories import fund, pool_account, system_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def books() -> tuple[Account, Account]:
    pool, spend = pool_account(), system_account(name="spend")
    fund(pool, 1_000)
    held = hold_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=300, currency="USD",
        timeout=timedelta(minutes=5),
    )  # fmt: skip
    hold_post(hold_id=held.pk, amount=200)
    hold_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=100, currency="USD",
        timeout=timedelta(minutes=5),
    )  # fmt: skip
    transfer_create(
        debit_account_id=pool.pk, credit_account_id=spend.pk, amount=950, currency="USD",
        code="overage",
    )  # fmt: skip
    return pool, spend


def test_clean_books_verify(
    books: tuple[Account, Account], capsys: pytest.CaptureFixture[str]
) -> None:
    report = ledger_verify()
    call_command("ledger_verify")

    assert (report.problems, report.accounts, report.transfers, report.open_holds) == ([], 3, 5, 1)
    assert report.totals["USD"] == {
        "debits_posted": 2_150, "credits_posted": 2_150,
        "debits_pending": 100, "credits_pending": 100,
    }  # fmt: skip
    out = capsys.readouterr().out
    assert "ledger OK" in out
    assert "USD: posted 0.002150 USD debits / 0.002150 USD credits" in out


@pytest.mark.ledger_unverified
def test_a_tampered_counter_fails_verification(books: tuple[Account, Account]) -> None:
    pool, _ = books
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_account SET credits_posted = credits_posted + 7 WHERE id = %s", [pool.pk]
        )

    report = ledger_verify()

    assert report.problems == [
        f"account {pool.pk}: credits_posted is 1007, transfers sum to 1000",
        "USD: posted debits 2150 != posted credits 2157",
    ]
    with pytest.raises(CommandError, match=r"ledger BROKEN: 2 problem\(s\)"):
        call_command("ledger_verify")


@pytest.mark.ledger_unverified
def test_a_lost_open_hold_row_fails_verification(books: tuple[Account, Account]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT hold_id FROM ledger_openhold")
        (hold_id,) = cursor.fetchone()
        cursor.execute("DELETE FROM ledger_openhold")

    assert ledger_verify().problems == [f"hold {hold_id}: unresolved but not listed as open"]
