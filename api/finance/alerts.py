"""Alerts over the API (docs/alerts.md): list, read, acknowledge; scoped like everything else."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from api.finance.base import IDEMPOTENCY_KEY, WRITE_ERRORS, MemberApi, idempotent
from api.finance.fields import UtcDateTimeFilter
from api.finance.views import ScopedReadApi, documented
from budgets.alerts import alert_acknowledge
from budgets.models import Alert, AlertKind
from budgets.visibility import alerts_visible_to


class AlertOutputSerializer(serializers.ModelSerializer[Alert]):
    class Meta:
        model = Alert
        fields = (
            "id", "kind", "key", "period", "pool", "message", "details", "raised_at",
            "acknowledged_at", "acknowledged_by",
        )  # fmt: skip


class AlertFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=AlertKind.choices)
    acknowledged = filters.BooleanFilter(
        field_name="acknowledged_at", lookup_expr="isnull", exclude=True
    )
    raised_after = UtcDateTimeFilter(field_name="raised_at", lookup_expr="gte")
    raised_before = UtcDateTimeFilter(field_name="raised_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ("kind", "pool", "period", "acknowledged")


class AlertRead(ScopedReadApi):
    visible = staticmethod(alerts_visible_to)
    model = Alert
    serializer_class = AlertOutputSerializer
    filterset_class = AlertFilter
    ordering_fields = ("raised_at", "id")
    ordering = ("-raised_at", "-id")


@documented("alert_list", AlertOutputSerializer)
class AlertListApi(AlertRead, generics.ListAPIView[Any]):
    pass


@documented("alert_get", AlertOutputSerializer)
class AlertDetailApi(AlertRead, generics.RetrieveAPIView[Any]):
    pass


class AlertAcknowledgeApi(MemberApi):
    @extend_schema(
        operation_id="alert_acknowledge", parameters=[IDEMPOTENCY_KEY], request=None,
        responses={200: AlertOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, alert_id: int) -> Response:
        member = self.member(request)
        alert = get_object_or_404(alerts_visible_to(member=member), pk=alert_id)
        done = alert_acknowledge(alert=alert, member=member)
        return Response(AlertOutputSerializer(done).data, status=status.HTTP_200_OK)
