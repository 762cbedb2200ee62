"""Reads of the ledger, and the full invariant check behind ``manage.py ledger_verify``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from ledger.models import Account, OpenHold, Transfer, TransferCode, TransferPhase

_COUNTERS = (
    "debits_posted",
    "credits_posted",
    "debits_pending",
    "credits_pending",
    "overage_posted",
)


def account_get(*, account_id: int) -> Account | None:
    """The account with its current counters, or None."""
    return Account.objects.filter(pk=account_id).first()


@dataclass
class VerifyReport:
    """What ledger_verify looked at and every invariant it found broken."""

    accounts: int = 0
    transfers: int = 0
    open_holds: int = 0
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        return not self.problems


def ledger_verify() -> VerifyReport:
    """Recompute the books from the transfers and compare them with what is stored.

    Checks invariants 1-5 of ledger/models.py plus the shape of holds, resolutions and
    reversals. Reads in one REPEATABLE READ snapshot on PostgreSQL, so it can run beside
    live traffic.
    """
    report = VerifyReport()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            _verify(report)
        finally:
            if connection.vendor == "postgresql" and not connection.in_atomic_block:
                cursor.execute("COMMIT")
    return report


def _verify(report: VerifyReport) -> None:
    accounts = {account.pk: account for account in Account.objects.all()}
    report.accounts = len(accounts)
    report.transfers = Transfer.objects.count()
    report.open_holds = OpenHold.objects.count()
    expected = _recomputed_counters()
    for account_id, account in accounts.items():
        sums = expected.get(account_id, dict.fromkeys(_COUNTERS, 0))
        for counter in _COUNTERS:
            stored, derived = getattr(account, counter), sums[counter]
            if stored != derived:
                report.problems.append(
                    f"account {account_id}: {counter} is {stored}, transfers sum to {derived}"
                )
        if account.is_limited and (
            account.debits_posted + account.debits_pending
            > account.credits_posted + account.overage_posted
        ):
            report.problems.append(
                f"account {account_id}: limited account overdrawn beyond recorded overage"
            )
    _verify_totals(accounts, report)
    _verify_transfer_shapes(report)
    _verify_open_holds(report)


def _recomputed_counters() -> dict[int, dict[str, int]]:
    """Every account's counters as the transfers define them."""
    sums: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COUNTERS, 0))
    posting = (TransferPhase.POSTED.value, TransferPhase.POST.value)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT debit_account_id, credit_account_id, code, SUM(amount) FROM ledger_transfer "
            f"WHERE phase IN ('{posting[0]}', '{posting[1]}') "
            "GROUP BY debit_account_id, credit_account_id, code"
        )
        for debit_id, credit_id, code, total in cursor.fetchall():
            sums[debit_id]["debits_posted"] += int(total)
            sums[credit_id]["credits_posted"] += int(total)
            if code == TransferCode.OVERAGE:
                sums[debit_id]["overage_posted"] += int(total)
        cursor.execute(
            "SELECT h.debit_account_id, h.credit_account_id, SUM(h.amount) FROM ledger_transfer h "
            f"WHERE h.phase = '{TransferPhase.PENDING.value}' AND NOT EXISTS "
            "(SELECT 1 FROM ledger_transfer r WHERE r.pending_id = h.id) "
            "GROUP BY h.debit_account_id, h.credit_account_id"
        )
        for debit_id, credit_id, total in cursor.fetchall():
            sums[debit_id]["debits_pending"] += int(total)
            sums[credit_id]["credits_pending"] += int(total)
    return sums


def _verify_totals(accounts: dict[int, Account], report: VerifyReport) -> None:
    """Invariant 1: per currency, debits equal credits, posted and pending."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COUNTERS[:4], 0))
    for account in accounts.values():
        for counter in _COUNTERS[:4]:
            totals[account.currency][counter] += getattr(account, counter)
    for currency, sums in totals.items():
        if sums["debits_posted"] != sums["credits_posted"]:
            report.problems.append(
                f"{currency}: posted debits {sums['debits_posted']} "
                f"!= posted credits {sums['credits_posted']}"
            )
        if sums["debits_pending"] != sums["credits_pending"]:
            report.problems.append(
                f"{currency}: pending debits {sums['debits_pending']} "
                f"!= pending credits {sums['credits_pending']}"
            )
    report.totals = dict(totals)


def _verify_transfer_shapes(report: VerifyReport) -> None:
    """Currencies match accounts; resolutions mirror their hold; reversals their original."""
    checks = {
        "currency differs from an account's": (
            "SELECT t.id FROM ledger_transfer t "
            "JOIN ledger_account d ON d.id = t.debit_account_id "
            "JOIN ledger_account c ON c.id = t.credit_account_id "
            "WHERE t.currency <> d.currency OR t.currency <> c.currency"
        ),
        "resolves something that is not a hold, or differs from its hold": (
            "SELECT r.id FROM ledger_transfer r JOIN ledger_transfer h ON h.id = r.pending_id "
            f"WHERE h.phase <> '{TransferPhase.PENDING.value}' "
            "OR r.debit_account_id <> h.debit_account_id "
            "OR r.credit_account_id <> h.credit_account_id "
            "OR r.currency <> h.currency OR r.code <> h.code OR r.amount > h.amount "
            f"OR (r.phase <> '{TransferPhase.POST.value}' AND r.amount <> h.amount)"
        ),
        "reverses something it does not mirror": (
            "SELECT r.id FROM ledger_transfer r JOIN ledger_transfer o ON o.id = r.reverses_id "
            "WHERE r.debit_account_id <> o.credit_account_id "
            "OR r.credit_account_id <> o.debit_account_id OR r.amount <> o.amount "
            f"OR o.phase NOT IN ('{TransferPhase.POSTED.value}', '{TransferPhase.POST.value}')"
        ),
    }
    with connection.cursor() as cursor:
        for problem, sql in checks.items():
            cursor.execute(sql + " ORDER BY 1 LIMIT 20")
            for (transfer_id,) in cursor.fetchall():
                report.problems.append(f"transfer {transfer_id}: {problem}")


def _verify_open_holds(report: VerifyReport) -> None:
    """The open-hold index lists exactly the unresolved holds, with their details."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT h.id FROM ledger_transfer h "
            f"WHERE h.phase = '{TransferPhase.PENDING.value}' "
            "AND NOT EXISTS (SELECT 1 FROM ledger_transfer r WHERE r.pending_id = h.id) "
            "AND NOT EXISTS (SELECT 1 FROM ledger_openhold o WHERE o.hold_id = h.id "
            "AND o.amount = h.amount AND o.debit_account_id = h.debit_account_id "
            "AND o.credit_account_id = h.credit_account_id AND o.expires_at = h.expires_at) "
            "ORDER BY 1 LIMIT 20"
        )
        for (hold_id,) in cursor.fetchall():
            report.problems.append(f"hold {hold_id}: unresolved but not listed as open")
        cursor.execute(
            "SELECT o.hold_id FROM ledger_openhold o WHERE EXISTS "
            "(SELECT 1 FROM ledger_transfer r WHERE r.pending_id = o.hold_id) "
            "ORDER BY 1 LIMIT 20"
        )
        for (hold_id,) in cursor.fetchall():
            report.problems.append(f"hold {hold_id}: resolved but still listed as open")
