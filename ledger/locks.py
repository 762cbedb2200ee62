"""Row locks of the ledger, and the one order every transaction takes them in.

Global lock order:
1. ``ledger_openhold`` rows (a resolution claims its hold by deleting the row; the expiry
   sweep takes them with SKIP LOCKED, so it never waits on a post in flight);
2. ``ledger_account`` rows in ascending primary key.

Account rows are locked by the conditional UPDATE that changes them (one round trip, no
separate SELECT ... FOR UPDATE), issued in ascending id order. Every service follows this
order, so two ledger transactions can wait on each other but never deadlock.
"""

from __future__ import annotations

from django.db import connection


def skip_locked_clause() -> str:
    """``FOR UPDATE SKIP LOCKED`` where the database has row locks (PostgreSQL), else ''."""
    return (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )


def row_lock_clause() -> str:
    """``FOR NO KEY UPDATE`` where the database has row locks (PostgreSQL), else ''.

    SQLite, the embedded default, serializes writers on the whole database instead.
    """
    return " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
