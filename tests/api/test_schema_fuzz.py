"""Schemathesis against the published schema, in process: no 500, no answer off the schema.

Bounded for CI: a few examples per operation, no deadline, one Hypothesis database-free run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from allocation.demo import DemoOrganization
from api.tokens import personal_token_create
from budgets.services import gateway_token_create
from tests.spending import call

pytestmark = pytest.mark.django_db
GATEWAY_PATHS = ("/api/v1/authorizations", "/api/v1/usage", "/api/v1/balance")
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture
def in_process() -> Iterator[WSGIHandler]:
    """Django's WSGI app on the test's own connection (as the test client does it)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_the_published_schema_holds_under_generated_requests(
    acme: DemoOrganization, in_process: WSGIHandler
) -> None:
    call(acme, "fuzz-1", tags={"repo": "acme/api", "pr": "1"}, session_id="s1")
    _, person = personal_token_create(user=acme.members["finance"].user, name="fuzz")
    _, gateway = gateway_token_create(organization=acme.organization, name="fuzz")
    schema = schemathesis.openapi.from_wsgi("/api/schema/", in_process)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 30

    for operation in operations:
        is_gateway = operation.path.startswith(GATEWAY_PATHS)
        run_operation(operation, f"Bearer {gateway}" if is_gateway else f"Token {person}")


def run_operation(operation: Any, authorization: str) -> None:
    """Generated requests at one operation, with and without credentials."""

    @settings(
        max_examples=30, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy(), authenticated=st.booleans())
    def run(case: Any, authenticated: bool) -> None:
        headers = {"Authorization": authorization} if authenticated else {}
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
