"""Moving budget between pools: transfer requests and their approvals.

Invariants:
- a request moves money only through one ledger transfer, keyed by the request, so it executes
  at most once however many approvals race;
- both pools are in the request's organization and period (hence one currency);
- status only moves forward: pending → executed | rejected | cancelled | expired;
- every change is in the request's history, with the acting user.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from budgets.models import Member, Organization, Pool
from ledger.models import Transfer


class TransferRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    EXECUTED = "executed", "Executed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class TransferRequest(models.Model):
    """A request to move ``amount`` from ``source`` to ``target``."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="transfer_requests"
    )
    source = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="requests_out")
    target = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="requests_in")
    amount = models.BigIntegerField(help_text="Micro-units of the organization's currency.")
    reason = models.TextField()
    requester = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16,
        choices=TransferRequestStatus.choices,
        default=TransferRequestStatus.PENDING,
    )
    decided_by = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    ledger_transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="allocation_request_amount_positive", condition=Q(amount__gt=0)
            ),
            models.CheckConstraint(
                name="allocation_request_distinct_pools", condition=~Q(source=F("target"))
            ),
            # Executed means money moved: exactly then there is a ledger transfer.
            models.CheckConstraint(
                name="allocation_request_executed_has_transfer",
                condition=Q(status="executed", ledger_transfer__isnull=False)
                | (~Q(status="executed") & Q(ledger_transfer__isnull=True)),
            ),
            models.CheckConstraint(
                name="allocation_request_rejection_has_reason",
                condition=~Q(status="rejected") | ~Q(decision_reason=""),
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="allocation_request_due")]

    def __str__(self) -> str:
        return f"request #{self.pk}: {self.source} → {self.target}"

    @property
    def ledger_key(self) -> str:
        """The idempotency key of the one ledger transfer this request may make."""
        return f"transfer-request:{self.pk}"
