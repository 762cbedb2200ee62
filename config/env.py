"""The one module that reads the process environment.

Every setting that comes from the environment is read here and nowhere else, so the list of
knobs an operator can turn is this file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigurationError(RuntimeError):
    """The environment does not describe a service we are willing to start."""


def _flag(name: str, *, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(
        f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)"
    )


def _list(name: str, *, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "")
    items = [item.strip() for item in raw.split(",") if item.strip()]
    return items or default


DEBUG: bool = _flag("DJANGO_DEBUG", default=False)

_secret = os.environ.get("DJANGO_SECRET_KEY", "")
if not _secret:
    if not DEBUG:
        raise ConfigurationError(
            "DJANGO_SECRET_KEY is not set. Set it, or set DJANGO_DEBUG=1 for a development "
            "server with a generated key."
        )
    # A fresh key per process is enough for development: sessions do not survive a restart.
    _secret = secrets.token_urlsafe(50)
SECRET_KEY: str = _secret

ALLOWED_HOSTS: list[str] = _list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)

#: The embedded default is a SQLite file beside the code; production sets a postgres:// URL.
DATABASE_URL: str = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASE: dict[str, object] = dict(dj_database_url.parse(DATABASE_URL))

#: Unset means no broker: Celery runs tasks in process (the embedded default).
REDIS_URL: str | None = os.environ.get("REDIS_URL") or None

#: Django's own psycopg connection pool per process (PostgreSQL only); 0 turns it off. On by
#: default: without it every request opens and tears down a connection (docs/performance.md).
DATABASE_POOL_MAX_SIZE: int = int(os.environ.get("DATABASE_POOL_MAX_SIZE", "4"))

#: What funds a quarter that opens without an approved plan: "previous" (the previous
#: quarter's allocations) or "none" (pools are created empty). See docs/operations.md.
PERIOD_OPEN_WITHOUT_PLAN: str = os.environ.get("PERIOD_OPEN_WITHOUT_PLAN", "previous")
if PERIOD_OPEN_WITHOUT_PLAN not in {"previous", "none"}:
    raise ConfigurationError(
        f"PERIOD_OPEN_WITHOUT_PLAN={PERIOD_OPEN_WITHOUT_PLAN!r} is not 'previous' or 'none'"
    )

#: Seconds between runs of the every-minute jobs (hold expiry, exemptions, quarter close and
#: open). Tests shorten it; production keeps 60.
JOBS_TICK_SECONDS: float = float(os.environ.get("JOBS_TICK_SECONDS", "60"))

#: Seconds between alert checks (thresholds and anomalies; docs/alerts.md).
ALERTS_CHECK_SECONDS: float = float(os.environ.get("ALERTS_CHECK_SECONDS", "60"))

#: A bearer token for GET /metrics (Prometheus). Unset: /metrics answers only in debug.
METRICS_TOKEN: str | None = os.environ.get("METRICS_TOKEN") or None
