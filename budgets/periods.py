"""Fiscal quarters: pure date arithmetic in the organization's timezone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from budgets.errors import InvalidInputError


def zone(name: str) -> ZoneInfo:
    """The IANA timezone. Raises InvalidInputError for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInputError(f"{name!r} is not an IANA timezone.") from error


def quarter_bounds(
    *, timezone_name: str, fiscal_year_start_month: int, fiscal_year: int, quarter: int
) -> tuple[datetime, datetime]:
    """[start, end) of a fiscal quarter, midnight local time on the first of a month.

    A fiscal year is named by the calendar year it starts in: with a February start, FY2026
    runs from 2026-02-01 to 2027-02-01 and its Q4 from 2026-11-01 to 2027-02-01.
    """
    if not 1 <= quarter <= 4:
        raise InvalidInputError("A quarter is 1 to 4.")
    if not 1 <= fiscal_year_start_month <= 12:
        raise InvalidInputError("A fiscal year starts in month 1 to 12.")
    tz = zone(timezone_name)

    def month_start(offset: int) -> datetime:
        index = fiscal_year * 12 + (fiscal_year_start_month - 1) + offset
        return datetime(index // 12, index % 12 + 1, 1, tzinfo=tz)

    return month_start(3 * (quarter - 1)), month_start(3 * quarter)


def quarter_at(
    *, timezone_name: str, fiscal_year_start_month: int, instant: datetime
) -> tuple[int, int]:
    """(fiscal_year, quarter) containing ``instant``, read in the organization's timezone."""
    local = instant.astimezone(zone(timezone_name))
    months_into_year = (local.month - fiscal_year_start_month) % 12
    fiscal_year = local.year if local.month >= fiscal_year_start_month else local.year - 1
    return fiscal_year, months_into_year // 3 + 1
