"""Exemptions over the API: the role matrix, filters, and thin writes over the services with
Idempotency-Key; a refusal writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from allocation.demo import DOLLAR, DemoOrganization, demo_organization_create
from allocation.exemptions import exemption_approve, exemption_request
from allocation.models import Exemption
from api.models import IdempotentAnswer
from budgets.selectors import pool_balance
from ledger.models import Transfer
from tests.api.finance import client_for
from tests.api.test_finance_writes import post
from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db
START, END = NOW + timedelta(hours=1), NOW + timedelta(days=2)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def ask(acme: DemoOrganization, pool: str, who: str, *, starts_at: Any = START) -> Exemption:
    return exemption_request(
        pool=acme.pools[pool], amount=500 * DOLLAR, starts_at=starts_at, ends_at=END,
        use_case="migration agent run", reason="one-off migration", requester=acme.members[who],
        now=NOW,
    )  # fmt: skip


@pytest.fixture
def asked(acme: DemoOrganization) -> dict[str, Exemption]:
    """Three pending exemptions: an engineer's own ask in Product, a manager's for one of
    their engineers in Platform, and an admin's for a sub-team (Infra), paid by its parent
    (Platform)."""
    return {
        "product-eng1": ask(acme, "product-eng1", "product-eng1"),
        "platform-eng1": ask(acme, "platform-eng1", "platform-lead"),
        "infra": ask(acme, "infra", "admin"),
    }


def state(exemption: Exemption) -> tuple[str, int, int]:
    """The exemption's status, how many ledger transfers exist, how many answers are kept."""
    exemption.refresh_from_db()
    return exemption.status, Transfer.objects.count(), IdempotentAnswer.objects.count()


# platform-lead manages Platform and its sub-team Infra.
MATRIX = {
    "admin": {"product-eng1", "platform-eng1", "infra"},
    "finance": {"product-eng1", "platform-eng1", "infra"},
    "platform-lead": {"platform-eng1", "infra"},
    "infra-lead": {"infra"},
    "product-lead": {"product-eng1"},
    "platform-eng1": {"platform-eng1"},
    "product-eng1": {"product-eng1"},
    "product-eng2": set(),
}


@pytest.mark.parametrize("role", list(MATRIX))
def test_each_role_lists_and_reads_its_scope(
    acme: DemoOrganization, asked: dict[str, Exemption], role: str
) -> None:
    client = client_for(acme, role)

    listed = client.get("/api/v1/exemptions").json()
    details = {name: client.get(f"/api/v1/exemptions/{e.pk}") for name, e in asked.items()}

    assert {row["id"] for row in listed["results"]} == {asked[n].pk for n in MATRIX[role]}
    assert listed["count"] == len(MATRIX[role])
    assert {n for n, d in details.items() if d.status_code == 200} == MATRIX[role]
    assert {d.status_code for n, d in details.items() if n not in MATRIX[role]} <= {404}


def test_an_exemption_reads_as_money(acme: DemoOrganization, asked: dict[str, Exemption]) -> None:
    exemption = asked["product-eng1"]

    body = client_for(acme, "product-eng1").get(f"/api/v1/exemptions/{exemption.pk}").json()

    assert body["amount"] == {"amount": "500.000000", "currency": "USD"}
    assert body["clawed_back"] == {"amount": "0.000000", "currency": "USD"}
    assert (body["pool"], body["source_pool"]) == (
        acme.pools["product-eng1"].pk, acme.pools["product"].pk,
    )  # fmt: skip
    assert (body["status"], body["source"], body["starts_at"]) == (
        "pending", "team", "2026-11-23T10:00:00Z",
    )  # fmt: skip


@pytest.mark.parametrize("role", ["admin", "finance", "platform-lead"])
def test_another_organizations_exemption_is_not_found(acme: DemoOrganization, role: str) -> None:
    globex = demo_organization_create(slug="globex", password=PASSWORD, now=NOW)
    foreign = ask(globex, "platform-eng1", "platform-eng1")
    client = client_for(acme, role)

    answers = [
        client.get(f"/api/v1/exemptions/{foreign.pk}"),
        post(client, f"/api/v1/exemptions/{foreign.pk}/approve"),
        post(client, f"/api/v1/exemptions/{foreign.pk}/revoke"),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 3
    assert client.get("/api/v1/exemptions").json()["count"] == 0
    assert state(foreign)[0] == "pending"


def test_filters_and_ordering(acme: DemoOrganization, asked: dict[str, Exemption]) -> None:
    exemption_approve(exemption=asked["infra"], approver=acme.members["platform-lead"], now=NOW)
    client = client_for(acme, "finance")

    def ids(**query: Any) -> list[int]:
        return [row["id"] for row in client.get("/api/v1/exemptions", query).json()["results"]]

    assert ids(status="approved") == [asked["infra"].pk]
    assert ids(status=["pending", "approved"], ordering="-id") == sorted(
        (e.pk for e in asked.values()), reverse=True
    )
    assert ids(pool=acme.pools["product-eng1"].pk) == [asked["product-eng1"].pk]
    assert ids(source_pool=acme.pools["platform"].pk) == [
        asked["platform-eng1"].pk, asked["infra"].pk,
    ]  # fmt: skip
    assert ids(requester=acme.members["admin"].pk) == [asked["infra"].pk]
    assert ids(active_at="2026-11-24T00:00:00Z") == [e.pk for e in asked.values()]
    assert ids(active_at="2026-11-23T09:30:00Z") == []
    refused = client.get("/api/v1/exemptions", {"status": "nope"})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")


def test_an_engineer_asks_for_their_own_pool_once_per_key(acme: DemoOrganization) -> None:
    client = client_for(acme, "product-eng1")
    body = {
        "pool": acme.pools["product-eng1"].pk, "amount": "120.5",
        "starts_at": "2026-11-24T00:00:00Z", "ends_at": "2026-11-26T00:00:00Z",
        "use_case": "agent refactor", "reason": "payments migration",
    }  # fmt: skip

    first = post(client, "/api/v1/exemptions", body, key="ask-1")
    again = post(client, "/api/v1/exemptions", body, key="ask-1")
    other = post(client, "/api/v1/exemptions", {**body, "amount": "121"}, key="ask-1")

    assert first.status_code == 201
    assert (first.json()["status"], first.json()["amount"]["amount"]) == ("pending", "120.500000")
    assert (first.json()["requester"], first.json()["source_pool"]) == (
        acme.members["product-eng1"].pk, acme.pools["product"].pk,
    )  # fmt: skip
    assert (again.json(), again["Idempotent-Replayed"]) == (first.json(), "true")
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert Exemption.objects.count() == 1


@pytest.mark.parametrize(
    ("role", "pool", "expected"),
    [
        ("product-eng2", "product-eng1", (404, "not_found")),  # not their pool: unseen
        ("platform-lead", "product-eng1", (404, "not_found")),  # another team's
        ("finance", "product-eng1", (403, "not_allowed")),  # sees it, does not ask for it
        ("product-eng1", "product", (404, "not_found")),  # their team's pool: unseen
        ("admin", "organization", (400, "invalid_input")),  # the org pool is funded
    ],
)
def test_who_may_not_ask_writes_nothing(
    acme: DemoOrganization, role: str, pool: str, expected: tuple[int, str]
) -> None:
    target = acme.org_pool if pool == "organization" else acme.pools[pool]
    body = {
        "pool": target.pk, "amount": "10", "starts_at": "2026-11-24T00:00:00Z",
        "ends_at": "2026-11-26T00:00:00Z", "use_case": "x", "reason": "y",
    }  # fmt: skip

    response = post(client_for(acme, role), "/api/v1/exemptions", body, key="k")

    assert (response.status_code, response.json()["code"]) == expected
    assert (Exemption.objects.count(), IdempotentAnswer.objects.count()) == (0, 0)


def test_a_window_outside_the_period_is_refused(acme: DemoOrganization) -> None:
    body = {
        "pool": acme.pools["product-eng1"].pk, "amount": "10", "use_case": "x", "reason": "y",
        "starts_at": "2026-11-24T00:00:00Z", "ends_at": "2027-06-01T00:00:00Z",
    }  # fmt: skip

    response = post(client_for(acme, "product-eng1"), "/api/v1/exemptions", body)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_input")
    assert Exemption.objects.count() == 0


# Approving product-eng1's own ask (Product pays): the matrix of every role.
APPROVE = {
    "admin": (200, "approved"),
    "product-lead": (200, "approved"),
    "finance": (403, "not_allowed"),
    "product-eng1": (403, "self_approval"),
    "platform-lead": (404, "not_found"),
    "product-eng2": (404, "not_found"),
}


@pytest.mark.parametrize("role", list(APPROVE))
def test_who_approves(acme: DemoOrganization, asked: dict[str, Exemption], role: str) -> None:
    exemption = asked["product-eng1"]
    transfers = Transfer.objects.count()

    response = post(client_for(acme, role), f"/api/v1/exemptions/{exemption.pk}/approve", key="a")

    body = response.json()
    assert (response.status_code, body.get("status") or body["code"]) == APPROVE[role]
    if response.status_code != 200:
        assert state(exemption) == ("pending", transfers, 0)


def test_a_manager_of_a_sub_team_cannot_give_its_parents_money(
    acme: DemoOrganization, asked: dict[str, Exemption]
) -> None:
    exemption = asked["infra"]  # paid by Platform; infra-lead answers only for Infra
    transfers = Transfer.objects.count()

    refused = post(client_for(acme, "infra-lead"), f"/api/v1/exemptions/{exemption.pk}/approve")
    approved = post(client_for(acme, "platform-lead"), f"/api/v1/exemptions/{exemption.pk}/approve")

    assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
    assert (approved.status_code, approved.json()["status"]) == (200, "approved")
    assert Transfer.objects.count() == transfers  # its window has not started: no grant yet


def test_approval_inside_the_window_grants_and_revoke_claws_back(acme: DemoOrganization) -> None:
    eng, team = acme.pools["product-eng1"], acme.pools["product"]
    exemption = ask(acme, "product-eng1", "product-eng1", starts_at=NOW)
    lead = client_for(acme, "product-lead")

    granted = post(lead, f"/api/v1/exemptions/{exemption.pk}/approve", key="approve")
    replay = post(lead, f"/api/v1/exemptions/{exemption.pk}/approve", key="approve")
    twice = post(lead, f"/api/v1/exemptions/{exemption.pk}/approve")
    by_engineer = post(
        client_for(acme, "product-eng1"), f"/api/v1/exemptions/{exemption.pk}/revoke"
    )
    revoked = post(lead, f"/api/v1/exemptions/{exemption.pk}/revoke", {"reason": "done early"})

    assert (granted.status_code, granted.json()["status"]) == (200, "granted")
    assert granted.json()["grant_transfer"] is not None
    assert replay.json() == granted.json()
    assert (twice.status_code, twice.json()["code"]) == (409, "exemption_not_pending")
    assert (by_engineer.status_code, by_engineer.json()["code"]) == (403, "not_allowed")
    assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
    assert revoked.json()["clawed_back"] == {"amount": "500.000000", "currency": "USD"}
    assert revoked.json()["decision_reason"] == "done early"
    assert (pool_balance(pool=eng).available, pool_balance(pool=team).available) == (
        1_000 * DOLLAR, 17_000 * DOLLAR,
    )  # fmt: skip


def test_a_grant_the_source_cannot_pay_changes_nothing(acme: DemoOrganization) -> None:
    exemption = exemption_request(
        pool=acme.pools["product-eng1"], amount=20_000 * DOLLAR, starts_at=NOW, ends_at=END,
        use_case="x", reason="y", requester=acme.members["product-eng1"], now=NOW,
    )  # fmt: skip
    transfers = Transfer.objects.count()

    response = post(
        client_for(acme, "product-lead"), f"/api/v1/exemptions/{exemption.pk}/approve", key="a"
    )

    assert (response.status_code, response.json()["code"]) == (402, "insufficient_funds")
    assert state(exemption) == ("pending", transfers, 0)


def test_reject_needs_a_reason_and_cancel_is_the_requesters(
    acme: DemoOrganization, asked: dict[str, Exemption]
) -> None:
    lead, engineer = client_for(acme, "product-lead"), client_for(acme, "product-eng1")
    mine, theirs = asked["product-eng1"], asked["platform-eng1"]

    no_reason = post(lead, f"/api/v1/exemptions/{mine.pk}/reject", {})
    rejected = post(lead, f"/api/v1/exemptions/{mine.pk}/reject", {"reason": "not now"})
    cancel_decided = post(engineer, f"/api/v1/exemptions/{mine.pk}/cancel")
    not_requester = post(
        client_for(acme, "platform-eng1"), f"/api/v1/exemptions/{theirs.pk}/cancel"
    )
    cancelled = post(client_for(acme, "platform-lead"), f"/api/v1/exemptions/{theirs.pk}/cancel")

    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "invalid")
    assert list(no_reason.json()["field_errors"]) == ["reason"]
    assert (rejected.json()["status"], rejected.json()["decision_reason"]) == (
        "rejected", "not now",
    )  # fmt: skip
    assert (cancel_decided.status_code, cancel_decided.json()["code"]) == (409, "exemption_state")
    assert (not_requester.status_code, not_requester.json()["code"]) == (403, "not_allowed")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert state(theirs)[0] == "cancelled"
