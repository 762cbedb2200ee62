"""Hypothesis throws random and malformed bodies at the gateway: only documented 4xx (or a
clean answer), never a 500, and nothing written by a refused request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from allocation.demo import DemoOrganization
from budgets.models import Authorization
from ledger.models import Transfer

pytestmark = pytest.mark.django_db

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
    st.sampled_from(["NaN", "-1", "0", "1e400", "0.0000001", "12.5", "claude-sonnet-4-5",
                     "platform-eng1-claude-code", "call-1"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip
FIELDS = [
    "idempotency_key", "subject", "model", "input_tokens", "max_output_tokens", "amount",
    "session_id", "tags", "ttl_seconds", "cached_input_tokens", "output_tokens", "occurred_at",
]  # fmt: skip
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=8)
DOCUMENTED = {400, 402, 404, 409, 413, 422}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, endpoint=st.sampled_from(["authorizations", "usage", "settle", "void"]))
def test_random_bodies_get_documented_answers_and_refusals_write_nothing(
    gateway: APIClient, acme: DemoOrganization, body: dict[str, Any], endpoint: str
) -> None:
    path = {
        "authorizations": "/api/v1/authorizations",
        "usage": "/api/v1/usage",
        "settle": "/api/v1/authorizations/00000000-0000-0000-0000-000000000000/settle",
        "void": "/api/v1/authorizations/00000000-0000-0000-0000-000000000000/void",
    }[endpoint]
    before = (Transfer.objects.count(), Authorization.objects.count())

    # Encoded here, not by the test client: NaN and Infinity must reach the server as sent.
    raw = json.dumps(body, allow_nan=True)
    response = gateway.post(path, raw, content_type="application/json")

    assert response.status_code in DOCUMENTED | {200, 201}, (response.status_code, body)
    payload = response.json()
    if response.status_code >= 400 and response.status_code != 402:
        assert set(payload) <= {"code", "message", "field_errors"}
        assert (Transfer.objects.count(), Authorization.objects.count()) == before
