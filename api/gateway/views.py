"""The gateway endpoints: thin views over budgets.gateway (docs/gateway.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import metrics
from api.gateway import serializers as s
from api.gateway.authentication import GatewayClient, GatewayTokenAuthentication
from api.money import money
from budgets.gateway import (
    AuthorizeRequest,
    Usage,
    authorization_create,
    authorization_get,
    authorization_settle,
    authorization_void,
    meter_get,
    usage_record,
)
from budgets.models import Authorization, AuthorizationStatus

ERRORS = {
    400: OpenApiResponse(s.ErrorOutputSerializer, description="invalid"),
    401: OpenApiResponse(s.ErrorOutputSerializer, description="missing or bad gateway token"),
    404: OpenApiResponse(s.ErrorOutputSerializer, description="not_found"),
    409: OpenApiResponse(
        s.ErrorOutputSerializer, description="idempotency_conflict, invalid_state"
    ),
    422: OpenApiResponse(s.ErrorOutputSerializer, description="unknown_model"),
}

AUTHORIZE_SECONDS = metrics.GATEWAY_SECONDS.labels(endpoint="authorize")
SETTLE_SECONDS = metrics.GATEWAY_SECONDS.labels(endpoint="settle")


class GatewayApi(APIView):
    authentication_classes = (GatewayTokenAuthentication,)
    permission_classes = (IsAuthenticated,)

    def client(self, request: Request) -> GatewayClient:
        user = request.user
        assert isinstance(user, GatewayClient)
        return user


def _currency(authorization: Authorization) -> str:
    return authorization.organization.currency


def authorization_body(authorization: Authorization) -> tuple[dict[str, Any], int]:
    currency = _currency(authorization)
    if authorization.status == AuthorizationStatus.DENIED:
        return {
            "id": str(authorization.id), "decision": "deny", "code": authorization.code,
            "message": authorization.message,
            "available": money(authorization.available_at_decision, currency),
        }, status.HTTP_402_PAYMENT_REQUIRED  # fmt: skip
    return {
        "id": str(authorization.id), "status": "held", "decision": authorization.decision,
        "model": authorization.model, "requested_model": authorization.requested_model,
        "reserved": money(authorization.reserved, currency),
        "available": money(authorization.available_at_decision, currency),
        "expires_at": authorization.expires_at, "message": authorization.message,
    }, status.HTTP_201_CREATED  # fmt: skip


class AuthorizationCreateApi(GatewayApi):
    @extend_schema(
        operation_id="authorization_create",
        request=s.AuthorizationCreateInputSerializer,
        responses={
            201: s.AuthorizationCreateOutputSerializer,
            402: s.AuthorizationDeniedOutputSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        with AUTHORIZE_SECONDS.time():
            serializer = s.AuthorizationCreateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            authorization = authorization_create(
                organization=self.client(request).organization,
                request=AuthorizeRequest(**serializer.validated_data),
            )
            body, http_status = authorization_body(authorization)
        metrics.DECISIONS.labels(decision=authorization.decision, code=authorization.code).inc()
        if authorization.status == AuthorizationStatus.HELD:
            metrics.HOLDS.inc()
        return Response(body, status=http_status)


class AuthorizationDetailApi(GatewayApi):
    @extend_schema(
        operation_id="authorization_get",
        responses={200: s.AuthorizationOutputSerializer, 401: ERRORS[401], 404: ERRORS[404]},
    )
    def get(self, request: Request, authorization_id: str) -> Response:
        authorization = authorization_get(
            organization=self.client(request).organization, authorization_id=authorization_id
        )
        currency = _currency(authorization)
        return Response(
            {
                "id": str(authorization.id), "status": authorization.status,
                "decision": authorization.decision, "code": authorization.code,
                "message": authorization.message, "subject": authorization.subject,
                "model": authorization.model, "requested_model": authorization.requested_model,
                "reserved": money(authorization.reserved, currency),
                "charged": money(authorization.charged, currency),
                "released": money(authorization.released, currency),
                "overage": money(authorization.overage, currency),
                "saving": money(
                    authorization.cost_at_requested_model - authorization.charged
                    if authorization.settled_at and authorization.charged else 0,
                    currency,
                ),
                "session_id": authorization.session_id, "tags": authorization.tags,
                "created_at": authorization.created_at, "expires_at": authorization.expires_at,
                "settled_at": authorization.settled_at,
            }
        )  # fmt: skip


class AuthorizationSettleApi(GatewayApi):
    @extend_schema(
        operation_id="authorization_settle",
        request=s.AuthorizationSettleInputSerializer,
        responses={200: s.AuthorizationSettleOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, authorization_id: str) -> Response:
        with SETTLE_SECONDS.time():
            serializer = s.AuthorizationSettleInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            organization = self.client(request).organization
            settlement = authorization_settle(
                organization=organization,
                authorization_id=authorization_id,
                usage=Usage(**serializer.validated_data),
            )
        metrics.SETTLES.labels(status=settlement.status).inc()
        currency = organization.currency
        return Response(
            {
                "id": str(settlement.id), "status": settlement.status,
                "charged": money(settlement.charged, currency),
                "released": money(settlement.released, currency),
                "overage": money(settlement.overage, currency),
                "available": money(settlement.available, currency),
            }
        )  # fmt: skip


class AuthorizationVoidApi(GatewayApi):
    @extend_schema(
        operation_id="authorization_void",
        request=None,
        responses={200: s.AuthorizationVoidOutputSerializer, 401: ERRORS[401],
                   404: ERRORS[404], 409: ERRORS[409]},
    )  # fmt: skip
    def post(self, request: Request, authorization_id: str) -> Response:
        authorization = authorization_void(
            organization=self.client(request).organization, authorization_id=authorization_id
        )
        return Response(
            {
                "id": str(authorization.id), "status": "voided",
                "released": money(authorization.released, _currency(authorization)),
            }
        )  # fmt: skip


class UsageCreateApi(GatewayApi):
    @extend_schema(
        operation_id="usage_create",
        request=s.UsageCreateInputSerializer,
        responses={201: s.UsageCreateOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = s.UsageCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        organization = self.client(request).organization
        record = usage_record(
            organization=organization,
            idempotency_key=data["idempotency_key"],
            subject=data["subject"],
            usage=Usage(
                model=data["model"], input_tokens=data["input_tokens"],
                cached_input_tokens=data["cached_input_tokens"],
                cache_write_tokens=data["cache_write_tokens"],
                output_tokens=data["output_tokens"], amount=data["amount"],
            ),
            occurred_at=data["occurred_at"],
            tags=data["tags"],
        )  # fmt: skip
        meter = meter_get(organization=organization, subject=data["subject"])
        currency = organization.currency
        return Response(
            {
                "id": record.transfer.pk if record.transfer else None, "status": "recorded",
                "code": record.transfer.code if record.transfer else "",
                "charged": money(record.charged, currency),
                "overage": money(record.overage, currency),
                "available": money(meter.available, currency),
            },
            status=status.HTTP_201_CREATED,
        )  # fmt: skip


class BalanceApi(GatewayApi):
    @extend_schema(
        operation_id="balance_get",
        parameters=[s.BalanceQuerySerializer],
        responses={200: s.BalanceOutputSerializer, 400: ERRORS[400], 401: ERRORS[401],
                   404: ERRORS[404]},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        query = s.BalanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        organization = self.client(request).organization
        meter = meter_get(organization=organization, subject=query.validated_data["subject"])
        currency = organization.currency
        share = meter.soft_limit_share
        return Response(
            {
                "subject": query.validated_data["subject"], "pool": str(meter.spender.pool),
                "budget": money(meter.budget, currency), "spent": money(meter.spent, currency),
                "reserved": money(meter.reserved, currency),
                "available": money(meter.available, currency),
                "soft_limit_share": str(share) if share is not None else None,
                "soft_limit_reached": meter.soft_limit_reached,
            }
        )  # fmt: skip
