"""Run calls on real threads released together, each with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def race(calls: list[Callable[[], T]], *, threads: int = 16) -> list[T | BaseException]:
    """Each call's result or the error it raised, in order. The worker threads wait at a
    barrier when they start, so ``threads`` of them begin at once."""
    start = threading.Barrier(threads)

    def run(call: Callable[[], T]) -> T | BaseException:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 (the outcome is what the test inspects)
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads, initializer=start.wait) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result() for future in futures]
