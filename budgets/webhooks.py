"""Webhook deliveries of alerts: signed, retried with exponential backoff, logged.

Each delivery is one alert to one subscription. An attempt first claims the delivery in a short
transaction (counting the attempt and setting when the next one is due, a lease), then sends
the request outside any transaction, then records the answer. A crash mid-send leaves the
delivery due again when its lease ends: delivery is at least once, and receivers deduplicate
by the ``Budget-Ledger-Delivery`` header.

Signature (docs/alerts.md): ``Budget-Ledger-Signature: t=<unix seconds>,v1=<hex>`` where hex is
HMAC-SHA256 with the subscription's secret over ``f"{t}.".encode() + body``. Receivers check
it and reject a timestamp older than a few minutes (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.db import transaction

from budgets.errors import InvalidInputError
from budgets.models import (
    Alert,
    DeliveryStatus,
    Organization,
    WebhookDelivery,
    WebhookFormat,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Budget-Ledger-Signature"
DELIVERY_HEADER = "Budget-Ledger-Delivery"
EVENT_HEADER = "Budget-Ledger-Event"
#: Attempt n failing makes attempt n + 1 due BACKOFF_BASE x 2^(n-1) later, at most BACKOFF_CAP.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
MAX_ATTEMPTS = 10
TIMEOUT_SECONDS = 5.0


def webhook_create(
    *, organization: Organization, name: str, url: str, events: list[str], format: str = "json"
) -> WebhookSubscription:
    """A subscription with a new secret. Raises InvalidInputError."""
    if not url.startswith(("https://", "http://")):
        raise InvalidInputError("A webhook URL is http:// or https://.")
    if format not in WebhookFormat.values:
        raise InvalidInputError(f"A webhook's format is one of {', '.join(WebhookFormat.values)}.")
    return WebhookSubscription.objects.create(
        organization=organization, name=name, url=url, events=events, format=format,
        secret=f"whsec_{secrets.token_urlsafe(32)}",
    )  # fmt: skip


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def payload(*, alert: Alert, format: str) -> bytes:
    """The request body: the alert as JSON, or a Slack-compatible message."""
    if format == WebhookFormat.SLACK:
        text = f":rotating_light: *Budget Ledger* ({alert.get_kind_display()}): {alert.message}"
        return json.dumps({"text": text}).encode()
    return json.dumps(
        {
            "id": alert.pk, "kind": alert.kind, "key": alert.key,
            "organization": alert.organization.slug,
            "period": str(alert.period) if alert.period_id else None,
            "pool": str(alert.pool) if alert.pool_id else None,
            "message": alert.message, "details": alert.details,
            "raised_at": alert.raised_at.isoformat(),
        },
        sort_keys=True,
    ).encode()  # fmt: skip


def backoff(attempts: int) -> timedelta:
    """How long after failed attempt number ``attempts`` the next one is due."""
    delay: timedelta = BACKOFF_BASE * 2 ** (attempts - 1)
    return min(delay, BACKOFF_CAP)


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    status: str
    next_attempt_at: datetime | None
    sent: bool  # False: not due (delivered, given up, or another attempt holds the lease)


def delivery_attempt(*, delivery_id: int, now: datetime) -> Attempt:
    """Send the delivery if it is due at ``now`` and record the answer. A delivery that is not
    due (delivered, given up, leased by another attempt, or to a subscription switched off) is
    left alone."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription", "alert__organization", "alert__period", "alert__pool")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            # A subscription switched off sends nothing more (its URL may be the reason why).
            .filter(subscription__is_active=True)
            .first()
        )
        if delivery is None:
            current = WebhookDelivery.objects.filter(pk=delivery_id).first()
            return Attempt(
                delivery_id=delivery_id,
                status=current.status if current else "missing",
                next_attempt_at=current.next_attempt_at if current else None,
                sent=False,
            )
        delivery.attempts += 1
        delivery.last_attempt_at = now
        # The lease: if this process dies while sending, the delivery is due again then.
        delivery.next_attempt_at = now + backoff(delivery.attempts)
        delivery.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
    subscription = delivery.subscription
    body = payload(alert=delivery.alert, format=subscription.format)
    status_code, error = _send(delivery=delivery, body=body, now=now)
    delivered = status_code is not None and 200 <= status_code < 300
    if delivered:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            DeliveryStatus.DELIVERED, now, None,
        )  # fmt: skip
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    delivery.last_status_code, delivery.last_error = status_code, error
    delivery.save(
        update_fields=["status", "delivered_at", "next_attempt_at", "last_status_code",
                       "last_error"]
    )  # fmt: skip
    return Attempt(
        delivery_id=delivery.pk, status=delivery.status, next_attempt_at=delivery.next_attempt_at,
        sent=True,
    )  # fmt: skip


def _send(*, delivery: WebhookDelivery, body: bytes, now: datetime) -> tuple[int | None, str]:
    subscription = delivery.subscription
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "budget-ledger-webhooks/1",
        SIGNATURE_HEADER: signature(
            secret=subscription.secret, timestamp=int(now.timestamp()), body=body
        ),
        DELIVERY_HEADER: str(delivery.pk),
        EVENT_HEADER: delivery.alert.kind,
    }
    try:
        response = httpx.post(
            subscription.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
        )  # fmt: skip
    except httpx.HTTPError as failure:
        logger.warning("webhook delivery %s failed: %s", delivery.pk, failure)
        return None, f"{type(failure).__name__}: {failure}"[:2000]
    if not 200 <= response.status_code < 300:
        logger.warning("webhook delivery %s answered %s", delivery.pk, response.status_code)
        return response.status_code, response.text[:2000]
    return response.status_code, ""


def delivery_resend(*, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery:
    """Send again (admin): due at once, with a fresh count of attempts."""
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        locked.status, locked.attempts, locked.next_attempt_at = DeliveryStatus.PENDING, 0, now
        locked.delivered_at = None
        locked.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at"])
    return locked


def deliveries_due(*, now: datetime, limit: int = 500) -> list[int]:
    """Pending deliveries due at ``now`` to active subscriptions (the sweep after a crash or a
    lost message)."""
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, subscription__is_active=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
