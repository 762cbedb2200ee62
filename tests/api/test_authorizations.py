"""The gateway contract: authorize, settle, void, get; every status and code."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.demo import DOLLAR, DemoOrganization, demo_organization_create
from budgets.models import Authorization, Policy, SessionUsage
from budgets.selectors import pool_balance
from budgets.services import gateway_token_create, gateway_token_revoke
from ledger.models import Transfer, TransferCode
from tests.conftest import NOW, PASSWORD

pytestmark = pytest.mark.django_db
ENGINEER = "platform-eng1-claude-code"  # an interactive credential: platform-eng1's pool, $1,000


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def authorize(client: APIClient, key: str = "call-1", **body: Any) -> Any:
    payload = {"idempotency_key": key, "subject": ENGINEER, "model": "claude-sonnet-4-5",
               "input_tokens": 10_000, "max_output_tokens": 1_000, **body}  # fmt: skip
    return client.post("/api/v1/authorizations", payload, format="json")


def books(acme: DemoOrganization) -> tuple[int, int, int]:
    """Pool available, transfers and authorizations: 'nothing written' checks."""
    return (
        pool_balance(pool=acme.pools["platform-eng1"]).available,
        Transfer.objects.count(),
        Authorization.objects.count(),
    )


# --- authorize ---------------------------------------------------------------------------------


def test_authorize_reserves_the_price_of_the_estimate(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    response = authorize(gateway)

    body = response.json()
    assert response.status_code == 201
    # 10,000 input x $3/M + 1,000 output x $15/M = $0.045
    assert {k: body[k] for k in ("status", "decision", "model", "requested_model", "reserved",
                                 "available", "message")} == {
        "status": "held", "decision": "allow", "model": "claude-sonnet-4-5",
        "requested_model": "claude-sonnet-4-5", "reserved": usd("0.045000"),
        "available": usd("999.955000"), "message": "",
    }  # fmt: skip
    assert pool_balance(pool=acme.pools["platform-eng1"]).reserved == 45_000


def test_authorize_by_member_email_and_by_an_agent_credential(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    by_email = authorize(gateway, key="a", subject="platform-eng1@acme.example")
    by_ci = authorize(gateway, key="b", subject="ci-review-bot")

    assert (by_email.status_code, by_ci.status_code) == (201, 201)
    assert pool_balance(pool=acme.pools["ci-agents"]).reserved == 45_000


def test_an_explicit_amount_is_reserved_as_sent(gateway: APIClient) -> None:
    response = authorize(gateway, amount="0.25", input_tokens=0, max_output_tokens=None)

    assert response.json()["reserved"] == usd("0.250000")


def test_replay_returns_the_same_status_and_body(gateway: APIClient) -> None:
    first = authorize(gateway)
    again = authorize(gateway)

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert Authorization.objects.count() == 1


def test_same_key_different_body_is_a_conflict_and_writes_nothing(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    authorize(gateway)
    before = books(acme)

    response = authorize(gateway, input_tokens=10_001)

    assert (response.status_code, response.json()["code"]) == (409, "idempotency_conflict")
    assert books(acme) == before


def test_budget_exhausted_is_402_and_the_denial_is_replayed(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    response = authorize(gateway, amount="1000.01", input_tokens=0)
    from allocation.services import pool_allocate

    pool_allocate(source=acme.pools["platform"], target=acme.pools["platform-eng1"],
                  amount=10 * DOLLAR, actor=acme.members["platform-lead"])  # fmt: skip
    again = authorize(gateway, amount="1000.01", input_tokens=0)

    assert response.status_code == 402
    assert response.json() == {
        "id": response.json()["id"], "decision": "deny", "code": "budget_exhausted",
        "message": "The pool's budget is exhausted for this call.",
        "available": usd("1000.000000"),
    }  # fmt: skip
    assert (again.status_code, again.json()) == (402, response.json())
    assert pool_balance(pool=acme.pools["platform-eng1"]).reserved == 0


# --- policies ----------------------------------------------------------------------------------


def test_frozen_pool_and_disallowed_model_are_denied(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    Policy.objects.create(organization=acme.organization, allowed_models=["claude-haiku-4-5"])
    denied_model = authorize(gateway, key="m")
    Policy.objects.create(organization=acme.organization, team=acme.teams["platform"],
                          is_frozen=True)  # fmt: skip
    frozen = authorize(gateway, key="f", model="claude-haiku-4-5")

    assert (denied_model.status_code, denied_model.json()["code"]) == (402, "model_not_allowed")
    assert (frozen.status_code, frozen.json()["code"]) == (402, "pool_frozen")


def test_per_request_maximum_denies_a_large_call(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    Policy.objects.create(organization=acme.organization, per_request_max=40_000)

    response = authorize(gateway)

    assert (response.status_code, response.json()["code"]) == (402, "request_limit")


def test_agent_credentials_use_their_own_tighter_policy(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    Policy.objects.create(organization=acme.organization, credential_kind="ci",
                          per_request_max=10_000)  # fmt: skip

    agent = authorize(gateway, key="ci", subject="ci-review-bot")
    person = authorize(gateway, key="me")

    assert (agent.status_code, agent.json()["code"]) == (402, "request_limit")
    assert person.status_code == 201


def test_session_cap_in_money(gateway: APIClient, acme: DemoOrganization) -> None:
    Policy.objects.create(organization=acme.organization, session_cap_amount=100_000)

    first = authorize(gateway, key="1", session_id="s")
    second = authorize(gateway, key="2", session_id="s")
    third = authorize(gateway, key="3", session_id="s")
    other = authorize(gateway, key="4", session_id="t")

    assert [r.status_code for r in (first, second, third, other)] == [201, 201, 402, 201]
    assert third.json()["code"] == "session_limit"
    assert SessionUsage.objects.get(session_id="s").amount == 90_000


def test_soft_limit_downgrades_visibly_and_the_saving_is_measured(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    Policy.objects.create(organization=acme.organization, soft_limit_share=Decimal("0.5"),
                          downgrade_map={"claude-sonnet-4-5": "claude-haiku-4-5"})  # fmt: skip
    big = authorize(gateway, key="big", amount="600", input_tokens=0)

    response = authorize(gateway, key="next")
    settle = gateway.post(
        f"/api/v1/authorizations/{response.json()['id']}/settle",
        {"input_tokens": 10_000, "output_tokens": 1_000}, format="json",
    )  # fmt: skip
    detail = gateway.get(f"/api/v1/authorizations/{response.json()['id']}").json()

    assert big.json()["decision"] == "allow"
    body = response.json()
    assert (body["decision"], body["model"], body["requested_model"]) == (
        "downgrade", "claude-haiku-4-5", "claude-sonnet-4-5",
    )  # fmt: skip
    assert body["message"] == (
        "This pool has used 60% of its budget (soft limit 50%): "
        "claude-sonnet-4-5 is downgraded to claude-haiku-4-5."
    )
    assert body["reserved"] == usd("0.015000")  # 10,000 x $1/M + 1,000 x $5/M
    assert settle.json()["charged"] == usd("0.015000")
    assert detail["saving"] == usd("0.030000")  # the same usage on sonnet: $0.045


# --- settle and void ---------------------------------------------------------------------------


def settle(client: APIClient, authorization_id: str, **usage: Any) -> Any:
    return client.post(f"/api/v1/authorizations/{authorization_id}/settle", usage, format="json")


def test_settle_charges_the_real_usage_and_releases_the_rest(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    held = authorize(gateway).json()

    response = settle(gateway, held["id"], input_tokens=4_000, cached_input_tokens=3_000,
                      output_tokens=200)  # fmt: skip

    # 1,000 x $3/M + 3,000 x $0.30/M + 200 x $15/M = 0.003 + 0.0009 + 0.003
    assert response.status_code == 200
    assert response.json() == {
        "id": held["id"], "status": "settled", "charged": usd("0.006900"),
        "released": usd("0.038100"), "overage": usd("0.000000"),
        "available": usd("999.993100"),
    }  # fmt: skip
    replay = settle(gateway, held["id"], input_tokens=4_000, cached_input_tokens=3_000,
                    output_tokens=200)  # fmt: skip
    assert replay.json() == response.json()


def test_settle_above_the_reservation_records_an_overage(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    held = authorize(gateway).json()

    response = settle(gateway, held["id"], input_tokens=10_000, output_tokens=5_000)

    # 10,000 x $3/M + 5,000 x $15/M = $0.105 against $0.045 held
    assert (response.json()["charged"], response.json()["overage"]) == (
        usd("0.105000"), usd("0.060000"),
    )  # fmt: skip
    overage = Transfer.objects.get(code=TransferCode.OVERAGE)
    assert (overage.amount, overage.metadata["review"]) == (60_000, True)


def test_settle_after_the_hold_expired_is_still_recorded(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    held = authorize(gateway, ttl_seconds=60).json()

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        response = settle(gateway, held["id"], input_tokens=1_000, output_tokens=100)

    assert response.json()["status"] == "settled_late"
    assert response.json()["charged"] == usd("0.004500")
    assert pool_balance(pool=acme.pools["platform-eng1"]).spent == 4_500


def test_void_releases_and_state_errors_are_409(gateway: APIClient) -> None:
    voided, settled = authorize(gateway, key="v").json(), authorize(gateway, key="s").json()
    settle(gateway, settled["id"], input_tokens=1)

    response = gateway.post(f"/api/v1/authorizations/{voided['id']}/void")
    again = gateway.post(f"/api/v1/authorizations/{voided['id']}/void")
    settle_voided = settle(gateway, voided["id"], input_tokens=1)
    void_settled = gateway.post(f"/api/v1/authorizations/{settled['id']}/void")

    assert response.json() == {"id": voided["id"], "status": "voided", "released": usd("0.045000")}
    assert again.json() == response.json()
    assert (settle_voided.status_code, settle_voided.json()["code"]) == (409, "invalid_state")
    assert (void_settled.status_code, void_settled.json()["code"]) == (409, "invalid_state")


# --- errors ------------------------------------------------------------------------------------


def test_missing_bad_and_revoked_tokens_are_401(gateway: APIClient, acme: DemoOrganization) -> None:
    token, raw = gateway_token_create(organization=acme.organization, name="old")
    gateway_token_revoke(token=token)
    before = books(acme)

    for header in [None, "Bearer nope", f"Bearer {raw}", "Bearer a b", "Basic abc"]:
        client = APIClient()
        if header:
            client.credentials(HTTP_AUTHORIZATION=header)
        response = authorize(client)
        assert response.status_code == 401, header
        assert set(response.json()) == {"code", "message"}

    assert books(acme) == before


def test_unknown_subject_and_another_organizations_are_404(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    globex = demo_organization_create(slug="globex", password=PASSWORD, now=NOW,
                                      engineers_per_team=1)  # fmt: skip
    _, raw = gateway_token_create(organization=globex.organization, name="theirs")
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    mine = authorize(gateway).json()

    assert authorize(gateway, key="x", subject="nobody").json()["code"] == "not_found"
    # platform-eng2's credential exists in acme only (globex has one engineer per team)
    assert authorize(theirs, key="y", subject="platform-eng2-claude-code").status_code == 404
    assert theirs.get(f"/api/v1/authorizations/{mine['id']}").status_code == 404
    assert theirs.post(f"/api/v1/authorizations/{mine['id']}/void").status_code == 404
    assert gateway.get("/api/v1/authorizations/not-a-uuid").status_code == 404


def test_unknown_model_is_422(gateway: APIClient, acme: DemoOrganization) -> None:
    before = books(acme)

    response = authorize(gateway, model="gpt-99")

    assert (response.status_code, response.json()["code"]) == (422, "unknown_model")
    assert books(acme) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"input_tokens": -1}, {"input_tokens": "many"}, {"input_tokens": 10**30},
        {"max_output_tokens": 1.5}, {"amount": 0.1}, {"amount": "NaN"}, {"amount": "-1"},
        {"amount": "0.0000001"}, {"amount": "1e400"}, {"idempotency_key": ""},
        {"idempotency_key": "k" * 201}, {"ttl_seconds": 0}, {"ttl_seconds": 3601},
        {"tags": {"repo": 5}}, {"tags": {f"t{i}": "x" for i in range(21)}}, {"tags": ["a"]},
        {"subject": None}, {"model": ""},
    ],
)  # fmt: skip
def test_malformed_bodies_are_400_invalid_and_write_nothing(
    gateway: APIClient, acme: DemoOrganization, changes: dict[str, Any]
) -> None:
    before = books(acme)

    response = authorize(gateway, **changes)

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert books(acme) == before


def test_not_json_and_oversized_bodies_are_4xx(gateway: APIClient, acme: DemoOrganization) -> None:
    before = books(acme)

    garbage = gateway.post("/api/v1/authorizations", "{not json", content_type="application/json")
    huge = gateway.post("/api/v1/authorizations", {"idempotency_key": "k", "subject": "x" * 300_000,
                        "model": "m"}, format="json")  # fmt: skip

    assert (garbage.status_code, garbage.json()["code"]) == (400, "invalid")
    assert (huge.status_code, huge.json()["code"]) == (413, "too_large")
    assert books(acme) == before


def test_unicode_keys_and_tags_are_fine(gateway: APIClient) -> None:
    response = authorize(gateway, key="呼び出し-🚀", tags={"repo": "café/ünï", "pr": "42"})

    assert response.status_code == 201


# --- lean ---------------------------------------------------------------------------------------


def test_authorize_and_settle_use_a_bounded_number_of_queries(gateway: APIClient) -> None:
    authorize(gateway, key="warm")
    with CaptureQueriesContext(connection) as authorizing:
        held = authorize(gateway, key="counted").json()
    with CaptureQueriesContext(connection) as settling:
        settle(gateway, held["id"], input_tokens=100, output_tokens=10)

    # Lookups are cached; inside the test transaction each atomic block adds SAVEPOINT and
    # RELEASE (four statements here that production does not send).
    assert len(authorizing) == 11, [q["sql"][:80] for q in authorizing.captured_queries]
    assert len(settling) == 11, [q["sql"][:80] for q in settling.captured_queries]


def test_an_org_admin_revokes_a_gateway_token_in_admin(acme: DemoOrganization) -> None:
    from django.test import Client

    token, raw = gateway_token_create(organization=acme.organization, name="to-revoke")
    client = Client()
    client.force_login(acme.members["admin"].user)

    client.post(
        "/admin/budgets/gatewaytoken/",
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )
    gateway = APIClient()
    gateway.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert authorize(gateway).status_code == 401


def test_create_gateway_token_prints_it_once_and_stores_the_hash(
    acme: DemoOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import CommandError, call_command

    from budgets.models import GatewayToken
    from budgets.services import gateway_token_hash

    call_command("create_gateway_token", "--org", "acme", "--name", "litellm-prod")
    raw = capsys.readouterr().out.strip().splitlines()[-1]

    token = GatewayToken.objects.get(name="litellm-prod")
    assert token.token_hash == gateway_token_hash(raw) != raw
    assert raw.startswith("blg_")
    with pytest.raises(CommandError, match="No organization"):
        call_command("create_gateway_token", "--org", "nope", "--name", "x")


def test_a_policy_change_reaches_the_cached_gateway_at_once(
    gateway: APIClient, acme: DemoOrganization
) -> None:
    assert authorize(gateway, key="before").status_code == 201  # policy now cached

    Policy.objects.create(organization=acme.organization, per_request_max=1)
    after = authorize(gateway, key="after")

    assert (after.status_code, after.json()["code"]) == (402, "request_limit")
