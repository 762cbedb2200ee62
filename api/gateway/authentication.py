"""Gateways authenticate with ``Authorization: Bearer <gateway token>``."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from budgets.cache import cached
from budgets.models import GatewayToken, Organization
from budgets.services import gateway_token_hash


@dataclass(frozen=True)
class GatewayClient:
    """The authenticated gateway: request.user for gateway endpoints."""

    token: GatewayToken
    organization: Organization
    is_authenticated: bool = True


class GatewayTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[GatewayClient, GatewayToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Send exactly: Authorization: Bearer <gateway token>.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The gateway token is not valid.") from None
        token_hash = gateway_token_hash(raw)
        token = cached(
            ("gateway-token", token_hash),
            lambda: (
                GatewayToken.objects.select_related("organization")
                .filter(token_hash=token_hash, revoked_at__isnull=True)
                .first()
            ),
        )
        if token is None:
            raise AuthenticationFailed("The gateway token is not valid.")
        return GatewayClient(token=token, organization=token.organization), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class GatewayTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "api.gateway.authentication.GatewayTokenAuthentication"
    name = "gatewayToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A gateway token."}
