"""Shared fixtures. Every test that touches the database ends with the books verified."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from ledger.selectors import ledger_verify


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ledger_unverified: the test breaks the books on purpose; skip ledger_verify"
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


@pytest.fixture
def postgres_only() -> None:
    """Skip unless the tests run against PostgreSQL (the README's test command does)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
