"""People's writes: fund, allocate, transfer requests, commits; Idempotency-Key on each."""

from __future__ import annotations

from typing import Any

import pytest

from allocation.demo import DemoOrganization
from allocation.models import TransferRequest
from api.models import IdempotentAnswer
from budgets.selectors import pool_balance
from ledger.models import Transfer
from tests.api.finance import client_for
from tests.spending import call

pytestmark = pytest.mark.django_db


def post(client: Any, path: str, body: dict[str, Any] | None = None, key: str = "") -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(path, body or {}, format="json", **headers)


def test_finance_funds_the_organization_pool(acme: DemoOrganization) -> None:
    path = f"/api/v1/pools/{acme.org_pool.pk}/fund"

    response = post(client_for(acme, "finance"), path, {"amount": "250.50"})

    assert response.status_code == 201
    assert response.json()["amount"] == {"amount": "250.500000", "currency": "USD"}
    assert pool_balance(pool=acme.org_pool).budget == 100_250_500_000


@pytest.mark.parametrize("role", ["platform-lead", "platform-eng1"])
def test_only_finance_and_admins_fund(acme: DemoOrganization, role: str) -> None:
    transfers = Transfer.objects.count()

    response = post(
        client_for(acme, role), f"/api/v1/pools/{acme.org_pool.pk}/fund", {"amount": "1"}
    )

    assert (response.status_code, response.json()["code"]) == (403, "not_allowed")
    assert Transfer.objects.count() == transfers


def test_a_retry_with_the_same_key_replays_and_moves_money_once(acme: DemoOrganization) -> None:
    client = client_for(acme, "finance")
    path = f"/api/v1/pools/{acme.org_pool.pk}/fund"

    first = post(client, path, {"amount": "10"}, key="fund-1")
    again = post(client, path, {"amount": "10"}, key="fund-1")
    other = post(client, path, {"amount": "11"}, key="fund-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert pool_balance(pool=acme.org_pool).budget == 100_010_000_000


def test_a_failed_request_is_not_kept_and_may_be_retried(acme: DemoOrganization) -> None:
    client = client_for(acme, "platform-lead")
    source, target = acme.pools["platform"], acme.pools["platform-eng1"]
    path = f"/api/v1/pools/{source.pk}/allocate"

    refused = post(client, path, {"target": target.pk, "amount": "999999"}, key="k")
    kept = IdempotentAnswer.objects.count()
    done = post(client, path, {"target": target.pk, "amount": "5", "reason": "x"}, key="k2")

    assert (refused.status_code, refused.json()["code"]) == (402, "insufficient_funds")
    assert kept == 0
    assert done.status_code == 201
    assert pool_balance(pool=target).budget == 1_005_000_000


def test_a_manager_allocates_to_an_engineer_but_not_in_another_team(
    acme: DemoOrganization,
) -> None:
    client = client_for(acme, "platform-lead")
    own = post(
        client, f"/api/v1/pools/{acme.pools['platform'].pk}/allocate",
        {"target": acme.pools["platform-eng2"].pk, "amount": "5"},
    )  # fmt: skip
    foreign = post(
        client, f"/api/v1/pools/{acme.pools['product'].pk}/allocate",
        {"target": acme.pools["product-eng2"].pk, "amount": "5"},
    )  # fmt: skip

    assert own.status_code == 201
    assert (foreign.status_code, foreign.json()["code"]) == (403, "not_allowed")


def test_request_approve_reject_cancel(acme: DemoOrganization) -> None:
    gift, pull, _ = acme.requests  # platform-eng1 → product-eng1; product → product-eng2
    lead = client_for(acme, "platform-lead")

    approved = post(lead, f"/api/v1/transfer-requests/{gift.pk}/approve", key="a")
    replay = post(lead, f"/api/v1/transfer-requests/{gift.pk}/approve", key="a")
    twice = post(lead, f"/api/v1/transfer-requests/{gift.pk}/approve")
    hidden = post(lead, f"/api/v1/transfer-requests/{pull.pk}/reject", {"reason": "no"})
    rejected = post(
        client_for(acme, "product-lead"), f"/api/v1/transfer-requests/{pull.pk}/reject",
        {"reason": "not this sprint"},
    )  # fmt: skip

    assert (approved.status_code, approved.json()["status"]) == (200, "executed")
    assert replay.json() == approved.json()
    assert (twice.status_code, twice.json()["code"]) == (409, "request_not_pending")
    assert hidden.status_code == 404
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
    assert pool_balance(pool=acme.pools["product-eng1"]).budget == 1_040_000_000


def test_an_engineer_asks_and_cancels(acme: DemoOrganization) -> None:
    client = client_for(acme, "platform-eng2")
    body = {
        "source_pool": acme.pools["platform"].pk, "target_pool": acme.pools["platform-eng2"].pk,
        "amount": "12.5", "reason": "agent-heavy week",
    }  # fmt: skip

    asked = post(client, "/api/v1/transfer-requests", body, key="ask")
    self_approval = post(client, f"/api/v1/transfer-requests/{asked.json()['id']}/approve")
    cancelled = post(client, f"/api/v1/transfer-requests/{asked.json()['id']}/cancel")

    assert (asked.status_code, asked.json()["status"]) == (201, "pending")
    assert (self_approval.status_code, self_approval.json()["code"]) == (403, "self_approval")
    assert cancelled.json()["status"] == "cancelled"
    assert TransferRequest.objects.filter(reason="agent-heavy week").count() == 1


def test_a_commit_receipt_with_trailers(acme: DemoOrganization) -> None:
    first = call(acme, "c1", session_id="s1", tags={"repo": "acme/api", "pr": "5"})
    call(acme, "c2", session_id="s1", used_model="claude-haiku-4-5")
    call(acme, "c3", session_id="other")
    client = client_for(acme, "platform-eng1")
    body = {
        "repo": "acme/api", "sha": "abc1234def", "pr_number": 5, "is_merged": True,
        "author": "platform-eng1@acme.example", "session_ids": ["s1"],
        "authorization_ids": [str(first.id)],
    }  # fmt: skip

    recorded = post(client, "/api/v1/commits", body, key="commit-1")
    again = post(client, "/api/v1/commits", body)
    receipt = client.get("/api/v1/commits/acme/api/abc1234def/receipt").json()
    missing = client.get("/api/v1/commits/acme/api/0000000/receipt")

    assert recorded.status_code == 201
    assert again.json()["session_ids"] == ["s1"]
    assert [(m["model"], m["amount"]["amount"], m["calls"]) for m in receipt["models"]] == [
        ("claude-sonnet-4-5", "0.045000", 1),
        ("claude-haiku-4-5", "0.015000", 1),
    ]
    assert (receipt["total"]["input_tokens"], receipt["total"]["output_tokens"]) == (
        20_000, 2_000,
    )  # fmt: skip
    assert receipt["trailers"] == [
        "AI-Model: claude-sonnet-4-5, claude-haiku-4-5",
        "AI-Cost: 0.060000 USD",
    ]
    assert missing.status_code == 404


def test_merged_pull_request_cost_by_week(acme: DemoOrganization) -> None:
    call(acme, "c1", session_id="s1")
    call(acme, "c2", session_id="s2")
    client = client_for(acme, "finance")
    for sha, session in (("aaaaaaa", "s1"), ("bbbbbbb", "s2")):
        post(client, "/api/v1/commits", {
            "repo": "acme/api", "sha": sha, "pr_number": 5, "is_merged": True,
            "merged_at": "2026-11-24T10:00:00Z", "session_ids": [session],
        })  # fmt: skip

    rows = client.get(
        "/api/v1/reports/pull-requests",
        {"start": "2026-11-23T00:00:00Z", "end": "2026-11-30T00:00:00Z"},
    ).json()

    assert rows == [
        {
            "week": "2026-11-23", "team": acme.teams["platform"].pk, "repo": "acme/api",
            "merged_prs": 1, "amount": {"amount": "0.090000", "currency": "USD"},
            "per_pr": {"amount": "0.090000", "currency": "USD"},
        }
    ]  # fmt: skip


def test_a_commit_with_another_organizations_authorization_is_refused(
    acme: DemoOrganization,
) -> None:
    body = {"repo": "acme/api", "sha": "abcdef1", "authorization_ids": [
        "00000000-0000-0000-0000-000000000000"]}  # fmt: skip

    response = post(client_for(acme, "platform-eng1"), "/api/v1/commits", body)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_merged_pull_request_cost_counts_each_line_once_per_pull_request(
    acme: DemoOrganization,
) -> None:
    # Given: s1 ($0.09, two calls) is linked by two commits of PR 5 and by PR 6; a3 ($0.045)
    # is linked to PR 6 by authorization and by its session s3; product's p1 ($0.045) to PR 7,
    # merged the next week.
    call(acme, "a1", session_id="s1")
    call(acme, "a2", session_id="s1")
    a3 = call(acme, "a3", session_id="s3")
    call(acme, "p1", subject="product-eng1-claude-code", session_id="s9")
    client = client_for(acme, "finance")
    for sha, pr, merged_at, links in (
        ("aaaaaaa", 5, "2026-11-24T10:00:00Z", {"session_ids": ["s1"]}),
        ("bbbbbbb", 5, "2026-11-25T10:00:00Z", {"session_ids": ["s1"]}),
        (
            "ccccccc",
            6,
            "2026-11-26T10:00:00Z",
            {"session_ids": ["s1", "s3"], "authorization_ids": [str(a3.pk)]},
        ),
        ("ddddddd", 7, "2026-12-01T10:00:00Z", {"session_ids": ["s9"]}),
        ("eeeeeee", 8, "2026-11-24T10:00:00Z", {"session_ids": ["no-such-session"]}),
    ):
        post(client, "/api/v1/commits", {
            "repo": "acme/api", "sha": sha, "pr_number": pr, "is_merged": True,
            "merged_at": merged_at, **links,
        })  # fmt: skip

    # When
    rows = client.get(
        "/api/v1/reports/pull-requests",
        {"start": "2026-11-23T00:00:00Z", "end": "2026-12-07T00:00:00Z"},
    ).json()

    # Then: PR 5 $0.09 (s1 once), PR 6 $0.09 + $0.045 (a3 once); PR 8 has no spend, no row.
    assert [
        (r["week"], r["team"], r["merged_prs"], r["amount"]["amount"], r["per_pr"]["amount"])
        for r in rows
    ] == [
        ("2026-11-23", acme.teams["platform"].pk, 2, "0.225000", "0.112500"),
        ("2026-11-30", acme.teams["product"].pk, 1, "0.045000", "0.045000"),
    ]


def test_only_the_recorder_finance_or_admins_change_a_commit(acme: DemoOrganization) -> None:
    body = {"repo": "acme/api", "sha": "cafe123", "pr_number": 5, "is_merged": False,
            "session_ids": ["s1"]}  # fmt: skip
    post(client_for(acme, "platform-eng1"), "/api/v1/commits", body)

    relinked = post(client_for(acme, "product-eng1"), "/api/v1/commits",
                    {**body, "session_ids": ["s2"]})  # fmt: skip
    hijacked = post(client_for(acme, "product-eng1"), "/api/v1/commits",
                    {**body, "pr_number": 6, "is_merged": True})  # fmt: skip
    merged = post(client_for(acme, "finance"), "/api/v1/commits", {**body, "is_merged": True})

    assert relinked.status_code == 201
    assert (hijacked.status_code, hijacked.json()["code"]) == (403, "not_allowed")
    assert (merged.json()["pr_number"], merged.json()["is_merged"]) == (5, True)
    assert sorted(merged.json()["session_ids"]) == ["s1", "s2"]
