"""Clients of Budget Ledger: a typed Python client and gateway plugins. They import nothing
from the service: only its HTTP contract (docs/gateway.md)."""
