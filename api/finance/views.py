"""People's read and write endpoints over the books: thin views, scoped by role
(budgets.visibility), over the allocation services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from allocation.models import TransferRequest
from allocation.selectors import transfer_requests_visible_to
from allocation.services import (
    pool_allocate,
    pool_fund,
    transfer_request_approve,
    transfer_request_cancel,
    transfer_request_create,
    transfer_request_reject,
)
from api.finance import filters as f
from api.finance import serializers as s
from api.finance.base import (
    IDEMPOTENCY_KEY,
    READ_ERRORS,
    WRITE_ERRORS,
    MemberApi,
    idempotent,
)
from budgets.models import Authorization, Member, Organization, Period, Pool, Team
from budgets.visibility import (
    authorizations_visible_to,
    members_visible_to,
    organizations_visible_to,
    periods_visible_to,
    pools_visible_to,
    teams_visible_to,
    transfers_visible_to,
)
from ledger.models import Transfer


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ScopedReadApi(MemberApi, generics.GenericAPIView[Any]):
    """A list or a detail of the objects the member may see: others' are simply not found."""

    visible: Callable[..., QuerySet[Any]]
    model: type[Model]
    related: tuple[str, ...] = ()
    pagination_class = Pages
    filter_backends = (DjangoFilterBackend, OrderingFilter)
    ordering: tuple[str, ...] = ("id",)

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator asks without a user
            return self.model._default_manager.none()
        queryset = type(self).visible(member=self.member(self.request))
        return queryset.select_related(*self.related) if self.related else queryset

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "currency": self._currency()}

    def _currency(self) -> str:
        return self.member(self.request).organization.currency


def documented(name: str, serializer: type[BaseSerializer[Any]]) -> Callable[[type[Any]], Any]:
    """The schema of a list or detail view (name ends in _list or _get)."""
    return extend_schema_view(
        get=extend_schema(operation_id=name, responses={200: serializer, **READ_ERRORS})
    )


class OrganizationRead(ScopedReadApi):
    visible = staticmethod(organizations_visible_to)
    model = Organization
    serializer_class = s.OrganizationOutputSerializer


@documented("organization_list", s.OrganizationOutputSerializer)
class OrganizationListApi(OrganizationRead, generics.ListAPIView[Any]):
    pass


@documented("organization_get", s.OrganizationOutputSerializer)
class OrganizationDetailApi(OrganizationRead, generics.RetrieveAPIView[Any]):
    pass


class TeamRead(ScopedReadApi):
    visible = staticmethod(teams_visible_to)
    model = Team
    serializer_class = s.TeamOutputSerializer
    filterset_class = f.TeamFilter
    ordering_fields = ("id", "name", "slug")


@documented("team_list", s.TeamOutputSerializer)
class TeamListApi(TeamRead, generics.ListAPIView[Any]):
    pass


@documented("team_get", s.TeamOutputSerializer)
class TeamDetailApi(TeamRead, generics.RetrieveAPIView[Any]):
    pass


class MemberRead(ScopedReadApi):
    visible = staticmethod(members_visible_to)
    model = Member
    serializer_class = s.MemberOutputSerializer
    filterset_class = f.MemberFilter
    ordering_fields = ("id", "user__username", "role")
    related = ("user",)


@documented("member_list", s.MemberOutputSerializer)
class MemberListApi(MemberRead, generics.ListAPIView[Any]):
    pass


@documented("member_get", s.MemberOutputSerializer)
class MemberDetailApi(MemberRead, generics.RetrieveAPIView[Any]):
    pass


class PeriodRead(ScopedReadApi):
    visible = staticmethod(periods_visible_to)
    model = Period
    serializer_class = s.PeriodOutputSerializer
    filterset_class = f.PeriodFilter
    ordering_fields = ("id", "starts_at")


@documented("period_list", s.PeriodOutputSerializer)
class PeriodListApi(PeriodRead, generics.ListAPIView[Any]):
    pass


@documented("period_get", s.PeriodOutputSerializer)
class PeriodDetailApi(PeriodRead, generics.RetrieveAPIView[Any]):
    pass


class PoolRead(ScopedReadApi):
    visible = staticmethod(pools_visible_to)
    model = Pool
    serializer_class = s.PoolOutputSerializer
    filterset_class = f.PoolFilter
    ordering_fields = ("id", "kind")
    related = ("account", "spend_account", "organization", "period", "team", "member__user")


@documented("pool_list", s.PoolOutputSerializer)
class PoolListApi(PoolRead, generics.ListAPIView[Any]):
    pass


@documented("pool_get", s.PoolOutputSerializer)
class PoolDetailApi(PoolRead, generics.RetrieveAPIView[Any]):
    pass


class TransferRead(ScopedReadApi):
    visible = staticmethod(transfers_visible_to)
    model = Transfer
    serializer_class = s.TransferOutputSerializer
    filterset_class = f.TransferFilter
    ordering_fields = ("id", "created_at", "amount")


@documented("transfer_list", s.TransferOutputSerializer)
class TransferListApi(TransferRead, generics.ListAPIView[Any]):
    pass


@documented("transfer_get", s.TransferOutputSerializer)
class TransferDetailApi(TransferRead, generics.RetrieveAPIView[Any]):
    pass


class AuthorizationRecordRead(ScopedReadApi):
    visible = staticmethod(authorizations_visible_to)
    model = Authorization
    serializer_class = s.AuthorizationRecordOutputSerializer
    filterset_class = f.AuthorizationFilter
    ordering_fields = ("created_at", "charged")
    ordering = ("-created_at", "id")


@documented("authorization_record_list", s.AuthorizationRecordOutputSerializer)
class AuthorizationRecordListApi(AuthorizationRecordRead, generics.ListAPIView[Any]):
    pass


@documented("authorization_record_get", s.AuthorizationRecordOutputSerializer)
class AuthorizationRecordDetailApi(AuthorizationRecordRead, generics.RetrieveAPIView[Any]):
    pass


class TransferRequestRead(ScopedReadApi):
    visible = staticmethod(transfer_requests_visible_to)
    model = TransferRequest
    serializer_class = s.TransferRequestOutputSerializer
    filterset_class = f.TransferRequestFilter
    ordering_fields = ("id", "created_at", "expires_at", "amount")


@documented("transfer_request_get", s.TransferRequestOutputSerializer)
class TransferRequestDetailApi(TransferRequestRead, generics.RetrieveAPIView[Any]):
    pass


# --- writes ------------------------------------------------------------------------------


def _organization_pool(member: Member, pool_id: int) -> Pool:
    """Any pool of the member's organization (asks cross teams); another's is not found."""
    pool: Pool = get_object_or_404(
        Pool.objects.select_related("organization", "period", "team", "member", "account"),
        pk=pool_id,
        organization_id=member.organization_id,
    )
    return pool


def answer(
    serializer: type[BaseSerializer[Any]],
    instance: Any,
    member: Member,
    http_status: int = status.HTTP_201_CREATED,
) -> Response:
    context = {"currency": member.organization.currency}
    return Response(serializer(instance, context=context).data, status=http_status)


class PoolFundApi(MemberApi):
    @extend_schema(
        operation_id="pool_fund", parameters=[IDEMPOTENCY_KEY],
        request=s.PoolFundInputSerializer,
        responses={201: s.TransferOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, pool_id: int) -> Response:
        member = self.member(request)
        data = s.PoolFundInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pool = _organization_pool(member, pool_id)
        transfer = pool_fund(pool=pool, amount=data.validated_data["amount"], actor=member)
        return answer(s.TransferOutputSerializer, transfer, member)


class PoolAllocateApi(MemberApi):
    @extend_schema(
        operation_id="pool_allocate", parameters=[IDEMPOTENCY_KEY],
        request=s.PoolAllocateInputSerializer,
        responses={201: s.TransferOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, pool_id: int) -> Response:
        member = self.member(request)
        data = s.PoolAllocateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = pool_allocate(
            source=_organization_pool(member, pool_id),
            target=_organization_pool(member, data.validated_data["target"]),
            amount=data.validated_data["amount"], actor=member,
            reason=data.validated_data["reason"],
        )  # fmt: skip
        return answer(s.TransferOutputSerializer, transfer, member)


@documented("transfer_request_list", s.TransferRequestOutputSerializer)
class TransferRequestCollectionApi(TransferRequestRead, generics.ListAPIView[Any]):
    """GET lists the requests the member sees; POST asks to move budget."""

    @extend_schema(
        operation_id="transfer_request_create", parameters=[IDEMPOTENCY_KEY],
        request=s.TransferRequestCreateInputSerializer,
        responses={201: s.TransferRequestOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request) -> Response:
        member = self.member(request)
        data = s.TransferRequestCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer_request = transfer_request_create(
            source=_organization_pool(member, data.validated_data["source_pool"]),
            target=_organization_pool(member, data.validated_data["target_pool"]),
            amount=data.validated_data["amount"], reason=data.validated_data["reason"],
            requester=member,
        )  # fmt: skip
        return answer(s.TransferRequestOutputSerializer, transfer_request, member)


def _visible_request(member: Member, request_id: int) -> TransferRequest:
    found: TransferRequest = get_object_or_404(
        transfer_requests_visible_to(member=member).select_related(
            "source__organization", "source__account", "target", "organization"
        ),
        pk=request_id,
    )
    return found


class TransferRequestApproveApi(MemberApi):
    @extend_schema(
        operation_id="transfer_request_approve", parameters=[IDEMPOTENCY_KEY], request=None,
        responses={200: s.TransferRequestOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, request_id: int) -> Response:
        member = self.member(request)
        decided = transfer_request_approve(
            request=_visible_request(member, request_id), approver=member
        )
        return answer(s.TransferRequestOutputSerializer, decided, member, status.HTTP_200_OK)


class TransferRequestRejectApi(MemberApi):
    @extend_schema(
        operation_id="transfer_request_reject", parameters=[IDEMPOTENCY_KEY],
        request=s.TransferRequestRejectInputSerializer,
        responses={200: s.TransferRequestOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, request_id: int) -> Response:
        member = self.member(request)
        data = s.TransferRequestRejectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = transfer_request_reject(
            request=_visible_request(member, request_id), approver=member,
            reason=data.validated_data["reason"],
        )  # fmt: skip
        return answer(s.TransferRequestOutputSerializer, decided, member, status.HTTP_200_OK)


class TransferRequestCancelApi(MemberApi):
    @extend_schema(
        operation_id="transfer_request_cancel", parameters=[IDEMPOTENCY_KEY], request=None,
        responses={200: s.TransferRequestOutputSerializer, **WRITE_ERRORS},
    )  # fmt: skip
    @idempotent
    def post(self, request: Request, request_id: int) -> Response:
        member = self.member(request)
        decided = transfer_request_cancel(
            request=_visible_request(member, request_id), requester=member
        )
        return answer(s.TransferRequestOutputSerializer, decided, member, status.HTTP_200_OK)
