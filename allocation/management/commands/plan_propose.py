"""Propose a draft plan for a coming quarter from a measured baseline."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from allocation.management.commands._period_args import money, resolve
from allocation.models import PlanBaseline
from allocation.planning import DEFAULT_BUFFER, plan_propose
from budgets.models import Member, PeriodStatus
from ledger.errors import DomainError


class Command(BaseCommand):
    help = "Draft the next period's plan: measured settled spend x (1 + buffer) per line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--fiscal-year", type=int)
        parser.add_argument("--quarter", type=int, choices=[1, 2, 3, 4])
        parser.add_argument("--now")
        parser.add_argument("--as", dest="username", required=True, help="Finance or admin user.")
        parser.add_argument("--baseline", choices=PlanBaseline.values, default="period")
        parser.add_argument("--buffer", default=str(DEFAULT_BUFFER))

    def handle(self, *args: Any, **options: Any) -> None:
        options["dry_run"] = False
        period, now = resolve(options, default_statuses=[PeriodStatus.PLANNED])
        actor = Member.objects.filter(
            user__username=options["username"], organization=period.organization
        ).first()
        if actor is None:
            raise CommandError(f"No member {options['username']!r} in {period.organization}.")
        try:
            buffer = Decimal(options["buffer"])
            plan = plan_propose(
                period=period, actor=actor, now=now, baseline=options["baseline"], buffer=buffer
            )
        except InvalidOperation as error:
            raise CommandError(f"--buffer {options['buffer']!r} is not a decimal.") from error
        except DomainError as error:
            raise CommandError(f"{error.message} ({error.code})") from error
        organization = period.organization
        self.stdout.write(
            f"draft plan #{plan.pk} for {period} (baseline {plan.baseline}, buffer {plan.buffer})"
        )
        for line in plan.lines.select_related("team", "member__user").order_by("kind", "pk"):
            self.stdout.write(
                f"  {line}: measured {money(line.baseline, organization)}, "
                f"planned {money(line.amount, organization)}"
            )
        self.stdout.write(f"total {money(plan.total, organization)}")
