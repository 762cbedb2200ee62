"""The gateway's lookup caches: per process, shared between processes, invalidated by version."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache

from budgets import cache as lookups


class Loads:
    """A loader that counts its calls."""

    def __init__(self, value: Any) -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000.0]
    monkeypatch.setattr("budgets.cache.time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def another_process() -> None:
    """What another worker sees: the shared cache, none of this process's dict."""
    lookups.clear_local()


def test_a_lookup_is_loaded_once_for_all_processes(clock: list[float]) -> None:
    load = Loads({"pool": 7})

    first = lookups.cached(("spender", 1, "eng 1 ünï"), load)
    another_process()
    second = lookups.cached(("spender", 1, "eng 1 ünï"), load)

    assert first == second == {"pool": 7}
    assert load.calls == 1


def test_none_is_a_value_and_exceptions_are_not_cached(clock: list[float]) -> None:
    nothing = Loads(None)
    lookups.cached(("token", "bad"), nothing)
    another_process()
    lookups.cached(("token", "bad"), nothing)

    def fails() -> Any:
        raise LookupError("not found")

    for _ in range(2):
        with pytest.raises(LookupError):
            lookups.cached(("token", "worse"), fails)
    assert nothing.calls == 1
    assert lookups.cached(("token", "worse"), Loads("found")) == "found"


def test_a_change_in_another_process_is_seen_within_the_version_check(
    clock: list[float],
) -> None:
    load = Loads("old")
    lookups.cached(("policy", 3, "agent"), load)

    cache.incr(lookups.VERSION_KEY)  # another process saved a Policy
    load.value = "new"
    clock[0] += lookups.VERSION_CHECK_SECONDS / 2
    within = lookups.cached(("policy", 3, "agent"), load)
    clock[0] += lookups.VERSION_CHECK_SECONDS
    after = lookups.cached(("policy", 3, "agent"), load)

    assert (within, after, load.calls) == ("old", "new", 2)


def test_a_change_in_this_process_is_seen_at_once(clock: list[float]) -> None:
    load = Loads("old")
    lookups.cached(("price", "opus"), load)

    lookups.invalidate()
    load.value = "new"

    assert lookups.cached(("price", "opus"), load) == "new"


def test_entries_expire_after_the_ttl(clock: list[float]) -> None:
    load = Loads("v1")
    lookups.cached(("price", "haiku"), load)
    load.value = "v2"

    clock[0] += lookups.TTL_SECONDS - 1
    assert lookups.cached(("price", "haiku"), load) == "v1"
    clock[0] += 2
    # The shared entry expires in Redis's own time (the same TTL); stand in for that.
    cache.delete(lookups.shared_key_of(("price", "haiku"), cache.get(lookups.VERSION_KEY)))
    assert lookups.cached(("price", "haiku"), load) == "v2"
