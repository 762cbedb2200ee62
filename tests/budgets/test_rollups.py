"""The spend rollup: exactly the entries' sums per local day, kept by the sync; reports that
read it for whole days and the entries for the edges equal the ledger for any range."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from allocation.demo import DemoOrganization
from budgets.models import Organization, Pool, SpendEntry, SpendRollup, SpendRollupZone
from budgets.rollups import spend_sources, spend_total
from budgets.spend import ROLLUP_DIMENSIONS, SYNC_LAG, ledger_spend, spend_entries_sync
from ledger.models import Transfer
from ledger.services import transfer_reverse
from tests.api.finance import client_for
from tests.conftest import NOW
from tests.spending import HAIKU, call, record

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")  # the demo organization's timezone
MIDNIGHT = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # 2026-11-23 00:00 in Berlin (CET)
SECOND = timedelta(seconds=1)


@pytest.fixture
def around_midnight(acme: DemoOrganization) -> DemoOrganization:
    """Calls one second before and at Berlin's midnight, two days of sessions on a PR, a
    downgrade, and CI usage recorded the day before: $0.045 each call, $1.50 the usage."""
    pr = {"repo": "acme/api", "pr": "7"}
    call(acme, "before", tags=pr, session_id="s1", at=MIDNIGHT - SECOND)
    call(acme, "at", tags=pr, session_id="s1", at=MIDNIGHT)
    call(acme, "after", tags=pr, session_id="s2", at=MIDNIGHT + timedelta(hours=5))
    call(acme, "small", used_model=HAIKU, tags=pr, session_id="s2", at=NOW)
    call(
        acme, "product", subject="product-eng1-claude-code", tags={"repo": "acme/web", "pr": "9"},
        at=MIDNIGHT - timedelta(hours=20),
    )  # fmt: skip
    record(
        acme, "ci", subject="ci-review-bot", amount=1_500_000, tags={"use_case": "review"},
        at=MIDNIGHT - timedelta(days=1, hours=3),
    )  # fmt: skip
    return acme


_MEASURES = ("amount", "calls", "input_tokens", "cached_input_tokens", "output_tokens", "saving")


def rollup_rows() -> dict[tuple[Any, ...], tuple[int, ...]]:
    return {
        (row.organization_id, row.day, *(getattr(row, name) for name in ROLLUP_DIMENSIONS)): (
            *(getattr(row, name) for name in _MEASURES), row.downgraded_calls, row.entries,
        )
        for row in SpendRollup.objects.all()
    }  # fmt: skip


def entries_rolled_up(zone: ZoneInfo) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The reference: the entries summed per local day and dimensions, in Python."""
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * (len(_MEASURES) + 2))
    for entry in SpendEntry.objects.all():
        day = entry.occurred_at.astimezone(zone).date()
        key = (entry.organization_id, day, *(getattr(entry, name) for name in ROLLUP_DIMENSIONS))
        values = (*(getattr(entry, name) for name in _MEASURES), int(entry.saving > 0), 1)
        sums[key] = [total + value for total, value in zip(sums[key], values, strict=True)]
    return {key: tuple(values) for key, values in sums.items()}


def test_the_rollup_sums_the_entries_per_local_day_to_the_micro_unit(
    around_midnight: DemoOrganization,
) -> None:
    spend_entries_sync(now=NOW + timedelta(hours=1))

    assert rollup_rows() == entries_rolled_up(BERLIN)
    per_day: dict[date, int] = defaultdict(int)
    for row in SpendRollup.objects.all():
        per_day[row.day] += row.amount
    # 23:59:59 in Berlin is the 22nd, midnight the 23rd; the usage 3 hours before the 22nd's
    # midnight (Berlin) is the 21st.
    assert dict(per_day) == {
        date(2026, 11, 21): 1_500_000,
        date(2026, 11, 22): 45_000 + 45_000,
        date(2026, 11, 23): 45_000 + 45_000 + 15_000,
    }
    assert (
        sum(per_day.values())
        == ledger_spend(
            organization_id=around_midnight.organization.pk, start=NOW - timedelta(days=7), end=NOW
        )
        + 15_000
    )  # the call at NOW is outside [start, NOW)


def test_the_watermarks_tail_is_rolled_up_once(around_midnight: DemoOrganization) -> None:
    # Within SYNC_LAG of the last calls: entered, but the watermark stays before them, so the
    # next syncs read them again.
    assert spend_entries_sync(now=NOW + SYNC_LAG / 2) == 6
    assert spend_entries_sync(now=NOW + SYNC_LAG / 2) == 0
    call(around_midnight, "later", at=NOW + SYNC_LAG / 2)
    assert spend_entries_sync(now=NOW + SYNC_LAG) == 1

    assert rollup_rows() == entries_rolled_up(BERLIN)
    assert sum(row.amount for row in SpendRollup.objects.all()) == 1_500_000 + 5 * 45_000 + 15_000


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (MIDNIGHT - SECOND, MIDNIGHT + SECOND),  # no whole day: entries alone
        (MIDNIGHT, MIDNIGHT + timedelta(days=1)),  # exactly one day: the rollup alone
        (MIDNIGHT - SECOND, MIDNIGHT + timedelta(days=1)),  # a day and one second before it
        (MIDNIGHT, NOW),  # a day's start to inside it
        (MIDNIGHT - timedelta(days=2, hours=1), MIDNIGHT + timedelta(hours=5)),  # both edges
        (MIDNIGHT - timedelta(days=2, hours=1), MIDNIGHT + timedelta(hours=5, microseconds=1)),
    ],
)
# "tag:repo": a tag the rollup has no column for, read from the entries alone.
@pytest.mark.parametrize("group_by", ["", "team", "member,pr", "model,tag:repo"])
def test_a_range_cut_anywhere_equals_the_ledger(
    around_midnight: DemoOrganization, start: datetime, end: datetime, group_by: str
) -> None:
    client = client_for(around_midnight, "finance")
    query = {"start": start.isoformat(), "end": end.isoformat(), "group_by": group_by}

    body = client.get("/api/v1/reports/spend", {**query, "bucket": "day"}).json()

    ledger = ledger_spend(organization_id=around_midnight.organization.pk, start=start, end=end)
    assert _micros(body["total"]["amount"]) == ledger
    assert sum(_micros(row["amount"]) for row in body["rows"]) == ledger


def test_whole_days_come_from_the_rollup_and_only_the_edges_from_the_entries(
    around_midnight: DemoOrganization,
) -> None:
    organization = around_midnight.organization
    pools = Pool.objects.filter(organization=organization)
    start, end = MIDNIGHT - timedelta(hours=1), MIDNIGHT + timedelta(days=1, hours=2)

    sources = spend_sources(organization=organization, pools=pools, start=start, end=end)

    assert sources.rollup is not None
    assert {row.day for row in sources.rollup} == {date(2026, 11, 23)}
    assert sorted(entry.occurred_at for entry in sources.entries) == [MIDNIGHT - SECOND]


def test_the_day_buckets_are_the_organizations_days(around_midnight: DemoOrganization) -> None:
    client = client_for(around_midnight, "finance")
    start, end = MIDNIGHT - timedelta(days=2, hours=1), MIDNIGHT + timedelta(hours=6)

    body = client.get(
        "/api/v1/reports/spend",
        {"start": start.isoformat(), "end": end.isoformat(), "bucket": "day"},
    ).json()

    assert [(row["group"]["bucket"], _micros(row["amount"])) for row in body["rows"]] == [
        ("2026-11-21", 1_500_000),
        ("2026-11-22", 90_000),
        ("2026-11-23", 90_000),
    ]


def test_a_changed_timezone_rebuilds_the_rollup(around_midnight: DemoOrganization) -> None:
    spend_entries_sync(now=NOW + timedelta(hours=1))
    Organization.objects.filter(pk=around_midnight.organization.pk).update(
        timezone="America/Los_Angeles"
    )

    spend_entries_sync(now=NOW + timedelta(hours=1))

    assert rollup_rows() == entries_rolled_up(ZoneInfo("America/Los_Angeles"))
    assert SpendRollupZone.objects.get(organization=around_midnight.organization).timezone == (
        "America/Los_Angeles"
    )


def _micros(money: dict[str, str]) -> int:
    whole, _, fraction = money["amount"].partition(".")
    return int(whole) * 1_000_000 + int(fraction.ljust(6, "0"))


def test_reversals_of_spend_are_negative_entries_in_the_rollup(
    around_midnight: DemoOrganization,
) -> None:
    # Given one spend line reversed after it was entered, another before its first sync.
    organization = around_midnight.organization
    spend_accounts = Pool.objects.filter(organization=organization).values("spend_account_id")
    lines = Transfer.objects.filter(credit_account_id__in=spend_accounts, phase="post")
    first, second = lines.order_by("pk")[:2]
    with time_machine.travel(NOW, tick=False):
        transfer_reverse(transfer_id=first.pk)
    spend_entries_sync(now=NOW + timedelta(hours=1))
    with time_machine.travel(NOW, tick=False):
        transfer_reverse(transfer_id=second.pk)

    spend_entries_sync(now=NOW + timedelta(hours=1))

    # Then each reversal is an entry of minus the line, rolled up on its own day.
    assert rollup_rows() == entries_rolled_up(BERLIN)
    start, end = MIDNIGHT - timedelta(days=3), NOW + SECOND
    ledger = ledger_spend(organization_id=organization.pk, start=start, end=end)
    assert ledger == 1_500_000 + 4 * 45_000 + 15_000 - first.amount - second.amount
    pools = Pool.objects.filter(organization=organization)
    sources = spend_sources(organization=organization, pools=pools, start=start, end=end)
    assert spend_total(sources)["amount"] == ledger


def test_a_range_is_cut_at_the_midnights_the_rollup_was_cut_at(
    around_midnight: DemoOrganization,
) -> None:
    # Given an organization read before its timezone changed: the sync that the read starts
    # with rebuilds the rollup in the new timezone.
    organization = Organization.objects.get(pk=around_midnight.organization.pk)
    spend_entries_sync(now=NOW + timedelta(hours=1))
    Organization.objects.filter(pk=organization.pk).update(timezone="America/Los_Angeles")
    pools = Pool.objects.filter(organization=organization)
    start, end = MIDNIGHT - timedelta(days=2, hours=1), MIDNIGHT + timedelta(hours=5)

    sources = spend_sources(organization=organization, pools=pools, start=start, end=end)

    # Then whole days and edges meet at the rollup's midnights: nothing counted twice or missed.
    ledger = ledger_spend(organization_id=organization.pk, start=start, end=end)
    assert spend_total(sources)["amount"] == ledger
