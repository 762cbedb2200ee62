"""Exemptions and quarterly plans over the API (issue 5's services): scoped reads and thin
writes, on the same pattern as the transfer requests in ``api/finance/views.py``."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from allocation.exemptions import (
    exemption_approve,
    exemption_cancel,
    exemption_reject,
    exemption_request,
    exemption_revoke,
)
from allocation.models import Exemption, Plan, PlanLine
from allocation.planning import (
    plan_approve,
    plan_compare,
    plan_line_set,
    plan_propose,
    plan_total_set,
)
from allocation.selectors import exemptions_visible_to, plan_lines_visible_to, plans_visible_to
from api.finance import filters as f
from api.finance import serializers as s
from api.finance.base import IDEMPOTENCY_KEY, READ_ERRORS, WRITE_ERRORS, MemberApi, idempotent
from api.finance.views import ScopedReadApi, answer, documented
from budgets.models import Member, Pool
from budgets.selectors import member_sees_organization
from budgets.visibility import periods_visible_to, pools_visible_to

# --- exemptions ----------------------------------------------------------------------------


class ExemptionRead(ScopedReadApi):
    visible = staticmethod(exemptions_visible_to)
    model = Exemption
    serializer_class = s.ExemptionOutputSerializer
    filterset_class = f.ExemptionFilter
    ordering_fields = ("id", "created_at", "starts_at", "ends_at", "amount")


@documented("exemption_list", s.ExemptionOutputSerializer)
class ExemptionCollectionApi(ExemptionRead, generics.ListAPIView[Any]):
    """GET lists the exemptions the member sees; POST asks for one."""

    @extend_schema(
        operation_id="exemption_request", parameters=[IDEMPOTENCY_KEY],
        request=s.ExemptionRequestInputSerializer,
        responses={201: s.ExemptionOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request) -> Response:
        member = self.member(request)
        data = s.ExemptionRequestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pool: Pool = get_object_or_404(
            pools_visible_to(member=member).select_related("period", "team", "member"),
            pk=data.validated_data["pool"],
        )
        exemption = exemption_request(
            pool=pool, amount=data.validated_data["amount"],
            starts_at=data.validated_data["starts_at"], ends_at=data.validated_data["ends_at"],
            use_case=data.validated_data["use_case"], reason=data.validated_data["reason"],
            source=data.validated_data["source"], requester=member, now=timezone.now(),
        )  # fmt: skip
        return answer(s.ExemptionOutputSerializer, exemption, member)


@documented("exemption_get", s.ExemptionOutputSerializer)
class ExemptionDetailApi(ExemptionRead, generics.RetrieveAPIView[Any]):
    pass


def _visible_exemption(member: Member, exemption_id: int) -> Exemption:
    found: Exemption = get_object_or_404(exemptions_visible_to(member=member), pk=exemption_id)
    return found


class ExemptionApproveApi(MemberApi):
    @extend_schema(
        operation_id="exemption_approve", parameters=[IDEMPOTENCY_KEY], request=None,
        responses={200: s.ExemptionOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, exemption_id: int) -> Response:
        member = self.member(request)
        decided = exemption_approve(
            exemption=_visible_exemption(member, exemption_id), approver=member,
            now=timezone.now(),
        )  # fmt: skip
        return answer(s.ExemptionOutputSerializer, decided, member, status.HTTP_200_OK)


class ExemptionRejectApi(MemberApi):
    @extend_schema(
        operation_id="exemption_reject", parameters=[IDEMPOTENCY_KEY],
        request=s.ExemptionRejectInputSerializer,
        responses={200: s.ExemptionOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, exemption_id: int) -> Response:
        member = self.member(request)
        data = s.ExemptionRejectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = exemption_reject(
            exemption=_visible_exemption(member, exemption_id), approver=member,
            reason=data.validated_data["reason"], now=timezone.now(),
        )  # fmt: skip
        return answer(s.ExemptionOutputSerializer, decided, member, status.HTTP_200_OK)


class ExemptionCancelApi(MemberApi):
    @extend_schema(
        operation_id="exemption_cancel", parameters=[IDEMPOTENCY_KEY], request=None,
        responses={200: s.ExemptionOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, exemption_id: int) -> Response:
        member = self.member(request)
        cancelled = exemption_cancel(
            exemption=_visible_exemption(member, exemption_id), requester=member,
            now=timezone.now(),
        )  # fmt: skip
        return answer(s.ExemptionOutputSerializer, cancelled, member, status.HTTP_200_OK)


class ExemptionRevokeApi(MemberApi):
    @extend_schema(
        operation_id="exemption_revoke", parameters=[IDEMPOTENCY_KEY],
        request=s.ExemptionRevokeInputSerializer,
        responses={200: s.ExemptionOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, exemption_id: int) -> Response:
        member = self.member(request)
        data = s.ExemptionRevokeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        revoked = exemption_revoke(
            exemption=_visible_exemption(member, exemption_id), actor=member,
            reason=data.validated_data["reason"], now=timezone.now(),
        )  # fmt: skip
        return answer(s.ExemptionOutputSerializer, revoked, member, status.HTTP_200_OK)


# --- plans ---------------------------------------------------------------------------------


def _plans_with_lines(member: Member) -> QuerySet[Plan]:
    """Plans the member sees, each with only the lines the member sees (``visible_lines``)."""
    lines = plan_lines_visible_to(member=member).order_by("kind", "pk")
    return plans_visible_to(member=member).prefetch_related(
        Prefetch("lines", queryset=lines, to_attr="visible_lines")
    )


def _plan_context(member: Member) -> dict[str, Any]:
    return {
        "currency": member.organization.currency,
        "sees_organization": member_sees_organization(member=member),
    }


def _plan_answer(member: Member, plan_id: int, http_status: int) -> Response:
    plan = _plans_with_lines(member).get(pk=plan_id)
    return Response(
        s.PlanOutputSerializer(plan, context=_plan_context(member)).data, status=http_status
    )


def _visible_plan(member: Member, plan_id: int) -> Plan:
    found: Plan = get_object_or_404(plans_visible_to(member=member), pk=plan_id)
    return found


class PlanRead(ScopedReadApi):
    visible = staticmethod(plans_visible_to)
    model = Plan
    serializer_class = s.PlanOutputSerializer
    filterset_class = f.PlanFilter
    ordering_fields = ("id", "created_at", "approved_at")

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return Plan.objects.none()
        return _plans_with_lines(self.member(self.request))

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), **_plan_context(self.member(self.request))}


@documented("plan_list", s.PlanOutputSerializer)
class PlanCollectionApi(PlanRead, generics.ListAPIView[Any]):
    """GET lists the organization's plans; POST proposes one from the measured baseline."""

    @extend_schema(
        operation_id="plan_propose", parameters=[IDEMPOTENCY_KEY],
        request=s.PlanProposeInputSerializer,
        responses={201: s.PlanOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request) -> Response:
        member = self.member(request)
        data = s.PlanProposeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        period = get_object_or_404(
            periods_visible_to(member=member), pk=data.validated_data["period"]
        )
        plan = plan_propose(
            period=period, actor=member, now=timezone.now(),
            baseline=data.validated_data["baseline"], buffer=data.validated_data["buffer"],
        )  # fmt: skip
        return _plan_answer(member, plan.pk, status.HTTP_201_CREATED)


@documented("plan_get", s.PlanOutputSerializer)
class PlanDetailApi(PlanRead, generics.RetrieveAPIView[Any]):
    pass


class PlanComparisonApi(MemberApi):
    @extend_schema(
        operation_id="plan_comparison",
        responses={200: s.PlanComparisonOutputSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, plan_id: int) -> Response:
        """Each visible line's planned amount beside what its pool kept and spent."""
        member = self.member(request)
        visible = set(plan_lines_visible_to(member=member).values_list("pk", flat=True))
        rows = plan_compare(plan=_visible_plan(member, plan_id))
        shown = [row for row in rows if row.line.pk in visible]
        context = _plan_context(member)
        return Response([s.PlanComparisonOutputSerializer(r, context=context).data for r in shown])


class PlanLineSetApi(MemberApi):
    @extend_schema(
        operation_id="plan_line_set", parameters=[IDEMPOTENCY_KEY],
        request=s.PlanLineSetInputSerializer,
        responses={200: s.PlanOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, plan_id: int, line_id: int) -> Response:
        member = self.member(request)
        data = s.PlanLineSetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        line: PlanLine = get_object_or_404(
            plan_lines_visible_to(member=member), pk=line_id, plan_id=plan_id
        )
        plan_line_set(line=line, amount=data.validated_data["amount"], actor=member)
        return _plan_answer(member, plan_id, status.HTTP_200_OK)


class PlanTotalSetApi(MemberApi):
    @extend_schema(
        operation_id="plan_total_set", parameters=[IDEMPOTENCY_KEY],
        request=s.PlanTotalSetInputSerializer,
        responses={200: s.PlanOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, plan_id: int) -> Response:
        member = self.member(request)
        data = s.PlanTotalSetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = plan_total_set(
            plan=_visible_plan(member, plan_id), total=data.validated_data["total"], actor=member
        )
        return _plan_answer(member, plan.pk, status.HTTP_200_OK)


class PlanApproveApi(MemberApi):
    @extend_schema(
        operation_id="plan_approve", parameters=[IDEMPOTENCY_KEY], request=None,
        responses={200: s.PlanOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, plan_id: int) -> Response:
        member = self.member(request)
        plan = plan_approve(plan=_visible_plan(member, plan_id), actor=member, now=timezone.now())
        return _plan_answer(member, plan.pk, status.HTTP_200_OK)
