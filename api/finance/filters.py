"""Query filters of the finance API (django-filter): ?name=value, documented in the schema."""

from __future__ import annotations

import re
from typing import Any

import django_filters as filters
from django.db.models import Q, QuerySet

from allocation.models import (
    Exemption,
    ExemptionStatus,
    Plan,
    PlanStatus,
    TransferRequest,
    TransferRequestStatus,
)
from api.finance.fields import UtcDateTimeFilter
from budgets.errors import InvalidInputError
from budgets.models import (
    Authorization,
    AuthorizationStatus,
    Decision,
    Member,
    Period,
    PeriodStatus,
    Pool,
    PoolKind,
    Role,
    Team,
)
from budgets.spend import spend_entries_catch_up
from ledger.models import Transfer, TransferCode, TransferPhase

TAG_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _tag_filter(queryset: QuerySet[Any], prefix: str, value: str) -> QuerySet[Any]:
    name, separator, tag_value = value.partition(":")
    if not separator or not TAG_NAME.fullmatch(name) or "__" in name:
        raise InvalidInputError("Filter by tag as name:value, e.g. repo:acme/payments.")
    return queryset.filter(**{f"{prefix}tags__{name}": tag_value})


class TeamFilter(filters.FilterSet):
    class Meta:
        model = Team
        fields = ("parent", "is_active", "cost_center")


class MemberFilter(filters.FilterSet):
    role = filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Member
        fields = ("team", "role", "is_active")


class PeriodFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=PeriodStatus.choices)

    class Meta:
        model = Period
        fields = ("status", "fiscal_year", "quarter")


class PoolFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=PoolKind.choices)

    class Meta:
        model = Pool
        fields = ("period", "kind", "team", "member")


class TransferFilter(filters.FilterSet):
    pool = filters.NumberFilter(method="filter_pool", help_text="Touching this pool's accounts.")
    code = filters.MultipleChoiceFilter(choices=TransferCode.choices)
    phase = filters.MultipleChoiceFilter(choices=TransferPhase.choices)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    tag = filters.CharFilter(method="filter_tag", help_text="name:value, on spend lines.")

    class Meta:
        model = Transfer
        fields = ("pool", "code", "phase", "created_after", "created_before", "tag")

    def filter_pool(self, queryset: QuerySet[Transfer], name: str, value: int) -> Any:
        pool = Pool.objects.filter(pk=value).values_list("account_id", "spend_account_id").first()
        if pool is None:
            return queryset.none()
        return queryset.filter(Q(debit_account_id__in=pool) | Q(credit_account_id__in=pool))

    def filter_tag(self, queryset: QuerySet[Transfer], name: str, value: str) -> Any:
        spend_entries_catch_up()  # tags live on the spend entries: bring them up to date first
        return _tag_filter(queryset, "spend_entry__", value)


class AuthorizationFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=AuthorizationStatus.choices)
    decision = filters.ChoiceFilter(choices=Decision.choices)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    tag = filters.CharFilter(method="filter_tag", help_text="name:value, e.g. pr:482.")

    class Meta:
        model = Authorization
        fields = ("pool", "member", "status", "decision", "model", "session_id", "tag")

    def filter_tag(self, queryset: QuerySet[Authorization], name: str, value: str) -> Any:
        return _tag_filter(queryset, "", value)


class TransferRequestFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=TransferRequestStatus.choices)

    class Meta:
        model = TransferRequest
        fields = ("status", "source", "target", "requester")


class ExemptionFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=ExemptionStatus.choices)
    active_at = UtcDateTimeFilter(
        method="filter_active_at", help_text="Whose window contains this instant."
    )

    class Meta:
        model = Exemption
        fields = ("status", "pool", "source_pool", "requester", "use_case", "active_at")

    def filter_active_at(self, queryset: QuerySet[Exemption], name: str, value: Any) -> Any:
        return queryset.filter(starts_at__lte=value, ends_at__gt=value)


class PlanFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=PlanStatus.choices)

    class Meta:
        model = Plan
        fields = ("period", "status")
