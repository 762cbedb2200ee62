"""Gateway API fixtures: the demo organization and a gateway client with a token."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from allocation.demo import DemoOrganization
from budgets.services import gateway_token_create


@pytest.fixture
def gateway(acme: DemoOrganization) -> APIClient:
    _, raw = gateway_token_create(organization=acme.organization, name="litellm")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
