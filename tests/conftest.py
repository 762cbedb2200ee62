"""Shared fixtures. Every test that touches the database ends with the books verified."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from allocation.demo import DemoOrganization, demo_organization_create
from budgets.cache import clear_local, invalidate
from budgets.models import ModelPrice
from budgets.pricing import SHIPPED_PRICES, prices_load_file
from budgets.spend import spend_verify
from ledger.selectors import ledger_verify

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ledger_unverified: the test breaks the books on purpose; skip ledger_verify and "
        "spend_verify",
    )


@pytest.fixture(autouse=True)
def _books_balance_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """ARCHITECTURE.md: ``ledger_verify`` must pass after every test scenario."""
    yield
    uses_db = {"db", "transactional_db", "django_db_setup"} & set(request.fixturenames)
    if not uses_db or request.node.get_closest_marker("ledger_unverified"):
        return
    report = ledger_verify()
    assert report.problems == []
    # The spend read model (entries, rollup) agrees with the ledger as far as it has read.
    assert spend_verify() == []


@pytest.fixture(autouse=True)
def _fresh_lookup_caches() -> Iterator[None]:
    """Each test starts with empty lookup caches, in process and shared (a version bump
    orphans the shared entries): its rows are not the last test's."""
    invalidate()
    yield
    clear_local()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Demo organizations create dozens of users; PBKDF2 would dominate the suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def acme() -> DemoOrganization:
    """The demo organization, built through the services: the open quarter funded and
    allocated, three pending transfer requests."""
    if not ModelPrice.objects.exists():
        # A transactional test's flush empties the tables, the migrated price card included.
        prices_load_file(path=SHIPPED_PRICES)
    return demo_organization_create(slug="acme", password=PASSWORD, now=NOW)


@pytest.fixture
def postgres_only() -> None:
    """Skip unless the tests run against PostgreSQL (the README's test command does)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
