"""Report endpoints: thin views over budgets.reports, scoped to the pools the caller sees."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from api.finance import report_serializers as s
from api.finance.base import IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, MemberApi, idempotent
from api.money import money
from budgets.commits import commit_record
from budgets.models import Commit, CommitLink, Member, Period
from budgets.reports import (
    OUTLIER_FACTOR,
    allocation_report,
    burn_report,
    chargeback_report,
    commit_receipt,
    outlier_report,
    pr_cost_report,
    savings_report,
    spend_report,
)
from budgets.visibility import commits_visible_to, pools_visible_to, teams_visible_to
from ledger.money import format_micros


def _query(serializer: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    query = serializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


def _period(member: Member, period_id: int) -> Period:
    found: Period = get_object_or_404(
        Period.objects.filter(organization_id=member.organization_id), pk=period_id
    )
    return found


def _measures(row: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "amount": money(row["amount"], currency), "calls": row["calls"],
        "input_tokens": row["input_tokens"], "cached_input_tokens": row["cached_input_tokens"],
        "output_tokens": row["output_tokens"],
    }  # fmt: skip


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)


class SpendReportApi(MemberApi):
    @extend_schema(
        operation_id="report_spend", parameters=[s.SpendQuerySerializer],
        responses={200: s.SpendReportOutputSerializer, **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        member = self.member(request)
        query = _query(s.SpendQuerySerializer, request)
        group_by = [part.strip() for part in query["group_by"].split(",") if part.strip()]
        report = spend_report(
            organization=member.organization, pools=pools_visible_to(member=member),
            start=query["start"], end=query["end"], group_by=group_by,
            bucket=query.get("bucket"), limit=query["limit"], offset=query["offset"],
        )  # fmt: skip
        end_of_page = query["offset"] + len(report.rows)
        keys = [*group_by, *(["bucket"] if report.bucket else [])]
        rows = [
            {
                "group": {key: _text(row[key]) for key in keys},
                "labels": {
                    dimension: names[row[dimension]]
                    for dimension, names in report.labels.items()
                    if row[dimension] in names
                },
                **_measures(row, report.currency),
            }
            for row in report.rows
        ]
        return Response(
            {
                "start": query["start"], "end": query["end"], "group_by": group_by,
                "bucket": report.bucket, "rows": rows,
                "total": _measures(report.total, report.currency),
                "row_count": report.row_count, "limit": query["limit"],
                "offset": query["offset"],
                "next_offset": end_of_page if end_of_page < report.row_count else None,
            }
        )  # fmt: skip


class AllocationReportApi(MemberApi):
    @extend_schema(
        operation_id="report_allocation", parameters=[s.PeriodQuerySerializer],
        responses={200: s.AllocationReportOutputSerializer, **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        member = self.member(request)
        period = _period(member, _query(s.PeriodQuerySerializer, request)["period"])
        pools, teams = allocation_report(period=period, pools=pools_visible_to(member=member))
        currency = member.organization.currency

        def row(entry: Any) -> dict[str, Any]:
            return {
                "pool": entry.pool.pk if entry.pool else None,
                "team": entry.team.pk if entry.team else None,
                "name": str(entry.pool) if entry.pool else str(entry.team),
                **{
                    name: money(getattr(entry, name), currency)
                    for name in ("allocated", "spent", "reserved", "available")
                },
                "share_used": entry.share_used,
            }

        return Response(
            {
                "period": period.pk,
                "pools": [row(p) for p in pools],
                "teams": [row(t) for t in teams],
            }
        )


class BurnReportApi(MemberApi):
    @extend_schema(
        operation_id="report_burn", parameters=[s.BurnQuerySerializer],
        responses={200: s.BurnReportOutputSerializer, **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        member = self.member(request)
        query = _query(s.BurnQuerySerializer, request)
        period = _period(member, query["period"])
        report = burn_report(
            organization=member.organization, period=period,
            pools=pools_visible_to(member=member), at=query.get("at") or timezone.now(),
        )  # fmt: skip
        currency = report.currency
        return Response(
            {
                "period": period.pk, "at": report.at,
                "hourly": [
                    {"hour": h["hour"], "amount": money(h["amount"], currency)}
                    for h in report.hourly
                ],
                **{
                    name: money(getattr(report, name), currency)
                    for name in ("last_24_hours", "daily_average_7_days", "period_to_date",
                                 "forecast_period_end")
                },
                "pools": [
                    {
                        "pool": p.pool.pk, "name": str(p.pool),
                        "available": money(p.available, currency),
                        "daily_rate": money(p.daily_rate, currency),
                        "runs_out_on": p.runs_out_on.date() if p.runs_out_on else None,
                    }
                    for p in report.pools
                ],
            }
        )  # fmt: skip


class OutlierReportApi(MemberApi):
    @extend_schema(
        operation_id="report_outliers", parameters=[s.RangeQuerySerializer],
        responses={200: s.OutlierReportOutputSerializer, **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        member = self.member(request)
        query = _query(s.RangeQuerySerializer, request)
        report = outlier_report(
            organization=member.organization, pools=pools_visible_to(member=member),
            start=query["start"], end=query["end"],
        )  # fmt: skip
        currency = report.currency
        return Response(
            {
                "top_members": [
                    {"member": r["member_id"], "username": r["username"],
                     "amount": money(r["amount"], currency), "calls": r["calls"]}
                    for r in report.top_members
                ],
                "top_prs": [
                    {"repo": r["repo"], "pr": r["pr"], "amount": money(r["amount"], currency)}
                    for r in report.top_prs
                ],
                "expensive_prs": [
                    {"repo": r["repo"], "pr": r["pr"], "team": r["team_id"],
                     "amount": money(r["amount"], currency),
                     "team_median": money(r["team_median"], currency)}
                    for r in report.expensive_prs
                ],
                "factor": OUTLIER_FACTOR,
            }
        )  # fmt: skip


class SavingsReportApi(MemberApi):
    @extend_schema(
        operation_id="report_savings", parameters=[s.PeriodQuerySerializer],
        responses={200: s.SavingRowOutputSerializer(many=True), **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        member = self.member(request)
        period = _period(member, _query(s.PeriodQuerySerializer, request)["period"])
        rows = savings_report(
            organization=member.organization, period=period,
            pools=pools_visible_to(member=member), teams=teams_visible_to(member=member),
        )  # fmt: skip
        currency = member.organization.currency
        return Response(
            [
                {
                    "lever": r["lever"], "team": r["team"].pk, "team_name": r["team"].name,
                    "period": period.pk, "saving": money(r["saving"], currency),
                    "downgraded_calls": r["downgraded_calls"], "spent": money(r["spent"], currency),
                }
                for r in rows
            ]
        )  # fmt: skip


def _chargeback(request: Request, member: Member) -> tuple[Period, list[dict[str, Any]]]:
    period = _period(member, _query(s.PeriodQuerySerializer, request)["period"])
    return period, chargeback_report(
        organization=member.organization, period=period, pools=pools_visible_to(member=member)
    )


class ChargebackReportApi(MemberApi):
    @extend_schema(
        operation_id="report_chargeback", parameters=[s.PeriodQuerySerializer],
        responses={200: s.ChargebackReportOutputSerializer, **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        member = self.member(request)
        period, rows = _chargeback(request, member)
        currency = member.organization.currency
        return Response(
            {
                "period": period.pk,
                "rows": [{"cost_center": r["cost_center"], **_measures(r, currency)} for r in rows],
                "total": money(sum(r["amount"] for r in rows), currency),
            }
        )


def _csv_text(value: str) -> str:
    """A text cell a spreadsheet will not run: a leading =, +, -, @, tab or CR is quoted with
    an apostrophe (CSV formula injection; cost-center names are free text)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class ChargebackCsvApi(MemberApi):
    @extend_schema(
        operation_id="report_chargeback_csv", parameters=[s.PeriodQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="One row per cost center."
            ),
            **READ_ERRORS,
        },
    )  # fmt: skip
    def get(self, request: Request) -> HttpResponse:
        member = self.member(request)
        period, rows = _chargeback(request, member)
        currency = member.organization.currency
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["cost_center", "amount", "currency", "calls", "input_tokens",
                         "cached_input_tokens", "output_tokens"])  # fmt: skip
        for r in rows:
            amount = format_micros(r["amount"], currency).split(" ")[0]
            writer.writerow([_csv_text(r["cost_center"]), amount, currency, r["calls"],
                             r["input_tokens"], r["cached_input_tokens"],
                             r["output_tokens"]])  # fmt: skip
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="chargeback-{member.organization.slug}-{period}.csv"'.replace(
                " ", "-"
            )
        )
        return response


class PullRequestCostReportApi(MemberApi):
    @extend_schema(
        operation_id="report_pull_request_cost", parameters=[s.RangeQuerySerializer],
        responses={200: s.PullRequestWeekOutputSerializer(many=True), **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        member = self.member(request)
        query = _query(s.RangeQuerySerializer, request)
        rows = pr_cost_report(
            organization=member.organization, pools=pools_visible_to(member=member),
            start=query["start"], end=query["end"],
        )  # fmt: skip
        currency = member.organization.currency
        return Response(
            [
                {
                    "week": r["week"], "team": r["team_id"], "repo": r["repo"],
                    "merged_prs": r["merged_prs"], "amount": money(r["amount"], currency),
                    "per_pr": money(r["per_pr"], currency),
                }
                for r in rows
            ]
        )  # fmt: skip


def _commit_body(commit: Commit) -> dict[str, Any]:
    links = list(CommitLink.objects.filter(commit=commit).order_by("pk"))
    return {
        "repo": commit.repo, "sha": commit.sha, "pr_number": commit.pr_number,
        "is_merged": commit.is_merged, "merged_at": commit.merged_at, "author": commit.author,
        "session_ids": [link.session_id for link in links if link.session_id],
        "authorization_ids": [link.authorization_id for link in links if link.authorization_id],
    }  # fmt: skip


class CommitCreateApi(MemberApi):
    @extend_schema(
        operation_id="commit_record", parameters=[IDEMPOTENCY_KEY],
        request=s.CommitCreateInputSerializer,
        responses={201: s.CommitOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request) -> Response:
        member = self.member(request)
        data = s.CommitCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        commit = commit_record(member=member, **data.validated_data)
        return Response(_commit_body(commit), status=status.HTTP_201_CREATED)


class CommitReceiptApi(MemberApi):
    @extend_schema(
        operation_id="commit_receipt",
        responses={200: s.ReceiptOutputSerializer, **READ_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, repo: str, sha: str) -> Response:
        member = self.member(request)
        commit = get_object_or_404(
            commits_visible_to(member=member).select_related("organization"),
            repo=repo, sha=sha.lower(),
        )  # fmt: skip
        receipt = commit_receipt(commit=commit, pools=pools_visible_to(member=member))
        return Response(
            {
                "repo": commit.repo, "sha": commit.sha, "pr_number": commit.pr_number,
                "models": [
                    {"model": m["model"], **_measures(m, receipt.currency)} for m in receipt.models
                ],
                "total": _measures(receipt.totals, receipt.currency),
                "trailers": receipt.trailers,
            }
        )  # fmt: skip
