"""Open a quarter by hand: the same service the scheduled job runs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from allocation.management.commands._period_args import add_period_arguments, money, resolve
from allocation.periods import period_open_scheduled
from budgets.models import PeriodStatus
from ledger.errors import DomainError


class Command(BaseCommand):
    help = "Create a started period's pools and fund them from the approved plan (or the default)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_period_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        period, now = resolve(options, default_statuses=[PeriodStatus.PLANNED])
        organization = period.organization
        try:
            report = period_open_scheduled(period=period, now=now, dry_run=options["dry_run"])
        except DomainError as error:
            raise CommandError(f"{error.message} ({error.code})") from error
        if report.was_open:
            self.stdout.write(f"{period} of {organization.slug} is already open")
            return
        verb = "would fund" if options["dry_run"] else "funded"
        self.stdout.write(
            f"{period} of {organization.slug}: {verb} {money(report.total, organization)} "
            f"from {report.source}"
        )
        for line in report.lines:
            self.stdout.write(
                f"  {line.pool}: receives {money(line.received, organization)} "
                f"(own {money(line.own, organization)})"
            )
