"""Django settings. Values that vary per deployment come from config.env, nothing else."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from config import env

BASE_DIR = env.BASE_DIR
DEBUG = env.DEBUG
SECRET_KEY = env.SECRET_KEY
ALLOWED_HOSTS = env.ALLOWED_HOSTS

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "djmoney",
    "simple_history",
    "ledger",
    "budgets",
    "allocation",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict[str, Any]:
    database: dict[str, Any] = dict(env.DATABASE)
    # Services own their transactions (STYLE.md): never wrap whole requests.
    database["ATOMIC_REQUESTS"] = False
    if database["ENGINE"] == "django.db.backends.postgresql" and env.DATABASE_POOL_MAX_SIZE:
        database["CONN_MAX_AGE"] = 0
        database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env.DATABASE_POOL_MAX_SIZE,
        }
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # Wait for the writer instead of failing at once: the embedded default serves a
        # demo with a few concurrent requests.
        database.setdefault("OPTIONS", {})["timeout"] = 20
    return database


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite (the embedded demo) cannot state Policy's one-per-scope constraint with NULLs equal;
# PostgreSQL, the production database, does.
SILENCED_SYSTEM_CHECKS = ["models.W047"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    # Money travels as decimal strings, never floats.
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Budget Ledger API",
    "DESCRIPTION": "Hard, fair, auditable budgets on AI-coding spend.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several components have a field named "kind" (pools, plan lines, alerts): name each enum.
    "ENUM_NAME_OVERRIDES": {
        "PoolKindEnum": "budgets.models.PoolKind",
        "AlertKindEnum": "budgets.models.AlertKind",
    },
    # Path ids (api/urls.py, IdConverter): 1 to 18 digits.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    },
}

# The gateway's lookup caches share a version number here (budgets/cache.py): Redis across
# processes in production, process memory in the embedded default.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env.REDIS_URL}
        if env.REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery: with REDIS_URL unset, tasks run in process (the embedded default).
CELERY_BROKER_URL = env.REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Every task takes ids (or nothing), re-reads state and calls one service; all are safe to run
# twice or on two workers at once (docs/operations.md).
CELERY_BEAT_SCHEDULE = {
    "holds-expire": {
        "task": "allocation.tasks.holds_expire_task",
        "schedule": env.JOBS_TICK_SECONDS,
    },
    "exemptions-start": {
        "task": "allocation.tasks.exemptions_start_due_task",
        "schedule": env.JOBS_TICK_SECONDS,
    },
    "exemptions-end": {
        "task": "allocation.tasks.exemptions_end_due_task",
        "schedule": env.JOBS_TICK_SECONDS,
    },
    "periods-due": {"task": "allocation.tasks.periods_due_task", "schedule": env.JOBS_TICK_SECONDS},
    "alerts-check": {
        "task": "budgets.tasks.alerts_check_task",
        "schedule": env.ALERTS_CHECK_SECONDS,
    },
    "webhook-deliveries-due": {
        "task": "budgets.tasks.webhook_deliveries_due_task",
        "schedule": env.JOBS_TICK_SECONDS,
    },
    # Reports sync inline too (they are always current); this keeps what they sync small.
    "spend-entries-sync": {
        "task": "budgets.tasks.spend_entries_sync_task",
        "schedule": env.JOBS_TICK_SECONDS,
    },
    "transfer-requests-expire": {
        "task": "allocation.tasks.transfer_requests_expire_task",
        "schedule": crontab(minute=5, hour=0),
    },
}
PERIOD_OPEN_WITHOUT_PLAN = env.PERIOD_OPEN_WITHOUT_PLAN
METRICS_TOKEN = env.METRICS_TOKEN

CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR", "SEK", "NOK", "DKK")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

# Gateways send small JSON bodies; anything near this is a mistake or an attack.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
