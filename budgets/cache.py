"""In-process caches for the gateway's lookups, invalidated on change across processes.

The gateway token, the spender a subject names, the effective policy and the price card change
rarely and are read on every call. Each process keeps them in a dict. A shared version number
(in Redis when REDIS_URL is set, else in process memory) is bumped whenever one of the models
behind them is saved or deleted (budgets/signals.py); a process that sees a new version drops
its whole cache. Every entry also expires after ``TTL_SECONDS``, a bound on staleness should a
bump be missed (for example an edit made with raw SQL).

Balances are never cached: they are read from the ledger on every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.core.cache import cache

T = TypeVar("T")
VERSION_KEY = "budgets:config-version"
TTL_SECONDS = 60.0

_lock = threading.Lock()
_entries: dict[Hashable, tuple[float, Any]] = {}
_generation: list[int | None] = [None]


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """The cached value for ``key``, loading it on a miss. Exceptions are not cached."""
    version = cache.get_or_set(VERSION_KEY, 1)
    now = time.monotonic()
    with _lock:
        if version != _generation[0]:
            _entries.clear()
            _generation[0] = version
        hit = _entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[no-any-return]
    value = load()
    with _lock:
        _entries[key] = (now + TTL_SECONDS, value)
    return value


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
