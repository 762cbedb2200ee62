"""Spend on the books through the gateway services, for report and API tests."""

from __future__ import annotations

from datetime import datetime

import time_machine

from allocation.demo import DemoOrganization
from budgets.gateway import (
    AuthorizeRequest,
    Usage,
    authorization_create,
    authorization_settle,
    usage_record,
)
from budgets.models import Authorization
from tests.conftest import NOW

SONNET, HAIKU = "claude-sonnet-4-5", "claude-haiku-4-5"


def call(
    acme: DemoOrganization,
    key: str,
    *,
    subject: str = "platform-eng1-claude-code",
    model: str = SONNET,
    used_model: str | None = None,
    input_tokens: int = 10_000,
    cached_input_tokens: int = 0,
    output_tokens: int = 1_000,
    max_output_tokens: int = 1_000,
    tags: dict[str, str] | None = None,
    session_id: str = "",
    at: datetime = NOW,
) -> Authorization:
    """Authorize and settle one call at ``at``: sonnet, 10k in / 1k out = $0.045 by default."""
    with time_machine.travel(at, tick=False):
        authorization = authorization_create(
            organization=acme.organization,
            request=AuthorizeRequest(
                idempotency_key=key, subject=subject, model=model, input_tokens=input_tokens,
                max_output_tokens=max_output_tokens, session_id=session_id, tags=tags or {},
            ),
        )  # fmt: skip
        authorization_settle(
            organization=acme.organization,
            authorization_id=str(authorization.id),
            usage=Usage(
                model=used_model, input_tokens=input_tokens,
                cached_input_tokens=cached_input_tokens, output_tokens=output_tokens,
            ),
        )  # fmt: skip
    return Authorization.objects.get(pk=authorization.id)


def record(
    acme: DemoOrganization, key: str, *, subject: str, amount: int, tags: dict[str, str],
    at: datetime = NOW,
) -> None:  # fmt: skip
    """Usage without an authorization (an import)."""
    with time_machine.travel(at, tick=False):
        usage_record(
            organization=acme.organization, idempotency_key=key, subject=subject,
            usage=Usage(amount=amount), occurred_at=at, tags=tags,
        )  # fmt: skip
