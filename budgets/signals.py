"""Cache invalidation: any change to what the gateway caches bumps the shared version.

Signals here are infrastructure (keeping caches honest), never domain flow.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from budgets.cache import invalidate
from budgets.models import (
    Credential,
    GatewayToken,
    Member,
    ModelPrice,
    Organization,
    Period,
    Policy,
    Pool,
    Team,
)

CACHED_MODELS = (
    Credential, GatewayToken, Member, ModelPrice, Organization, Period, Policy, Pool, Team,
)  # fmt: skip


def _changed(**kwargs: Any) -> None:
    # Now, so this process never serves the old value; and again after commit, because another
    # process that reloads between the first bump and the commit reads the old row.
    invalidate()
    transaction.on_commit(invalidate)


def connect() -> None:
    for model in CACHED_MODELS:
        post_save.connect(_changed, sender=model, dispatch_uid=f"cache-{model.__name__}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"cache-{model.__name__}-del")
    m2m_changed.connect(
        _changed, sender=Member.managed_teams.through, dispatch_uid="cache-managed-teams"
    )
