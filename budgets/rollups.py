"""Reading spend for a range: whole local days from the rollup, the rest from the entries.

``SpendRollup`` rows sum the entries per organization, local day (in the organization's
timezone) and combination of the dimensions reports group by; ``spend_entries_sync`` keeps them
in the transaction that adds the entries. A range ``[start, end)`` is read as

- the rollup rows of the local days lying wholly inside it: from the first local midnight at
  or after ``start`` to the last local midnight at or before ``end``;
- the entries of the edges: ``[start, first midnight)`` and ``[last midnight, end)``; a range
  holding no whole day is read from the entries alone.

A local day is a contiguous stretch of time, so the two parts never overlap and together hold
every entry of the range once: the sums are the entries' sums, to the micro-unit. (The one
exception: a clock set back across midnight, where a day starts twice; a midnight where the
zone's clock is not plain, folded or skipped, is never used as a seam: the day next to it is
read from the entries.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from budgets.errors import InvalidInputError
from budgets.models import Organization, Pool, SpendEntry, SpendRollup, SpendRollupZone
from budgets.spend import spend_entries_catch_up

#: Measures both sources can sum; ``downgraded_calls`` counts entries with a saving.
MEASURES = (
    "amount", "calls", "input_tokens", "cached_input_tokens", "output_tokens", "saving",
    "downgraded_calls",
)  # fmt: skip


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day (a skipped midnight: the instant the clock jumps)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _plain_midnight(day: date, zone: ZoneInfo) -> bool:
    """Whether the local day starts exactly once, at a midnight that is neither folded nor
    skipped: only such a midnight may be the seam between rollup and entries."""
    first = datetime.combine(day, time(), tzinfo=zone)
    second = datetime.combine(day, time(fold=1), tzinfo=zone)
    return first.astimezone(UTC) == second.astimezone(UTC)


@dataclass(frozen=True)
class SpendSources:
    """The spend of a range in two disjoint parts: rollup rows of whole days, entries of the
    rest. ``rollup`` is None when the range holds no whole day."""

    rollup: QuerySet[SpendRollup] | None
    entries: QuerySet[SpendEntry]
    zone: ZoneInfo  # the timezone of the rollup's days: buckets of the entries use it too

    def filter(self, condition: Q) -> SpendSources:
        """Both parts narrowed by a condition on columns both have (dimensions, not time)."""
        rollup = self.rollup.filter(condition) if self.rollup is not None else None
        return replace(self, rollup=rollup, entries=self.entries.filter(condition))


def spend_sources(
    *, organization: Organization, pools: QuerySet[Pool], start: datetime, end: datetime,
    whole_days: bool = True,
) -> SpendSources:  # fmt: skip
    """The spend of ``pools`` in ``[start, end)``, brought up to date with the ledger first;
    ``whole_days=False`` reads the entries alone. Raises InvalidInputError (empty range)."""
    if start >= end:
        raise InvalidInputError("The range's start must be before its end.")
    spend_entries_catch_up()
    scope = pools.values("pk")
    entries = SpendEntry.objects.filter(organization=organization, pool__in=scope)
    # The midnights the rollup was cut at (the sync just brought it to the organization's
    # timezone), not those of an ``organization`` read before a change of timezone.
    cut = SpendRollupZone.objects.filter(organization=organization).values_list(
        "timezone", flat=True
    )
    zone = ZoneInfo(cut.first() or organization.timezone)
    first = start.astimezone(zone).date()
    if _midnight(first, zone) < start:
        first += timedelta(days=1)
    last = end.astimezone(zone).date()
    if _midnight(last, zone) > end:
        last -= timedelta(days=1)
    while first < last and not _plain_midnight(first, zone):
        first += timedelta(days=1)
    while first < last and not _plain_midnight(last, zone):
        last -= timedelta(days=1)
    if not whole_days or first >= last:
        return SpendSources(None, entries.filter(occurred_at__gte=start, occurred_at__lt=end), zone)
    seam_start, seam_end = _midnight(first, zone), _midnight(last, zone)
    return SpendSources(
        rollup=SpendRollup.objects.filter(
            organization=organization, pool__in=scope, day__gte=first, day__lt=last
        ),
        entries=entries.filter(
            Q(occurred_at__gte=start, occurred_at__lt=seam_start)
            | Q(occurred_at__gte=seam_end, occurred_at__lt=end)
        ),
        zone=zone,
    )


def _sums(source: str, measures: tuple[str, ...]) -> dict[str, Any]:
    """Aggregates named ``m_<measure>`` (an annotation may not shadow a field)."""
    sums: dict[str, Any] = {}
    for name in measures:
        if name == "downgraded_calls" and source == "entries":
            sums[f"m_{name}"] = Count("pk", filter=Q(saving__gt=0))
        else:
            sums[f"m_{name}"] = Coalesce(Sum(name), 0)
    return sums


def spend_total(sources: SpendSources, measures: tuple[str, ...] = MEASURES) -> dict[str, int]:
    """The measures summed over both parts."""
    total = dict.fromkeys(measures, 0)
    parts: list[tuple[str, QuerySet[Any] | None]] = [
        ("rollup", sources.rollup), ("entries", sources.entries),
    ]  # fmt: skip
    for source, part in parts:
        if part is None:
            continue
        for key, value in part.aggregate(**_sums(source, measures)).items():
            total[key[2:]] += int(value)
    return total


@dataclass(frozen=True)
class Grouped:
    rows: list[dict[str, Any]]  # the page, in group order
    row_count: int  # the groups of the whole range


def spend_grouped(
    sources: SpendSources, columns: dict[str, tuple[Any, Any]], *,
    measures: tuple[str, ...] = MEASURES, limit: int | None = None, offset: int = 0,
) -> Grouped:  # fmt: skip
    """The measures per group of ``columns`` (name: (expression over the rollup, the same over
    the entries)), both parts grouped by PostgreSQL (or SQLite) and summed again as one, in
    group order; a page of ``limit`` groups from ``offset`` when ``limit`` is given."""
    aliases = [f"g{index}" for index in range(len(columns))]
    parts: list[tuple[str, QuerySet[Any] | None]] = [
        ("rollup", sources.rollup), ("entries", sources.entries),
    ]  # fmt: skip
    selects, params = [], []
    quote = connection.ops.quote_name
    names = [quote(alias) for alias in aliases]
    sums = [quote(f"m_{measure}") for measure in measures]
    for index, (source, part) in enumerate(parts):
        if part is None:
            continue
        expressions = {
            alias: expression[index]
            for alias, expression in zip(aliases, columns.values(), strict=True)
        }
        grouped = part.annotate(**expressions).values(*aliases).annotate(**_sums(source, measures))
        sql, part_params = grouped.order_by().query.sql_with_params()
        # By name, not position: the ORM's column order is not the order given.
        selects.append(f"SELECT {', '.join(names + sums)} FROM ({sql}) AS part_{index}")
        params.extend(part_params)
    union = f"({' UNION ALL '.join(selects)}) AS spend GROUP BY {', '.join(names)}"
    page, page_params = "", []
    if limit is not None:
        page, page_params = " LIMIT %s OFFSET %s", [limit, offset]
    sql = (
        f"SELECT {', '.join(names)}, "
        f"{', '.join(f'SUM({column})' for column in sums)}, COUNT(*) OVER () "
        f"FROM {union} ORDER BY {', '.join(names)}{page}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *page_params])
        found = cursor.fetchall()
        if found:
            row_count = int(found[0][-1])
        else:  # a page past the last group: count them apart
            cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {union}) AS spend_groups", params)
            row_count = int(cursor.fetchone()[0])
    rows = []
    for row in found:
        values = dict(zip(columns, row[: len(columns)], strict=True))
        values.update(
            (measure, int(value))
            for measure, value in zip(measures, row[len(columns) : -1], strict=True)
        )
        rows.append(values)
    return Grouped(rows=rows, row_count=row_count)
