"""A real Celery worker and beat against the real Redis: due expiries run without anyone
calling the service. Skipped without REDIS_URL (the embedded default has no broker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from allocation.demo import DOLLAR, demo_organization_create
from allocation.exemptions import exemption_approve, exemption_request
from allocation.models import Exemption
from budgets.selectors import pool_balance
from ledger.models import Transfer
from ledger.services import hold_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_processes(postgres_only: None, tmp_path: Path) -> Iterator[None]:
    """A worker and beat on the test database, ticking every second; killed at teardown."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("needs REDIS_URL (a real broker)")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "JOBS_TICK_SECONDS": "1",
        "DJANGO_DEBUG": "1",
    }
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    subprocess.run([*celery, "purge", "-f"], env=env, cwd=ROOT, check=True, capture_output=True)
    log = (tmp_path / "celery.log").open("w")
    processes = [
        subprocess.Popen(
            [*celery, "worker", "--pool", "solo", "--loglevel", "INFO"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [*celery, "beat", "--schedule", str(tmp_path / "beat-schedule"), "--loglevel", "INFO"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def wait_for(condition: object, *, seconds: float = 60) -> bool:
    """Poll the database until the condition holds (the worker acts on its own clock)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.25)
    return False


def test_the_worker_expires_a_due_hold_and_ends_a_due_exemption(celery_processes: None) -> None:
    now = timezone.now()
    acme = demo_organization_create(slug="acme", password=PASSWORD, now=now)
    eng = acme.pools["product-eng1"]
    exemption = exemption_request(
        pool=eng, amount=300 * DOLLAR, starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(seconds=2), use_case="load test", reason="release week",
        requester=acme.members["product-eng1"], now=now,
    )  # fmt: skip
    exemption_approve(exemption=exemption, approver=acme.members["product-lead"], now=now)
    hold = hold_create(
        debit_account_id=eng.account_id, credit_account_id=eng.spend_account_id,
        amount=100 * DOLLAR, currency="USD", timeout=timedelta(seconds=1),
    )  # fmt: skip
    assert pool_balance(pool=eng).available == 1_200 * DOLLAR

    assert wait_for(lambda: Transfer.objects.filter(pending_id=hold.pk, phase="expire").exists())
    assert wait_for(lambda: Exemption.objects.get(pk=exemption.pk).status == "ended")

    assert Exemption.objects.get(pk=exemption.pk).clawed_back == 300 * DOLLAR
    assert pool_balance(pool=eng).available == 1_000 * DOLLAR
