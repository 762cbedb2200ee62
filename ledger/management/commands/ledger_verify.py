"""Recompute the books from the transfers; exit non-zero on any broken invariant."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.money import format_micros
from ledger.selectors import ledger_verify


class Command(BaseCommand):
    help = "Check every ledger invariant against the stored counters; exit 1 on a mismatch."

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_verify()
        self.stdout.write(
            f"accounts: {report.accounts}  transfers: {report.transfers}  "
            f"open holds: {report.open_holds}"
        )
        for currency, sums in sorted(report.totals.items()):
            self.stdout.write(
                f"{currency}: posted {format_micros(sums['debits_posted'], currency)} "
                f"debits / {format_micros(sums['credits_posted'], currency)} credits; "
                f"pending {format_micros(sums['debits_pending'], currency)} / "
                f"{format_micros(sums['credits_pending'], currency)}"
            )
        if report.is_clean:
            self.stdout.write(self.style.SUCCESS("ledger OK: every invariant holds"))
            return
        for problem in report.problems:
            self.stderr.write(problem)
        raise CommandError(f"ledger BROKEN: {len(report.problems)} problem(s)")
