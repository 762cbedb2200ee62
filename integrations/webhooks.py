"""Verify Budget Ledger's webhook signatures in a receiver (standard library only).

    from integrations.webhooks import verify
    if not verify(secret=WHSEC, header=request.headers["Budget-Ledger-Signature"],
                  body=request.body, now=time.time()):
        return 400

The header is ``t=<unix seconds>,v1=<hex>``, hex being HMAC-SHA256 with the subscription's
secret over ``b"<t>." + body`` (docs/alerts.md). A signature older than ``tolerance`` seconds
is refused, so a captured request cannot be replayed later; deduplicate deliveries by the
``Budget-Ledger-Delivery`` header (delivery is at least once).
"""

from __future__ import annotations

import hashlib
import hmac


def verify(*, secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` of ``now``."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))
