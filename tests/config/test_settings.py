"""Settings come from the environment, and a production start without a secret is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]


def settings_in(
    env: dict[str, str], show: str = "DATABASES['default']['ENGINE']"
) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly ``env`` set; print ``show``."""
    code = f"from django.conf import settings; print(settings.{show})"
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
        check=False,
    )  # fmt: skip


def test_production_without_a_secret_key_refuses_to_start() -> None:
    result = settings_in({})

    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_generates_a_development_secret_and_defaults_to_sqlite() -> None:
    result = settings_in({"DJANGO_DEBUG": "1"})

    assert (result.returncode, result.stdout.strip()) == (0, "django.db.backends.sqlite3")


def test_database_url_selects_postgresql() -> None:
    result = settings_in(
        {"DJANGO_SECRET_KEY": "x" * 50, "DATABASE_URL": "postgres://u@127.0.0.1:5432/db"}
    )

    assert (result.returncode, result.stdout.strip()) == (0, "django.db.backends.postgresql")


def test_a_malformed_flag_is_refused() -> None:
    result = settings_in({"DJANGO_DEBUG": "maybe"})

    assert result.returncode == 1
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_requests_are_not_wrapped_in_transactions() -> None:
    assert settings.DATABASES["default"]["ATOMIC_REQUESTS"] is False


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_seed_demo_loads_once_and_prints_the_logins(capsys: pytest.CaptureFixture[str]) -> None:
    from allocation.models import TransferRequest
    from ledger.models import Transfer

    call_command("seed_demo")
    first = (Transfer.objects.count(), TransferRequest.objects.count())
    call_command("seed_demo")

    assert first == (Transfer.objects.count(), TransferRequest.objects.count())
    assert first[1] == 3
    out = capsys.readouterr().out
    assert "password for every login: budget-ledger-demo" in out
    assert "acme-platform-lead" in out
    assert "organization 'acme' exists; keeping it" in out


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_seed_demo_refuses_outside_debug() -> None:
    with pytest.raises(CommandError, match="DJANGO_DEBUG=1"):
        call_command("seed_demo")


def test_healthz_answers_without_the_database(client: object) -> None:
    from django.test import Client

    assert isinstance(client, Client)
    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_postgresql_uses_a_connection_pool_by_default() -> None:
    result = settings_in(
        {"DJANGO_SECRET_KEY": "x" * 50, "DATABASE_URL": "postgres://u@127.0.0.1:5432/db"},
        show="DATABASES['default']['OPTIONS']",
    )

    assert result.stdout.strip() == "{'pool': {'min_size': 1, 'max_size': 4}}", result.stderr
