"""Fiscal quarters in the organization's timezone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from budgets.errors import InvalidInputError
from budgets.periods import quarter_at, quarter_bounds


def test_quarter_bounds_follow_the_fiscal_start_in_local_time() -> None:
    starts, ends = quarter_bounds(
        timezone_name="Europe/Berlin", fiscal_year_start_month=2, fiscal_year=2026, quarter=4
    )

    assert starts.isoformat() == "2026-11-01T00:00:00+01:00"
    assert ends.isoformat() == "2027-02-01T00:00:00+01:00"


def test_quarter_at_reads_the_instant_in_the_organization_timezone() -> None:
    # 23:30 UTC on 31 October is already 1 November in Berlin: Q4 of FY2026.
    instant = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)

    assert quarter_at(
        timezone_name="Europe/Berlin", fiscal_year_start_month=2, instant=instant
    ) == (2026, 4)
    assert quarter_at(timezone_name="UTC", fiscal_year_start_month=2, instant=instant) == (
        2026, 3,
    )  # fmt: skip


def test_january_before_a_february_start_belongs_to_the_previous_fiscal_year() -> None:
    instant = datetime(2027, 1, 15, tzinfo=UTC)

    assert quarter_at(timezone_name="UTC", fiscal_year_start_month=2, instant=instant) == (
        2026, 4,
    )  # fmt: skip


@pytest.mark.parametrize(("month", "quarter"), [(0, 1), (13, 1), (1, 0), (1, 5)])
def test_out_of_range_month_or_quarter_is_refused(month: int, quarter: int) -> None:
    with pytest.raises(InvalidInputError):
        quarter_bounds(
            timezone_name="UTC", fiscal_year_start_month=month, fiscal_year=2026, quarter=quarter
        )


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="IANA"):
        quarter_bounds(
            timezone_name="Mars/Olympus", fiscal_year_start_month=1, fiscal_year=2026, quarter=1
        )
