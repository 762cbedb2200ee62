"""Close a quarter by hand: the same service the scheduled job runs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from allocation.management.commands._period_args import (
    OPEN_OR_CLOSING,
    add_period_arguments,
    money,
    resolve,
)
from allocation.periods import period_close
from ledger.errors import DomainError


class Command(BaseCommand):
    help = (
        "Roll over and lapse each pool of an ended period; mark it closed once nothing is pending."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_period_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        period, now = resolve(options, default_statuses=OPEN_OR_CLOSING)
        organization = period.organization
        try:
            report = period_close(period=period, now=now, dry_run=options["dry_run"])
        except DomainError as error:
            raise CommandError(f"{error.message} ({error.code})") from error
        verb = "would move" if options["dry_run"] else "moved"
        self.stdout.write(f"{period} of {organization.slug}: {verb}")
        for move in report.moves:
            self.stdout.write(
                f"  {move.pool}: available {money(move.available, organization)}, "
                f"rollover {money(move.rolled_over, organization)}"
                + (f" → {move.target}" if move.target else "")
                + f", lapse {money(move.lapsed, organization)}"
            )
        if not report.moves:
            self.stdout.write("  nothing")
        state = "closed" if report.is_closed else f"{period.status}"
        self.stdout.write(f"open holds left: {report.pending_holds}; period {state}")
