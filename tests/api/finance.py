"""Clients for the finance API, signed in as a demo member with a personal token."""

from __future__ import annotations

from rest_framework.test import APIClient

from allocation.demo import DemoOrganization
from api.tokens import personal_token_create


def client_for(demo: DemoOrganization, username: str) -> APIClient:
    """An API client authenticated as ``username`` of ``demo`` with a fresh personal token."""
    _, raw = personal_token_create(user=demo.members[username].user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client
