"""The double-entry ledger: accounts and immutable transfers, after TigerBeetle.

Amounts are integers in micro-units of the account's currency (1 USD = 1_000_000), never
floats. Every transfer debits one account and credits another by the same amount, and the
account counters move in the same transaction as the transfer row that explains them.

Invariants (PostgreSQL refuses rows that break the per-row ones; `manage.py ledger_verify`
checks all of them):
1. per currency, the sum of all debits equals the sum of all credits, posted and pending;
2. every account's counters equal the sums of the transfers behind them;
3. a limited account never has debits_posted + debits_pending > credits_posted, except
   through recorded overage (``overage_posted``: debits with code ``overage``);
4. transfers are never updated or deleted (a trigger refuses it);
5. a hold resolves at most once (a unique index on ``pending``);
6. an operation that fails changes nothing.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class AccountKind(models.TextChoices):
    POOL = "pool", "Pool"
    SYSTEM = "system", "System"


class TransferCode(models.TextChoices):
    """Why money moved. Stable strings: reports and integrations group by them."""

    FUNDING = "funding", "Funding"
    ALLOCATION = "allocation", "Allocation"
    TRANSFER = "transfer", "Transfer"
    EXEMPTION_GRANT = "exemption_grant", "Exemption grant"
    EXEMPTION_CLAWBACK = "exemption_clawback", "Exemption clawback"
    SPEND = "spend", "Spend"
    OVERAGE = "overage", "Overage"
    SWEEP = "sweep", "Sweep"
    ROLLOVER = "rollover", "Rollover"
    LAPSE = "lapse", "Lapse"
    REVERSAL = "reversal", "Reversal"


class TransferPhase(models.TextChoices):
    """A transfer's role: single-phase posted, a hold, or the one resolution of a hold."""

    POSTED = "posted", "Posted"
    PENDING = "pending", "Pending (hold)"
    POST = "post", "Post of a hold"
    VOID = "void", "Void of a hold"
    EXPIRE = "expire", "Expiry of a hold"


#: Phases that move posted counters (the rest only move pending counters).
POSTING_PHASES = (TransferPhase.POSTED, TransferPhase.POST)
#: Phases that resolve a hold.
RESOLVING_PHASES = (TransferPhase.POST, TransferPhase.VOID, TransferPhase.EXPIRE)


class Account(models.Model):
    """One balance in one currency. ``limited``: debits may never exceed credits."""

    name = models.CharField(max_length=200, help_text="Human label, e.g. 'pool acme/2026-Q4'.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code.")
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    is_limited = models.BooleanField(
        default=False, help_text="Debits (posted + pending) may not exceed posted credits."
    )
    is_closed = models.BooleanField(
        default=False, help_text="Refuses new transfers and holds; open holds still resolve."
    )
    debits_posted = models.BigIntegerField(default=0)
    credits_posted = models.BigIntegerField(default=0)
    debits_pending = models.BigIntegerField(default=0)
    credits_pending = models.BigIntegerField(default=0)
    overage_posted = models.BigIntegerField(
        default=0, help_text="Part of debits_posted recorded as overage (may overdraw)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Counters are sums of positive amounts: a negative one means a lost update.
            models.CheckConstraint(
                name="ledger_account_counters_non_negative",
                condition=Q(debits_posted__gte=0)
                & Q(credits_posted__gte=0)
                & Q(debits_pending__gte=0)
                & Q(credits_pending__gte=0)
                & Q(overage_posted__gte=0),
            ),
            # Overage is a part of the posted debits, never more.
            models.CheckConstraint(
                name="ledger_account_overage_within_debits",
                condition=Q(overage_posted__lte=F("debits_posted")),
            ),
            # Invariant 3: a limited account is never overdrawn except by recorded overage.
            models.CheckConstraint(
                name="ledger_account_limited_not_overdrawn",
                condition=Q(is_limited=False)
                | Q(
                    debits_posted__lte=F("credits_posted")
                    + F("overage_posted")
                    - F("debits_pending")
                ),
            ),
            models.CheckConstraint(
                name="ledger_account_currency_iso",
                condition=Q(currency__regex=r"^[A-Z]{3}$"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"

    @property
    def available(self) -> int:
        """Micro-units that can still be debited: credits - posted debits - held debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def balance(self) -> int:
        """Posted balance, credits minus debits (negative only after recorded overage)."""
        return self.credits_posted - self.debits_posted


class Transfer(models.Model):
    """An immutable movement of ``amount`` from ``debit_account`` to ``credit_account``.

    A hold is a transfer in phase ``pending``; its single resolution is another transfer in
    phase ``post``, ``void`` or ``expire`` pointing at it through ``pending``. For a post the
    amount is what was spent (the rest of the hold is released); for void and expiry it is the
    amount released, the whole hold.
    """

    debit_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="debit_transfers"
    )
    credit_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="credit_transfers"
    )
    amount = models.BigIntegerField(help_text="Micro-units of the currency.")
    currency = models.CharField(max_length=3)
    code = models.CharField(max_length=32, choices=TransferCode.choices)
    phase = models.CharField(max_length=16, choices=TransferPhase.choices)
    pending = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resolutions",
        help_text="The hold this transfer resolves.",
    )
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        help_text="The posted transfer this one undoes.",
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Holds only.")
    idempotency_namespace = models.CharField(max_length=100, default="", blank=True)
    # NULL, not '', means "no key": the unique constraint must ignore unkeyed transfers.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    request_digest = models.CharField(
        max_length=64, default="", blank=True, help_text="SHA-256 of the keyed request."
    )
    metadata = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=200, default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Amounts are positive; only a post may be 0 (a settle that cost nothing).
            models.CheckConstraint(
                name="ledger_transfer_amount_positive",
                condition=Q(amount__gt=0) | (Q(amount=0) & Q(phase=TransferPhase.POST)),
            ),
            models.CheckConstraint(
                name="ledger_transfer_distinct_accounts",
                condition=~Q(debit_account=F("credit_account")),
            ),
            # Resolutions, and only resolutions, point at a hold.
            models.CheckConstraint(
                name="ledger_transfer_resolution_has_pending",
                condition=Q(phase__in=RESOLVING_PHASES, pending__isnull=False)
                | (~Q(phase__in=RESOLVING_PHASES) & Q(pending__isnull=True)),
            ),
            # Holds, and only holds, expire.
            models.CheckConstraint(
                name="ledger_transfer_hold_has_expiry",
                condition=Q(phase=TransferPhase.PENDING, expires_at__isnull=False)
                | (~Q(phase=TransferPhase.PENDING) & Q(expires_at__isnull=True)),
            ),
            # Only overage may overdraw, and only a single-phase posted transfer is overage.
            models.CheckConstraint(
                name="ledger_transfer_overage_is_posted",
                condition=~Q(code=TransferCode.OVERAGE) | Q(phase=TransferPhase.POSTED),
            ),
            models.CheckConstraint(
                name="ledger_transfer_reversal_code",
                condition=Q(reverses__isnull=True) | Q(code=TransferCode.REVERSAL),
            ),
            # Invariant 5: a hold resolves at most once.
            models.UniqueConstraint(
                fields=["pending"],
                condition=Q(pending__isnull=False),
                name="ledger_transfer_hold_resolves_once",
            ),
            # A posted transfer is reversed at most once.
            models.UniqueConstraint(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="ledger_transfer_reversed_once",
            ),
            # Idempotency: one transfer per client key.
            models.UniqueConstraint(
                fields=["idempotency_namespace", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="ledger_transfer_idempotency_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["code", "created_at"], name="ledger_transfer_code_created"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.phase} {self.code} {self.amount} {self.currency}"


class Refusal(models.Model):
    """A keyed request the ledger refused, kept so a retry is refused the same way.

    This is not part of the books: it records an answer, not a movement of money.
    """

    idempotency_namespace = models.CharField(max_length=100, default="", blank=True)
    idempotency_key = models.CharField(max_length=200)
    request_digest = models.CharField(max_length=64)
    code = models.CharField(max_length=64)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_namespace", "idempotency_key"],
                name="ledger_refusal_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.idempotency_namespace}/{self.idempotency_key}: {self.code}"


class OpenHold(models.Model):
    """The holds not yet resolved: a small, mutable index over immutable transfers.

    A row is inserted with its hold and deleted, in the same transaction, by the hold's one
    resolution. Deleting it is how a resolution claims the hold (the row lock serializes a post
    racing a void or the expiry sweep), and its expiry index keeps the sweep's cost
    proportional to the open holds, not to every hold ever taken.
    """

    hold = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, primary_key=True, related_name="open_hold"
    )
    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    code = models.CharField(max_length=32, choices=TransferCode.choices)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="ledger_openhold_expiry")]
        constraints = [
            models.CheckConstraint(
                name="ledger_openhold_amount_positive", condition=Q(amount__gt=0)
            )
        ]

    def __str__(self) -> str:
        return f"open hold #{self.hold_id} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
