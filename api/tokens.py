"""Personal API tokens: created in admin or by ``manage.py create_api_token``, stored hashed,
revocable, expiring. Clients send ``Authorization: Token <token>``."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api.models import PersonalToken

DEFAULT_LIFETIME = timedelta(days=90)
PREFIX = "blp_"


def personal_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def personal_token_create(
    *, user: Any, name: str, lifetime: timedelta = DEFAULT_LIFETIME
) -> tuple[PersonalToken, str]:
    """A new token for ``user``; the raw token is returned once, only its hash is stored."""
    raw = f"{PREFIX}{secrets.token_urlsafe(32)}"
    token = PersonalToken.objects.create(
        user=user,
        name=name,
        token_hash=personal_token_hash(raw),
        prefix=raw[:10],
        expires_at=timezone.now() + lifetime,
    )
    return token, raw


def personal_token_revoke(*, token: PersonalToken) -> PersonalToken:
    """Revoke a token (idempotent)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


class PersonalTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, PersonalToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Send exactly: Authorization: Token <personal token>.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The token is not valid.") from None
        now = timezone.now()
        token = (
            PersonalToken.objects.select_related("user")
            .filter(token_hash=personal_token_hash(raw), revoked_at__isnull=True)
            .filter(expires_at__gt=now)
            .first()
        )
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("The token is not valid, revoked or expired.")
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
            # Coarse on purpose: one write per token every few minutes, not per request.
            PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class PersonalTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "api.tokens.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <personal API token>` (created in admin or by "
            "`manage.py create_api_token`).",
        }
