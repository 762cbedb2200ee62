"""Arguments the period commands share: which organization, which quarter, when is now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from budgets.models import Organization, Period, PeriodStatus
from ledger.money import format_micros


def add_period_arguments(parser: CommandParser) -> None:
    parser.add_argument("--org", required=True, help="The organization's slug.")
    parser.add_argument("--fiscal-year", type=int, help="Default: the period due now.")
    parser.add_argument("--quarter", type=int, choices=[1, 2, 3, 4])
    parser.add_argument("--now", help="ISO 8601 instant to act at (default: the clock).")
    parser.add_argument(
        "--dry-run", action="store_true", help="Print what would move; write nothing."
    )


def resolve(options: dict[str, Any], *, default_statuses: Sequence[str]) -> tuple[Period, datetime]:
    """The period the options name (or the one due in ``default_statuses``) and now."""
    organization = Organization.objects.filter(slug=options["org"]).first()
    if organization is None:
        raise CommandError(f"No organization {options['org']!r}.")
    now = datetime.fromisoformat(options["now"]) if options["now"] else timezone.now()
    if timezone.is_naive(now):
        raise CommandError("--now needs a timezone, e.g. 2027-02-01T00:00:00+00:00.")
    periods = organization.periods.all()
    if options["fiscal_year"] is not None and options["quarter"] is not None:
        period = periods.filter(
            fiscal_year=options["fiscal_year"], quarter=options["quarter"]
        ).first()
    else:
        period = periods.filter(status__in=default_statuses).order_by("starts_at").first()
    if period is None:
        raise CommandError("No such period (name it with --fiscal-year and --quarter).")
    return period, now


def money(micros: int, organization: Organization) -> str:
    return format_micros(micros, organization.currency)


OPEN_OR_CLOSING = [PeriodStatus.CLOSING, PeriodStatus.OPEN]
