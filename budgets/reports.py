"""Finance reports: reads over the spend entries (budgets/spend.py), their per-day rollup
(budgets/rollups.py) and pool balances.

Every report first brings the entries and the rollup up to date with the ledger
(``spend_entries_sync``), then sums in integer micro-units: whole local days of a range from
the rollup, the rest of the range from the entries. Summed over any grouping, a report equals
``ledger_spend`` of the same range to the micro-unit. Ranges are half-open, ``[start, end)``,
by posting time; day and week buckets are in the organization's timezone. ``pools`` is the
caller's scope: the pools whose spend they may see."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    CharField,
    DateField,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, TruncDate, TruncHour, TruncWeek

from budgets.errors import InvalidInputError
from budgets.models import (
    Commit,
    CommitLink,
    Member,
    Organization,
    Period,
    Pool,
    SpendEntry,
    SpendRollup,
    Team,
)
from budgets.periods import zone
from budgets.rollups import spend_grouped, spend_sources, spend_total
from budgets.selectors import pool_balance_of
from budgets.spend import (
    TAG_COLUMNS,
    entries_for_sessions,
    spend_entries_catch_up,
    spend_snapshot,
)
from ledger.money import format_micros

#: What spend can be grouped by; ``tag:<name>`` groups by any other tag.
DIMENSIONS = {
    "team": "team_id",
    "member": "member_id",
    "pool": "pool_id",
    "model": "model",
    "credential_kind": "credential_kind",
    **{name: name for name in TAG_COLUMNS},
}
BUCKETS = ("day", "week")
MEASURES = ("amount", "calls", "input_tokens", "cached_input_tokens", "output_tokens")
OUTLIER_FACTOR = 8
#: Rows of one spend report page: finance reads per-PR groups (over 100,000 a quarter) a page
#: at a time, not in one response.
SPEND_ROWS_DEFAULT = 1_000
SPEND_ROWS_MAX = 10_000
RUN_OUT_HORIZON_DAYS = 36_500


def _measures() -> dict[str, Any]:
    return {name: Coalesce(Sum(name), 0) for name in MEASURES}


def _entries(*, organization: Organization, pools: QuerySet[Pool]) -> QuerySet[SpendEntry]:
    spend_entries_catch_up()
    return SpendEntry.objects.filter(organization=organization, pool__in=pools.values("pk"))


def _share(part: int, whole: int) -> str | None:
    if whole <= 0:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN))


@dataclass(frozen=True)
class SpendReport:
    currency: str
    group_by: list[str]
    bucket: str | None
    rows: list[dict[str, Any]]  # one page: ``limit`` groups from ``offset``, in group order
    total: dict[str, int]  # the whole range, every group: what reconciles with the ledger
    row_count: int  # the groups of the whole range
    labels: dict[str, dict[Any, str]] = field(default_factory=dict)


@spend_snapshot
def spend_report(
    *,
    organization: Organization,
    pools: QuerySet[Pool],
    start: datetime,
    end: datetime,
    group_by: list[str],
    bucket: str | None = None,
    limit: int = SPEND_ROWS_DEFAULT,
    offset: int = 0,
) -> SpendReport:
    """Spend, calls and tokens in ``[start, end)`` grouped by dimensions and an optional day or
    week bucket, one page of ``limit`` groups from ``offset`` (the total covers every group).
    Raises InvalidInputError (unknown dimension or bucket, empty range)."""
    # Per dimension: the expression over the rollup (None: it has no such column) and over
    # the entries.
    columns: dict[str, tuple[Any, Any]] = {}
    for dimension in group_by:
        if dimension in DIMENSIONS:
            columns[dimension] = (F(DIMENSIONS[dimension]), F(DIMENSIONS[dimension]))
        elif dimension.startswith("tag:") and len(dimension) > 4:
            tag = KeyTextTransform(dimension[4:], "tags")
            columns[dimension] = (None, Coalesce(tag, _blank(), output_field=CharField()))
        else:
            raise InvalidInputError(f"Spend cannot be grouped by {dimension!r}.")
    if bucket is not None and bucket not in BUCKETS:
        raise InvalidInputError("The bucket is day or week.")
    sources = spend_sources(
        organization=organization, pools=pools, start=start, end=end,
        whole_days=all(rollup is not None for rollup, _ in columns.values()),
    )  # fmt: skip
    # The entries' buckets in the rollup's timezone, so that both parts' days are the same.
    if bucket == "day":
        columns["bucket"] = (F("day"), TruncDate("occurred_at", tzinfo=sources.zone))
    elif bucket == "week":
        week = Cast(TruncWeek("occurred_at", tzinfo=sources.zone), DateField())
        columns["bucket"] = (F("week"), week)
    rows: list[dict[str, Any]] = []
    row_count = 0
    if columns:
        grouped = spend_grouped(sources, columns, measures=MEASURES, limit=limit, offset=offset)
        rows, row_count = grouped.rows, grouped.row_count
    return SpendReport(
        currency=organization.currency,
        group_by=group_by,
        bucket=bucket,
        rows=rows,
        total=spend_total(sources, MEASURES),
        row_count=row_count,
        labels=_labels(group_by, rows),
    )


def _blank() -> Any:
    return Value("")


def _labels(group_by: list[str], rows: list[dict[str, Any]]) -> dict[str, dict[Any, str]]:
    """Names for the ids a report groups by (teams, members, pools)."""
    labels: dict[str, dict[Any, str]] = {}
    loaders: dict[str, Any] = {
        "team": lambda ids: {t.pk: t.name for t in Team.objects.filter(pk__in=ids)},
        "member": lambda ids: {
            m.pk: m.user.get_username()
            for m in Member.objects.filter(pk__in=ids).select_related("user")
        },
        "pool": lambda ids: {
            p.pk: str(p)
            for p in Pool.objects.filter(pk__in=ids).select_related(
                "organization", "team", "member__user", "period"
            )
        },
    }
    for dimension, load in loaders.items():
        if dimension in group_by:
            labels[dimension] = load({row[dimension] for row in rows if row[dimension]})
    return labels


@dataclass(frozen=True)
class AllocationRow:
    pool: Pool | None
    team: Team | None
    allocated: int  # moved in minus moved out: what the pool (or team) was left to spend
    spent: int
    reserved: int
    available: int

    @property
    def share_used(self) -> str | None:
        return _share(self.spent, self.allocated)


@spend_snapshot
def allocation_report(
    *, period: Period, pools: QuerySet[Pool]
) -> tuple[list[AllocationRow], list[AllocationRow]]:
    """Allocation against consumption per pool and per team (its team pool, shared pools and
    members' pools; moves inside a team cancel out) for one period, read from the ledger's
    account counters."""
    rows = []
    for pool in (
        pools.filter(period=period)
        .select_related("account", "spend_account", "team", "member__user", "member__team")
        .select_related("organization", "period")
        .order_by("pk")
    ):
        balance = pool_balance_of(account=pool.account, spend=pool.spend_account)
        team = pool.member.team if pool.member is not None else pool.team
        rows.append(
            AllocationRow(
                pool=pool,
                team=team,
                allocated=balance.budget - balance.moved_out,
                spent=balance.spent,
                reserved=balance.reserved,
                available=balance.available,
            )
        )
    teams: dict[int, list[AllocationRow]] = defaultdict(list)
    for row in rows:
        if row.team is not None:
            teams[row.team.pk].append(row)
    team_rows = [
        AllocationRow(
            pool=None,
            team=members[0].team,
            allocated=sum(r.allocated for r in members),
            spent=sum(r.spent for r in members),
            reserved=sum(r.reserved for r in members),
            available=sum(r.available for r in members),
        )
        for members in teams.values()
    ]
    return rows, sorted(team_rows, key=lambda r: r.team.name if r.team else "")


@dataclass(frozen=True)
class PoolBurn:
    pool: Pool
    available: int
    daily_rate: int  # micro-units per day, the last 7 days' average
    runs_out_on: datetime | None


@dataclass(frozen=True)
class BurnReport:
    currency: str
    at: datetime
    hourly: list[dict[str, Any]]  # the last 24 hours, one row per hour (0 when nothing)
    last_24_hours: int
    daily_average_7_days: int
    period_to_date: int
    forecast_period_end: int
    pools: list[PoolBurn]


@spend_snapshot
def burn_report(
    *, organization: Organization, period: Period, pools: QuerySet[Pool], at: datetime
) -> BurnReport:
    """Cost per hour over the last 24 hours, the 7-day daily average, and at that rate the
    period's end spend and the day each pool runs out. Rates are whole micro-units, rounded
    down; a forecast is an estimate, the rest is measured. Raises InvalidInputError (``at``
    too close to the calendar's start for a week before it)."""
    try:
        at - timedelta(days=7)
    except OverflowError:
        raise InvalidInputError("The burn is measured at a date-time after year 1.") from None
    entries = _entries(organization=organization, pools=pools)
    day_start = at - timedelta(hours=24)
    hour = at.replace(minute=0, second=0, microsecond=0)
    per_hour = {
        row["hour"]: int(row["amount"])
        for row in entries.filter(occurred_at__gte=hour - timedelta(hours=23), occurred_at__lt=at)
        .annotate(hour=TruncHour("occurred_at", tzinfo=ZoneInfo("UTC")))
        .values("hour")
        .annotate(amount=Sum("amount"))
    }
    hours = [hour - timedelta(hours=23 - i) for i in range(24)]
    hourly = [{"hour": h, "amount": per_hour.get(h, 0)} for h in hours]
    last_24 = _sum(entries.filter(occurred_at__gte=day_start, occurred_at__lt=at))
    week = entries.filter(occurred_at__gte=at - timedelta(days=7), occurred_at__lt=at)
    daily = _sum(week) // 7
    to_date = _sum(entries.filter(occurred_at__gte=period.starts_at, occurred_at__lt=at))
    remaining = max(period.ends_at - at, timedelta(0))
    forecast = to_date + int(daily * Decimal(remaining.total_seconds()) / 86_400)
    rates = {
        row["pool_id"]: int(row["amount"]) // 7
        for row in week.values("pool_id").annotate(amount=Sum("amount"))
    }
    pool_rows = []
    for pool in pools.filter(period=period).select_related(
        "account", "spend_account", "organization", "period", "team", "member__user"
    ):
        available = pool.account.available
        rate = rates.get(pool.pk, 0)
        runs_out = None
        days = Decimal(max(available, 0)) / rate if rate > 0 else None
        # Beyond a century is "not at this rate" (and past it the calendar ends).
        if days is not None and days <= RUN_OUT_HORIZON_DAYS:
            runs_out = _days_after(at, days)
        pool_rows.append(
            PoolBurn(pool=pool, available=available, daily_rate=rate, runs_out_on=runs_out)
        )
    return BurnReport(
        currency=organization.currency, at=at, hourly=hourly, last_24_hours=last_24,
        daily_average_7_days=daily, period_to_date=to_date, forecast_period_end=forecast,
        pools=sorted(pool_rows, key=lambda p: (p.runs_out_on is None, p.runs_out_on or at)),
    )  # fmt: skip


def _days_after(at: datetime, days: Decimal) -> datetime | None:
    """``days`` after ``at``, or None past the calendar's end (year 9999)."""
    try:
        return at + timedelta(days=float(days))
    except OverflowError:
        return None


def _sum(entries: Any) -> int:
    return int(entries.aggregate(total=Coalesce(Sum("amount"), 0))["total"])


@dataclass(frozen=True)
class OutlierReport:
    currency: str
    top_members: list[dict[str, Any]]
    top_prs: list[dict[str, Any]]
    expensive_prs: list[dict[str, Any]]  # above OUTLIER_FACTOR times their team's median PR


@spend_snapshot
def outlier_report(
    *, organization: Organization, pools: QuerySet[Pool], start: datetime, end: datetime,
    limit: int = 10,
) -> OutlierReport:  # fmt: skip
    """The top spenders and pull requests in ``[start, end)``, and the PRs costing more than
    eight times their team's median PR. Raises InvalidInputError (empty range)."""
    sources = spend_sources(organization=organization, pools=pools, start=start, end=end)
    members = spend_grouped(
        sources.filter(Q(member__isnull=False)),
        {"member_id": (F("member_id"), F("member_id"))}, measures=("amount", "calls"),
    )  # fmt: skip
    ranked = sorted(members.rows, key=lambda row: (-row["amount"], row["member_id"]))[:limit]
    usernames = dict(
        Member.objects.filter(pk__in=[row["member_id"] for row in ranked]).values_list(
            "pk", "user__username"
        )
    )
    top_members = [{**row, "username": usernames[row["member_id"]]} for row in ranked]
    prs = spend_grouped(
        sources.filter(~Q(pr="")),
        {name: (F(name), F(name)) for name in ("team_id", "repo", "pr")},
        measures=("amount", "calls"),
    ).rows
    by_pr: dict[tuple[str, str], int] = defaultdict(int)
    for row in prs:
        by_pr[(row["repo"], row["pr"])] += int(row["amount"])
    top_prs = [
        {"repo": repo, "pr": pr, "amount": amount}
        for (repo, pr), amount in sorted(by_pr.items(), key=lambda item: (-item[1], item[0]))
    ][:limit]
    per_team: dict[int | None, list[int]] = defaultdict(list)
    for row in prs:
        per_team[row["team_id"]].append(int(row["amount"]))
    medians = {team: statistics.median(amounts) for team, amounts in per_team.items()}
    # A team with one PR has no outliers: that PR is its own median.
    expensive = [
        {**row, "amount": int(row["amount"]), "team_median": int(medians[row["team_id"]])}
        for row in prs
        if len(per_team[row["team_id"]]) > 1
        and row["amount"] > OUTLIER_FACTOR * medians[row["team_id"]]
    ]
    expensive.sort(key=lambda row: (-row["amount"], row["repo"], row["pr"]))
    return OutlierReport(
        currency=organization.currency, top_members=top_members, top_prs=top_prs,
        expensive_prs=expensive,
    )  # fmt: skip


@spend_snapshot
def savings_report(
    *, organization: Organization, period: Period, pools: QuerySet[Pool], teams: QuerySet[Team]
) -> list[dict[str, Any]]:
    """Measured savings per lever, team and period: the model downgrade's saving is the usage
    priced at the model requested minus the charge. Every visible team has a row, 0 included."""
    sources = spend_sources(
        organization=organization, pools=pools, start=period.starts_at, end=period.ends_at
    )
    measured = {
        row["team_id"]: row
        for row in spend_grouped(
            sources, {"team_id": (F("team_id"), F("team_id"))},
            measures=("saving", "downgraded_calls", "amount"),
        ).rows
    }  # fmt: skip
    rows = []
    for team in teams.order_by("name"):
        found = measured.get(team.pk, {})
        rows.append(
            {
                "lever": "model_downgrade", "team": team, "period": period,
                "saving": found.get("saving", 0),
                "downgraded_calls": found.get("downgraded_calls", 0),
                "spent": found.get("amount", 0),
            }
        )  # fmt: skip
    return rows


@spend_snapshot
def chargeback_report(
    *, organization: Organization, period: Period, pools: QuerySet[Pool]
) -> list[dict[str, Any]]:
    """Spend per cost center in the period's range (teams without one, and the organization
    pool, under ""). Sums to the ledger's spend of the range."""
    sources = spend_sources(
        organization=organization, pools=pools, start=period.starts_at, end=period.ends_at
    )
    cost_center = Coalesce(F("team__cost_center"), _blank())
    return spend_grouped(
        sources, {"cost_center": (cost_center, cost_center)}, measures=MEASURES
    ).rows


@dataclass(frozen=True)
class Receipt:
    commit: Commit
    currency: str
    models: list[dict[str, Any]]
    totals: dict[str, int]

    @property
    def trailers(self) -> list[str]:
        """Lines a commit hook pastes into the message: ``AI-Model:`` and ``AI-Cost:``."""
        names = ", ".join(row["model"] for row in self.models if row["model"]) or "none"
        return [
            f"AI-Model: {names}",
            f"AI-Cost: {format_micros(self.totals['amount'], self.currency)}",
        ]


@spend_snapshot
def commit_receipt(*, commit: Commit, pools: QuerySet[Pool]) -> Receipt:
    """The model mix, tokens and cost of the sessions and authorizations linked to a commit."""
    links = list(
        CommitLink.objects.filter(commit=commit).values_list("session_id", "authorization_id")
    )
    entries = _entries(organization=commit.organization, pools=pools).filter(
        entries_for_sessions(
            organization_id=commit.organization_id,
            session_ids=[session for session, _ in links],
            authorization_ids=[str(a) for _, a in links if a],
        )
    )
    models = [
        {**row, **{k: int(row[k]) for k in MEASURES}}
        for row in entries.values("model").annotate(**_measures()).order_by("-amount", "model")
    ]
    totals = {k: int(v) for k, v in entries.aggregate(**_measures()).items()}
    return Receipt(
        commit=commit, currency=commit.organization.currency, models=models, totals=totals
    )


_PULL_REQUEST_COST_SQL = """
WITH merged AS (
    SELECT c.id, c.repo, c.pr_number AS pr,
           {week} AS week
    FROM budgets_commit c
    WHERE c.organization_id = %s AND c.is_merged AND c.pr_number IS NOT NULL
      AND c.merged_at >= %s AND c.merged_at < %s
),
pull_requests AS (SELECT repo, pr, max(week) AS week FROM merged GROUP BY repo, pr),
by_session AS (
    SELECT DISTINCT m.repo, m.pr, l.session_id
    FROM budgets_commitlink l JOIN merged m ON m.id = l.commit_id WHERE l.session_id <> ''
),
by_authorization AS (
    SELECT DISTINCT m.repo, m.pr, l.authorization_id
    FROM budgets_commitlink l JOIN merged m ON m.id = l.commit_id
    WHERE l.authorization_id IS NOT NULL
),
sessions AS NOT MATERIALIZED (%s),
entries AS NOT MATERIALIZED (%s),
-- Each line once per PR: by its session (summed per day and dimensions in the rollup, which
-- holds every entry), or else by its authorization.
lines AS (
    SELECT k.repo, k.pr, r.team_id, r.amount
    FROM by_session k JOIN sessions r ON r.session_id = k.session_id
    UNION ALL
    SELECT k.repo, k.pr, e.team_id, e.amount
    FROM by_authorization k JOIN entries e ON e.authorization_id = k.authorization_id
    WHERE NOT EXISTS (
        SELECT 1 FROM by_session s
        WHERE s.repo = k.repo AND s.pr = k.pr AND s.session_id = e.session_id
    )
),
per_pull_request AS (
    SELECT repo, pr, team_id, sum(amount) AS amount FROM lines GROUP BY repo, pr, team_id
)
SELECT p.week, l.team_id, l.repo, count(*), sum(l.amount)
FROM per_pull_request l JOIN pull_requests p ON p.repo = l.repo AND p.pr = l.pr
GROUP BY p.week, l.team_id, l.repo
ORDER BY p.week, coalesce(l.team_id, 0), l.repo
"""


def _merge_week(
    *, organization: Organization, start: datetime, end: datetime
) -> tuple[str | None, list[Any]]:
    """SQL for the Monday (local) of ``c.merged_at``'s week. PostgreSQL computes it; SQLite
    (the embedded demo) has no time zones, so the weeks of the range's merged commits are
    computed here and passed in (None: no merged commit in the range)."""
    if connection.vendor == "postgresql":
        return "date_trunc('week', c.merged_at AT TIME ZONE %s)::date", [organization.timezone]
    tz = zone(organization.timezone)
    merged = Commit.objects.filter(
        organization=organization, is_merged=True, pr_number__isnull=False,
        merged_at__gte=start, merged_at__lt=end,
    ).values_list("pk", "merged_at")  # fmt: skip
    params: list[Any] = []
    for pk, merged_at in merged:
        assert merged_at is not None  # filtered on its range
        local = merged_at.astimezone(tz).date()
        params += [pk, (local - timedelta(days=local.weekday())).isoformat()]
    if not params:
        return None, []
    return "CASE c.id " + "WHEN %s THEN %s " * (len(params) // 2) + "END", params


@spend_snapshot
def pr_cost_report(
    *, organization: Organization, pools: QuerySet[Pool], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Cost per merged pull request per team and repo, by week of merge: the spend linked to
    the PR's commits (each line once per PR, however many of its commits it is linked to).
    Raises InvalidInputError (empty range)."""
    if start >= end:
        raise InvalidInputError("The range's start must be before its end.")
    # One statement: the links, the entries they reach (by the session index) and the sums
    # per PR stay in PostgreSQL; only the weekly rows come back.
    entries = _entries(organization=organization, pools=pools)
    lines = entries.values("transfer_id", "team_id", "amount", "session_id", "authorization_id")
    sessions = SpendRollup.objects.filter(
        organization=organization, pool__in=pools.values("pk")
    ).values("team_id", "amount", "session_id")
    entries_sql, entries_params = lines.query.sql_with_params()
    sessions_sql, sessions_params = sessions.query.sql_with_params()
    week_sql, week_params = _merge_week(organization=organization, start=start, end=end)
    if week_sql is None:
        return []
    sql = (
        _PULL_REQUEST_COST_SQL.replace("{week}", week_sql, 1)
        .replace(
            "sessions AS NOT MATERIALIZED (%s)", f"sessions AS NOT MATERIALIZED ({sessions_sql})", 1
        )
        .replace(
            "entries AS NOT MATERIALIZED (%s)", f"entries AS NOT MATERIALIZED ({entries_sql})", 1
        )
    )
    params = [
        *week_params, organization.pk, start, end, *sessions_params, *entries_params,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    rows = []
    for found_week, team, repo, merged_prs, amount in found:
        week = date.fromisoformat(found_week) if isinstance(found_week, str) else found_week
        rows.append(
            {
                "week": week, "team_id": team, "repo": repo, "merged_prs": int(merged_prs),
                "amount": int(amount), "per_pr": int(amount) // int(merged_prs),
            }
        )  # fmt: skip
    return rows
