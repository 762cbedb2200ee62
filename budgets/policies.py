"""Which spending rules apply to a pool and a credential kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from budgets.cache import cached
from budgets.models import Policy, Pool

#: Reserved for a call that names no max_output_tokens and whose policy sets none.
FALLBACK_MAX_OUTPUT_TOKENS = 4_096


@dataclass(frozen=True)
class EffectivePolicy:
    soft_limit_share: Decimal | None = None
    downgrade_map: dict[str, str] = field(default_factory=dict)
    per_request_max: int | None = None
    session_cap_amount: int | None = None
    session_cap_tokens: int | None = None
    allowed_models: tuple[str, ...] = ()
    default_max_output_tokens: int = FALLBACK_MAX_OUTPUT_TOKENS
    is_frozen: bool = False


def policy_effective(*, pool: Pool, credential_kind: str) -> EffectivePolicy:
    """The merged policy for a pool and credential kind, cached (budgets/cache.py)."""
    return cached(
        ("policy", pool.pk, credential_kind),
        lambda: _policy_merge(pool=pool, credential_kind=credential_kind),
    )


def _policy_merge(*, pool: Pool, credential_kind: str) -> EffectivePolicy:
    """Merge the policies that match, least specific first: the organization default, the
    credential kind, the pool's team, the pool. A later policy's set fields win; a freeze at
    any level freezes."""
    team_id = pool.team_id if pool.team_id else (pool.member.team_id if pool.member else None)
    candidates = Policy.objects.filter(organization_id=pool.organization_id)
    ranked: list[tuple[int, Policy]] = []
    for policy in candidates:
        if policy.pool_id is not None:
            rank = 3 if policy.pool_id == pool.pk else -1
        elif policy.team_id is not None:
            rank = 2 if policy.team_id == team_id else -1
        elif policy.credential_kind:
            rank = 1 if policy.credential_kind == credential_kind else -1
        else:
            rank = 0
        if rank >= 0:
            ranked.append((rank, policy))
    merged: dict[str, object] = {}
    frozen = False
    for _, policy in sorted(ranked, key=lambda pair: pair[0]):
        frozen = frozen or policy.is_frozen
        for name in (
            "soft_limit_share", "per_request_max", "session_cap_amount", "session_cap_tokens",
            "default_max_output_tokens",
        ):  # fmt: skip
            value = getattr(policy, name)
            if value is not None:
                merged[name] = value
        if policy.downgrade_map:
            merged["downgrade_map"] = dict(policy.downgrade_map)
        if policy.allowed_models:
            merged["allowed_models"] = tuple(policy.allowed_models)
    return EffectivePolicy(is_frozen=frozen, **merged)  # type: ignore[arg-type]
