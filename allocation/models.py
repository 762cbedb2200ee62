"""Moving budget between pools: transfer requests and their approvals, exemptions, the
quarter's rollover and quarterly plans.

Invariants:
- a request moves money only through one ledger transfer, keyed by the request, so it executes
  at most once however many approvals race;
- both pools are in the request's organization and period (hence one currency);
- status only moves forward: pending → executed | rejected | cancelled | expired;
- an exemption grants once and claws back once (ledger keys ``exemption:<id>:grant`` and
  ``exemption:<id>:clawback``), and its window lies inside its pool's period;
- a period close moves each pool's money out in numbered sweeps, one row per (pool, round),
  each keyed ``period-close:<period>:pool:<pool>:round:<n>:<step>``, so a re-run adds nothing;
- an approved plan is never edited (services refuse it) and at most one per period is approved;
- every change is in the models' history, with the acting user.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from budgets.models import Member, Organization, Period, Pool, PoolKind, Team
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


# --- rollover ---------------------------------------------------------------------------------


class RolloverMode(models.TextChoices):
    NONE = "none", "None: everything lapses"
    ALL = "all", "All of the unused balance"
    SHARE = "share", "Up to a share of the pool's period budget"
    AMOUNT = "amount", "Up to a fixed amount"


class RolloverPolicy(models.Model):
    """How much of a pool's unused balance moves into the same owner's pool next period.

    Scoped like the gateway's Policy: the organization default (no team) or a team, which
    covers the team's pool, its shared pools, its members' pools and its sub-teams (the nearest
    team up the tree wins). Without any, everything lapses.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="rollover_policies"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True)
    mode = models.CharField(max_length=16, choices=RolloverMode.choices, default=RolloverMode.NONE)
    cap_share = models.DecimalField(
        max_digits=4, decimal_places=3, null=True, blank=True, help_text="share: e.g. 0.250"
    )
    cap_amount = models.BigIntegerField(null=True, blank=True, help_text="amount: micro-units")
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "rollover policies"
        constraints = [
            # A cap is set exactly for the mode that uses it, and makes sense.
            models.CheckConstraint(
                name="allocation_rollover_cap_matches_mode",
                condition=Q(
                    mode__in=["none", "all"], cap_share__isnull=True, cap_amount__isnull=True
                )
                | Q(mode="share", cap_share__gt=0, cap_share__lte=1, cap_amount__isnull=True)
                | Q(mode="amount", cap_amount__gte=0, cap_share__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(team__isnull=True),
                name="allocation_rollover_one_default",
            ),
            models.UniqueConstraint(
                fields=["organization", "team"],
                condition=Q(team__isnull=False),
                name="allocation_rollover_one_per_team",
            ),
        ]

    def __str__(self) -> str:
        scope = f"team {self.team}" if self.team_id else "default"
        return f"rollover {scope}: {self.mode}"


class PoolSweep(models.Model):
    """One round of a period close for one pool: what rolled over and what lapsed.

    Round 0 moves the unused balance at the close; later rounds move what holds released after
    it. The round's ledger transfers are keyed by (period, pool, round, step).
    """

    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="sweeps")
    round = models.PositiveIntegerField()
    rolled_over = models.BigIntegerField(default=0)
    lapsed = models.BigIntegerField(default=0)
    target = models.ForeignKey(
        Pool, on_delete=models.PROTECT, null=True, blank=True, related_name="rolled_in"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "round"], name="allocation_sweep_once"),
            models.CheckConstraint(
                name="allocation_sweep_moves_money",
                condition=Q(rolled_over__gte=0, lapsed__gte=0)
                & (Q(rolled_over__gt=0) | Q(lapsed__gt=0)),
            ),
            models.CheckConstraint(
                name="allocation_sweep_rollover_has_target",
                condition=Q(rolled_over=0) | Q(target__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"sweep {self.round} of {self.pool}"


# --- exemptions -------------------------------------------------------------------------------


class ExemptionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved (waiting for its window)"
    GRANTED = "granted", "Granted"
    ENDED = "ended", "Ended (unspent part clawed back)"
    REVOKED = "revoked", "Revoked"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired (window passed before a decision or a grant)"


class ExemptionSource(models.TextChoices):
    TEAM = "team", "The pool one level up (the team's pool)"
    ORGANIZATION = "organization", "The organization pool"


class Exemption(models.Model):
    """A temporary increase of a pool for a window and a use case."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="exemptions"
    )
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="exemptions")
    source = models.CharField(
        max_length=16, choices=ExemptionSource.choices, default=ExemptionSource.TEAM
    )
    source_pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="exemptions_given")
    amount = models.BigIntegerField(help_text="Micro-units of the organization's currency.")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    use_case = models.CharField(max_length=200)
    reason = models.TextField()
    requester = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=ExemptionStatus.choices, default=ExemptionStatus.PENDING
    )
    decided_by = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    grant_transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField(null=True, blank=True)
    clawback_transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    clawed_back = models.BigIntegerField(default=0)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="", help_text="Why a grant did not run.")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="allocation_exemption_amount_positive", condition=Q(amount__gt=0)
            ),
            models.CheckConstraint(
                name="allocation_exemption_window_ordered",
                condition=Q(starts_at__lt=F("ends_at")),
            ),
            models.CheckConstraint(
                name="allocation_exemption_distinct_pools", condition=~Q(pool=F("source_pool"))
            ),
            # Money moved in exactly when the exemption was granted (and possibly ended since).
            models.CheckConstraint(
                name="allocation_exemption_granted_has_transfer",
                condition=Q(status__in=["granted", "ended"], grant_transfer__isnull=False)
                | (~Q(status__in=["granted", "ended"]) & Q(grant_transfer__isnull=True))
                | Q(status="revoked"),
            ),
            # Never more clawed back than granted.
            models.CheckConstraint(
                name="allocation_exemption_clawback_within_grant",
                condition=Q(clawed_back__gte=0, clawed_back__lte=F("amount")),
            ),
            models.CheckConstraint(
                name="allocation_exemption_rejection_has_reason",
                condition=~Q(status="rejected") | ~Q(decision_reason=""),
            ),
        ]
        indexes = [models.Index(fields=["status", "starts_at"], name="allocation_exemption_start")]

    def __str__(self) -> str:
        return f"exemption #{self.pk} for {self.pool}"

    @property
    def grant_key(self) -> str:
        return f"exemption:{self.pk}:grant"

    @property
    def clawback_key(self) -> str:
        return f"exemption:{self.pk}:clawback"


# --- quarterly planning -------------------------------------------------------------------------


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"


class PlanBaseline(models.TextChoices):
    PERIOD = "period", "Settled spend of the closing period"
    DAYS_60 = "60d", "Settled spend of the last 60 days"
    DAYS_90 = "90d", "Settled spend of the last 90 days"


class Plan(models.Model):
    """The budget of a coming period: one line per team, member and shared pool, and the
    organization total (what funds the organization pool; the rest above the lines stays
    there as reserve)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="plans")
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="plans")
    status = models.CharField(max_length=16, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    baseline = models.CharField(
        max_length=16, choices=PlanBaseline.choices, default=PlanBaseline.PERIOD
    )
    buffer = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal("0.250"))
    total = models.BigIntegerField(help_text="Micro-units: funds the organization pool.")
    created_by = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period"],
                condition=Q(status="approved"),
                name="allocation_plan_one_approved",
            ),
            models.CheckConstraint(
                name="allocation_plan_total_non_negative", condition=Q(total__gte=0)
            ),
            models.CheckConstraint(
                name="allocation_plan_buffer_non_negative", condition=Q(buffer__gte=0)
            ),
            models.CheckConstraint(
                name="allocation_plan_approved_has_approver",
                condition=Q(status="draft")
                | Q(approved_by__isnull=False, approved_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"plan #{self.pk} for {self.period} ({self.status})"


class PlanLine(models.Model):
    """One pool's own budget in a plan: ``baseline`` measured, ``amount`` planned.

    A team's line is what the team pool keeps for itself; at the period's open the team pool
    receives its line plus everything planned below it, so every level's total holds.
    """

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="lines")
    kind = models.CharField(max_length=16, choices=PoolKind.choices)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, blank=True)
    name = models.CharField(max_length=100, blank=True, default="")
    baseline = models.BigIntegerField(default=0, help_text="Measured settled spend, micro-units.")
    amount = models.BigIntegerField(help_text="Planned, micro-units.")
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="allocation_planline_owner_matches_kind",
                condition=Q(kind="team", team__isnull=False, member__isnull=True, name="")
                | Q(kind="member", team__isnull=True, member__isnull=False, name="")
                | (Q(kind="shared", team__isnull=False, member__isnull=True) & ~Q(name="")),
            ),
            models.CheckConstraint(
                name="allocation_planline_amounts_non_negative",
                condition=Q(baseline__gte=0, amount__gte=0),
            ),
            models.UniqueConstraint(
                fields=["plan", "team"], condition=Q(kind="team"), name="allocation_planline_team"
            ),
            models.UniqueConstraint(
                fields=["plan", "member"],
                condition=Q(kind="member"),
                name="allocation_planline_member",
            ),
            models.UniqueConstraint(
                fields=["plan", "team", "name"],
                condition=Q(kind="shared"),
                name="allocation_planline_shared",
            ),
        ]

    def __str__(self) -> str:
        owner = self.member or (f"{self.team}/{self.name}" if self.name else self.team)
        return f"{self.kind} {owner}"
