"""Caches for the gateway's lookups, invalidated on change across processes.

The gateway token, the spender a subject names, the effective policy and the price card change
rarely and are read on every call. Two tiers:

1. each process keeps them in a dict (a hit costs no round trip);
2. on a miss there, the shared cache (Redis when REDIS_URL is set) is asked before the
   database, so a lookup is loaded from the database once for all workers, not once per worker.
   With thousands of subjects spread over several workers, this is most misses.

A shared version number (in the same cache) is bumped whenever one of the models behind them is
saved or deleted (budgets/signals.py), at once and again after commit. It is part of every
shared key, so a bump orphans the shared entries; a process that sees a new version drops its
own dict. A process reads the version at most once every ``VERSION_CHECK_SECONDS`` (one round
trip a second, not one per lookup), so a change made in one process reaches the others within
that second; the process that made it drops its own cache at once. Every entry also expires
after ``TTL_SECONDS``, a bound on staleness should a bump be missed (an edit made with raw SQL).

Balances are never cached: they are read from the ledger on every call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.core.cache import cache

T = TypeVar("T")
VERSION_KEY = "budgets:config-version"
TTL_SECONDS = 300.0
VERSION_CHECK_SECONDS = 1.0

_lock = threading.Lock()
_entries: dict[Hashable, tuple[float, Any]] = {}
_generation: list[int | None] = [None]
_next_version_check: list[float] = [0.0]
_MISSING = object()


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """The cached value for ``key``, loading it on a miss. Exceptions are not cached."""
    now = time.monotonic()
    if now >= _next_version_check[0]:
        version = cache.get_or_set(VERSION_KEY, 1)
        with _lock:
            _next_version_check[0] = now + VERSION_CHECK_SECONDS
            if version != _generation[0]:
                _entries.clear()
                _generation[0] = version
    with _lock:
        hit = _entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[no-any-return]
        generation = _generation[0]
    shared_key = shared_key_of(key, generation)
    value = cache.get(shared_key, _MISSING)
    if value is _MISSING:
        value = load()
        cache.set(shared_key, value, timeout=TTL_SECONDS)
    with _lock:
        _entries[key] = (now + TTL_SECONDS, value)
    return value  # type: ignore[no-any-return]


def shared_key_of(key: Hashable, generation: int | None) -> str:
    """The key in the shared cache. Hashed: subjects are free text (spaces, unicode, any
    length); cache keys must not be."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()
    return f"budgets:cached:{generation}:{digest}"


def invalidate() -> None:
    """Tell every process its cache is stale (and drop this process's at once)."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # no version yet (a fresh cache): any new value differs from None
        cache.set(VERSION_KEY, 2, timeout=None)
    clear_local()


def clear_local() -> None:
    with _lock:
        _entries.clear()
        _generation[0] = None
        _next_version_check[0] = 0.0
