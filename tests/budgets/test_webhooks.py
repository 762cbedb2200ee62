"""Webhook deliveries: signed, retried with backoff against a real local receiver, logged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine

from allocation.demo import DemoOrganization
from budgets.alerts import Candidate, alert_raise
from budgets.models import Alert, DeliveryStatus, WebhookDelivery
from budgets.webhooks import (
    BACKOFF_BASE,
    MAX_ATTEMPTS,
    deliveries_due,
    delivery_attempt,
    delivery_resend,
    webhook_create,
)
from integrations.webhooks import verify
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP endpoint that answers the queued status codes (then 200) and keeps what it
    was sent."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"nope" if status >= 300 else b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def raise_alert(acme: DemoOrganization, key: str = "threshold:test") -> list[int]:
    return alert_raise(
        organization=acme.organization,
        candidate=Candidate(kind="threshold", key=key, message="platform-eng1 past 80%",
                            pool=acme.pools["platform-eng1"], details={"spent": 800}),
        now=NOW,
    )  # fmt: skip


def test_a_delivery_is_signed_and_the_receiver_can_verify_it(
    acme: DemoOrganization, receiver: Receiver
) -> None:
    hook = webhook_create(organization=acme.organization, name="ops", url=receiver.url, events=[])

    (delivery_id,) = raise_alert(acme)
    attempt = delivery_attempt(delivery_id=delivery_id, now=NOW)

    assert attempt.status == DeliveryStatus.DELIVERED
    (request,) = receiver.received
    headers, body = request["headers"], request["body"]
    assert verify(secret=hook.secret, header=headers["Budget-Ledger-Signature"], body=body,
                  now=NOW.timestamp())  # fmt: skip
    assert not verify(secret="whsec_wrong", header=headers["Budget-Ledger-Signature"],
                      body=body, now=NOW.timestamp())  # fmt: skip
    assert not verify(secret=hook.secret, header=headers["Budget-Ledger-Signature"],
                      body=body + b" ", now=NOW.timestamp())  # fmt: skip
    assert not verify(secret=hook.secret, header=headers["Budget-Ledger-Signature"], body=body,
                      now=NOW.timestamp() + 301)  # a replay, later  # fmt: skip
    assert headers["Budget-Ledger-Delivery"] == str(delivery_id)
    assert json.loads(body)["message"] == "platform-eng1 past 80%"


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(
    acme: DemoOrganization, receiver: Receiver
) -> None:
    webhook_create(organization=acme.organization, name="ops", url=receiver.url, events=[])
    receiver.answers = [500, 503]
    (delivery_id,) = raise_alert(acme)

    first = delivery_attempt(delivery_id=delivery_id, now=NOW)
    early = delivery_attempt(delivery_id=delivery_id, now=NOW + BACKOFF_BASE / 2)
    second = delivery_attempt(delivery_id=delivery_id, now=NOW + BACKOFF_BASE)
    third = delivery_attempt(delivery_id=delivery_id, now=NOW + 3 * BACKOFF_BASE)

    assert (first.status, first.next_attempt_at) == ("pending", NOW + BACKOFF_BASE)
    assert early.status == "pending"
    assert len(receiver.received) == 3
    assert (second.status, second.next_attempt_at) == ("pending", NOW + 3 * BACKOFF_BASE)
    assert third.status == "delivered"
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.attempts, delivery.last_status_code, delivery.delivered_at) == (
        3, 200, NOW + 3 * BACKOFF_BASE,
    )  # fmt: skip


def test_after_the_last_attempt_it_gives_up_and_a_resend_starts_over(
    acme: DemoOrganization, receiver: Receiver
) -> None:
    webhook_create(organization=acme.organization, name="ops", url=receiver.url, events=[])
    receiver.answers = [500] * MAX_ATTEMPTS
    (delivery_id,) = raise_alert(acme)

    now = NOW
    for _ in range(MAX_ATTEMPTS):
        attempt = delivery_attempt(delivery_id=delivery_id, now=now)
        now = attempt.next_attempt_at or now
    failed = WebhookDelivery.objects.get(pk=delivery_id)
    delivery_resend(delivery=failed, now=now + timedelta(days=1))
    resent = delivery_attempt(delivery_id=delivery_id, now=now + timedelta(days=1))

    assert (failed.status, failed.attempts, failed.last_error) == ("failed", MAX_ATTEMPTS, "nope")
    assert deliveries_due(now=now + timedelta(days=2)) == []
    assert resent.status == "delivered"


def test_an_unreachable_receiver_is_logged_and_retried(acme: DemoOrganization) -> None:
    webhook_create(organization=acme.organization, name="gone", url="http://127.0.0.1:9/x",
                   events=[])  # fmt: skip
    (delivery_id,) = raise_alert(acme)

    attempt = delivery_attempt(delivery_id=delivery_id, now=NOW)

    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert attempt.status == "pending"
    assert delivery.last_status_code is None
    assert "ConnectError" in delivery.last_error
    assert deliveries_due(now=NOW + BACKOFF_BASE) == [delivery_id]


def test_slack_format_and_event_filters(acme: DemoOrganization, receiver: Receiver) -> None:
    webhook_create(organization=acme.organization, name="slack", url=receiver.url,
                   events=["threshold"], format="slack")  # fmt: skip
    webhook_create(organization=acme.organization, name="calls only", url=receiver.url,
                   events=["call"])  # fmt: skip

    deliveries = raise_alert(acme)
    for delivery_id in deliveries:
        delivery_attempt(delivery_id=delivery_id, now=NOW)

    assert len(deliveries) == 1
    (request,) = receiver.received
    assert json.loads(request["body"]) == {
        "text": ":rotating_light: *Budget Ledger* (Budget threshold crossed): "
        "platform-eng1 past 80%"
    }


def test_an_alert_is_raised_and_delivered_once(acme: DemoOrganization) -> None:
    webhook_create(organization=acme.organization, name="ops", url="http://127.0.0.1:9/x",
                   events=[])  # fmt: skip

    first, second = raise_alert(acme), raise_alert(acme)

    assert (len(first), second) == (1, [])
    assert Alert.objects.count() == 1


def test_the_celery_task_schedules_the_retry_at_its_backoff(
    acme: DemoOrganization, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budgets import tasks

    webhook_create(organization=acme.organization, name="ops", url=receiver.url, events=[])
    receiver.answers = [500]
    (delivery_id,) = raise_alert(acme)
    scheduled: list[tuple[Any, Any]] = []
    monkeypatch.setattr(tasks.webhook_deliver, "apply_async",
                        lambda args, eta: scheduled.append((args, eta)))  # fmt: skip

    with time_machine.travel(NOW, tick=False):
        failed = tasks.webhook_deliver.apply((delivery_id,)).get()
        recovered = tasks.webhook_deliver.apply((delivery_id,)).get()  # not due yet: no send
    with time_machine.travel(NOW + BACKOFF_BASE, tick=False):
        delivered = tasks.webhook_deliver.apply((delivery_id,)).get()

    assert (failed, recovered, delivered) == ("pending", "pending", "delivered")
    assert scheduled == [((delivery_id,), NOW + BACKOFF_BASE)]  # once, not again when not due
    assert len(receiver.received) == 2


def test_a_subscription_switched_off_gets_no_more_deliveries(
    acme: DemoOrganization, receiver: Receiver
) -> None:
    hook = webhook_create(organization=acme.organization, name="ops", url=receiver.url, events=[])
    receiver.answers = [500]
    (delivery_id,) = raise_alert(acme)
    first = delivery_attempt(delivery_id=delivery_id, now=NOW)
    hook.is_active = False
    hook.save()

    later = delivery_attempt(delivery_id=delivery_id, now=NOW + BACKOFF_BASE)
    due = deliveries_due(now=NOW + BACKOFF_BASE)

    assert (first.sent, later.sent) == (True, False)
    assert len(receiver.received) == 1
    assert due == []
