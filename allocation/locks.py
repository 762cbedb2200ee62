"""Row locks of the allocation layer.

Lock order: a transfer request or exemption row first, then (inside the ledger) account rows
in ascending id
(ledger/locks.py). Two approvals of one request serialize on the request row.
"""

from __future__ import annotations

from allocation.models import Exemption, TransferRequest


def transfer_request_lock(*, request_id: int) -> TransferRequest:
    """Re-read a transfer request under a row lock (FOR NO KEY UPDATE)."""
    return (
        TransferRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("source__account", "target__account", "organization")
        .get(pk=request_id)
    )


def exemption_lock(*, exemption_id: int) -> Exemption:
    """Re-read an exemption under a row lock (FOR NO KEY UPDATE); then its pools' accounts."""
    return (
        Exemption.objects.select_for_update(no_key=True, of=("self",))
        .select_related("pool__account", "source_pool__account", "pool__period", "organization")
        .get(pk=exemption_id)
    )
