"""Check the spend read model (entries and rollup) against the ledger; exit 1 on a mismatch."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from budgets.spend import spend_verify


class Command(BaseCommand):
    help = (
        "Check that the spend entries add up to the ledger's spend up to the sync's watermark "
        "and that the rollup adds up to the entries; exit 1 on a mismatch."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = spend_verify()
        if not problems:
            self.stdout.write(self.style.SUCCESS("spend OK: entries = ledger, rollup = entries"))
            return
        for problem in problems:
            self.stderr.write(problem)
        raise CommandError(f"spend BROKEN: {len(problems)} problem(s)")
