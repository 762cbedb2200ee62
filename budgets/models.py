"""Who holds budget and the rules: organizations, teams, members, periods, pools, policies,
credentials.

Invariants:
- every object belongs to exactly one organization, and a relation never crosses two
  (services check it; constraints state what a row alone can);
- a pool holds money only through its own limited ledger account, and its spend is credited to
  its own spend account, so a gateway hold touches only that pool's two rows;
- a period is one fiscal quarter of its organization, computed in the organization's timezone;
- configuration models are history-tracked (django-simple-history) with the acting user.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ledger.models import Account


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name.")
    fiscal_year_start_month = models.PositiveSmallIntegerField(default=1)
    peer_transfer_limit = models.BigIntegerField(
        default=50_000_000,
        help_text="Micro-units a member may give from their own pool without approval.",
    )
    transfer_request_ttl_days = models.PositiveSmallIntegerField(default=14)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="budgets_org_fiscal_month_valid",
                condition=Q(fiscal_year_start_month__gte=1, fiscal_year_start_month__lte=12),
            ),
            models.CheckConstraint(
                name="budgets_org_peer_limit_non_negative", condition=Q(peer_transfer_limit__gte=0)
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="teams")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    cost_center = models.CharField(max_length=64, blank=True, default="")
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="budgets_team_slug"),
            models.CheckConstraint(
                name="budgets_team_not_own_parent", condition=~Q(parent=models.F("id"))
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ENGINEER = "engineer", "Engineer"
    MANAGER = "manager", "Manager"
    FINANCE = "finance", "Finance"
    ADMIN = "admin", "Admin"


class Member(models.Model):
    """A person in one organization: a Django user, a home team and a role."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="member"
    )
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="members")
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, blank=True, related_name="members"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ENGINEER)
    managed_teams = models.ManyToManyField(Team, blank=True, related_name="managers")
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords(m2m_fields=[managed_teams])

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def email(self) -> str:
        return str(getattr(self.user, "email", ""))


class PeriodStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    OPEN = "open", "Open"
    # Ended and swept, but holds taken before the end may still settle or expire against it;
    # the close marks it closed once nothing is pending (allocation/periods.py).
    CLOSING = "closing", "Closing"
    CLOSED = "closed", "Closed"


class Period(models.Model):
    """One fiscal quarter: [starts_at, ends_at) in the organization's timezone.

    planned → open → closing → closed."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="periods")
    fiscal_year = models.PositiveSmallIntegerField(
        help_text="Named by the calendar year in which the fiscal year starts."
    )
    quarter = models.PositiveSmallIntegerField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=PeriodStatus.choices, default=PeriodStatus.PLANNED
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "fiscal_year", "quarter"], name="budgets_period_unique"
            ),
            models.CheckConstraint(
                name="budgets_period_quarter_valid", condition=Q(quarter__gte=1, quarter__lte=4)
            ),
            models.CheckConstraint(
                name="budgets_period_ordered", condition=Q(starts_at__lt=models.F("ends_at"))
            ),
            # At most one open quarter per organization: the gateway spends from it.
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status="open"),
                name="budgets_period_one_open",
            ),
        ]

    def __str__(self) -> str:
        return f"FY{self.fiscal_year} Q{self.quarter}"


class PoolKind(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    TEAM = "team", "Team"
    MEMBER = "member", "Member"
    SHARED = "shared", "Shared"


class Pool(models.Model):
    """A budget holder for one period. Its money is its ledger account's balance."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="pools")
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="pools")
    kind = models.CharField(max_length=16, choices=PoolKind.choices)
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, blank=True, related_name="pools"
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, blank=True, related_name="pools"
    )
    name = models.CharField(max_length=100, blank=True, default="", help_text="Shared pools.")
    account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="pool")
    spend_account = models.OneToOneField(
        Account, on_delete=models.PROTECT, related_name="spending_pool"
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            # Each kind names exactly its owner.
            models.CheckConstraint(
                name="budgets_pool_owner_matches_kind",
                condition=(
                    Q(kind="organization", team__isnull=True, member__isnull=True, name="")
                    | Q(kind="team", team__isnull=False, member__isnull=True, name="")
                    | Q(kind="member", team__isnull=True, member__isnull=False, name="")
                    | (Q(kind="shared", team__isnull=False, member__isnull=True) & ~Q(name=""))
                ),
            ),
            models.UniqueConstraint(
                fields=["period"], condition=Q(kind="organization"), name="budgets_pool_one_org"
            ),
            models.UniqueConstraint(
                fields=["period", "team"], condition=Q(kind="team"), name="budgets_pool_one_team"
            ),
            models.UniqueConstraint(
                fields=["period", "member"],
                condition=Q(kind="member"),
                name="budgets_pool_one_member",
            ),
            models.UniqueConstraint(
                fields=["period", "team", "name"],
                condition=Q(kind="shared"),
                name="budgets_pool_one_shared_name",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == PoolKind.ORGANIZATION:
            owner = str(self.organization)
        elif self.kind == PoolKind.TEAM:
            owner = f"team {self.team}"
        elif self.kind == PoolKind.MEMBER:
            owner = f"member {self.member}"
        else:
            owner = f"{self.team}/{self.name}"
        return f"{owner} ({self.period})"


class SystemAccountPurpose(models.TextChoices):
    FUNDING = "funding", "Funding"
    LAPSED = "lapsed", "Lapsed"


class OrganizationAccount(models.Model):
    """The organization's unlimited system accounts: where funding comes from, where it lapses."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="system_accounts"
    )
    purpose = models.CharField(max_length=16, choices=SystemAccountPurpose.choices)
    account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "purpose"], name="budgets_org_account_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.purpose}"


class CredentialKind(models.TextChoices):
    INTERACTIVE = "interactive", "Interactive (a member)"
    AGENT = "agent", "Automated agent"
    CI = "ci", "CI job"


class Policy(models.Model):
    """Spending rules. The most specific match wins: pool, then team, then credential kind,
    then the organization default (all scopes empty)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="policies"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True)
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, null=True, blank=True)
    credential_kind = models.CharField(
        max_length=16, choices=CredentialKind.choices, blank=True, default=""
    )
    soft_limit_share = models.DecimalField(
        max_digits=4, decimal_places=3, null=True, blank=True, help_text="e.g. 0.800"
    )
    downgrade_map = models.JSONField(default=dict, blank=True, help_text='{"opus": "sonnet"}')
    per_request_max = models.BigIntegerField(null=True, blank=True, help_text="Micro-units.")
    session_cap_amount = models.BigIntegerField(null=True, blank=True, help_text="Micro-units.")
    session_cap_tokens = models.BigIntegerField(null=True, blank=True)
    allowed_models = models.JSONField(default=list, blank=True, help_text="Empty: any model.")
    default_max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Reserved when a gateway sends no max_output_tokens."
    )
    is_frozen = models.BooleanField(default=False)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                name="budgets_policy_soft_share_range",
                condition=Q(soft_limit_share__isnull=True)
                | Q(soft_limit_share__gt=0, soft_limit_share__lte=1),
            ),
            models.CheckConstraint(
                name="budgets_policy_caps_positive",
                condition=(Q(per_request_max__isnull=True) | Q(per_request_max__gt=0))
                & (Q(session_cap_amount__isnull=True) | Q(session_cap_amount__gt=0))
                & (Q(session_cap_tokens__isnull=True) | Q(session_cap_tokens__gt=0)),
            ),
            models.UniqueConstraint(
                fields=["organization", "team", "pool", "credential_kind"],
                name="budgets_policy_one_per_scope",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        scope = [
            f"team {self.team}" if self.team_id else "",
            f"pool {self.pool}" if self.pool_id else "",
            self.credential_kind,
        ]
        return f"policy {' '.join(s for s in scope if s) or 'default'} ({self.organization})"


class Credential(models.Model):
    """What a gateway presents for a spender: a member's key, or an agent's / CI job's key
    bound to a shared pool of a team (the pool of the open period with that name)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="credentials"
    )
    kind = models.CharField(max_length=16, choices=CredentialKind.choices)
    alias = models.CharField(max_length=200)
    external_id = models.CharField(
        max_length=200, blank=True, default="", help_text="e.g. a LiteLLM key hash."
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True)
    shared_pool_name = models.CharField(max_length=100, blank=True, default="")
    is_active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "alias"], name="budgets_credential_alias"
            ),
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=~Q(external_id=""),
                name="budgets_credential_external_id",
            ),
            # Interactive keys spend from a member's pool; agent and CI keys from a shared pool.
            models.CheckConstraint(
                name="budgets_credential_binding",
                condition=Q(kind="interactive", member__isnull=False, shared_pool_name="")
                | (Q(kind__in=["agent", "ci"], team__isnull=False) & ~Q(shared_pool_name="")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alias} ({self.kind})"


class ModelPrice(models.Model):
    """List prices of one model from a date on, per million tokens, in ``currency``.

    The price in force at a call's time is the one with the latest ``effective_from`` on or
    before it. Prices are decimals with six places: money, never floats.
    """

    model = models.CharField(max_length=200, help_text="Canonical name, e.g. claude-sonnet-4-5.")
    aliases = models.JSONField(default=list, blank=True, help_text="Other names, e.g. dated ones.")
    provider = models.CharField(max_length=64, blank=True, default="")
    currency = models.CharField(max_length=3, default="USD")
    input_per_million = models.DecimalField(max_digits=14, decimal_places=6)
    cached_input_per_million = models.DecimalField(max_digits=14, decimal_places=6)
    cache_write_per_million = models.DecimalField(max_digits=14, decimal_places=6)
    output_per_million = models.DecimalField(max_digits=14, decimal_places=6)
    effective_from = models.DateField()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "effective_from"], name="budgets_price_one_per_day"
            ),
            models.CheckConstraint(
                name="budgets_price_non_negative",
                condition=Q(input_per_million__gte=0)
                & Q(cached_input_per_million__gte=0)
                & Q(cache_write_per_million__gte=0)
                & Q(output_per_million__gte=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from}"


class GatewayToken(models.Model):
    """A gateway's bearer token for one organization; only its SHA-256 is stored."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="gateway_tokens"
    )
    name = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to tell.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AuthorizationStatus(models.TextChoices):
    HELD = "held", "Held"
    SETTLED = "settled", "Settled"
    SETTLED_LATE = "settled_late", "Settled after expiry"
    VOIDED = "voided", "Voided"
    DENIED = "denied", "Denied"


class Decision(models.TextChoices):
    ALLOW = "allow", "Allow"
    DOWNGRADE = "downgrade", "Downgrade"
    DENY = "deny", "Deny"


class Authorization(models.Model):
    """One gateway authorization: a hold on a pool, later settled or voided; or a denial,
    remembered so that a retry with the same key is denied the same way."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, null=True, related_name="+")
    credential = models.ForeignKey(
        Credential, on_delete=models.PROTECT, null=True, related_name="+"
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, related_name="+")
    subject = models.CharField(max_length=254)
    idempotency_key = models.CharField(max_length=200)
    request_digest = models.CharField(max_length=64)
    requested_model = models.CharField(max_length=200)
    model = models.CharField(max_length=200, help_text="The model answered (after downgrade).")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    status = models.CharField(max_length=16, choices=AuthorizationStatus.choices)
    code = models.CharField(max_length=64, blank=True, default="", help_text="Denials.")
    message = models.TextField(blank=True, default="")
    hold = models.OneToOneField(
        "ledger.Transfer", on_delete=models.PROTECT, null=True, related_name="+"
    )
    reserved = models.BigIntegerField(default=0)
    available_at_decision = models.BigIntegerField(default=0)
    charged = models.BigIntegerField(default=0)
    released = models.BigIntegerField(default=0)
    overage = models.BigIntegerField(default=0)
    cost_at_requested_model = models.BigIntegerField(default=0)
    session_id = models.CharField(max_length=200, blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    max_output_tokens = models.BigIntegerField(default=0)
    usage = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True)
    settled_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="budgets_authorization_key"
            ),
            # A hold exists exactly for what was allowed.
            models.CheckConstraint(
                name="budgets_authorization_hold_iff_allowed",
                condition=Q(decision="deny", hold__isnull=True)
                | (~Q(decision="deny") & Q(hold__isnull=False)),
            ),
        ]
        indexes = [
            models.Index(fields=["pool", "session_id"], name="budgets_auth_session"),
            # The alert checks' windows (budgets/alerts.py): set once at insert, so the settle's
            # update does not touch it.
            models.Index(fields=["organization", "created_at"], name="budgets_auth_org_created"),
        ]

    def __str__(self) -> str:
        return f"authorization {self.id} {self.status}"


class SessionUsage(models.Model):
    """Money and tokens reserved or spent per pool and gateway session (the session caps)."""

    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="+")
    session_id = models.CharField(max_length=200)
    amount = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "session_id"], name="budgets_session_unique")
        ]

    def __str__(self) -> str:
        return f"session {self.session_id} of pool {self.pool_id}"


# --- alerts before the invoice (docs/alerts.md) ------------------------------------------------


def default_thresholds() -> list[str]:
    return ["0.5", "0.8", "1"]


class AlertSettings(models.Model):
    """An organization's alert rules; without a row the defaults apply (AlertSettings())."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="alert_settings"
    )
    thresholds = models.JSONField(
        default=default_thresholds,
        help_text='Shares of the period budget, as decimal strings: ["0.5", "0.8", "1"].',
    )
    day_multiple = models.DecimalField(
        max_digits=6, decimal_places=2, default=3,
        help_text="A pool's spend today above this multiple of its 7-day daily average.",
    )  # fmt: skip
    session_multiple = models.DecimalField(
        max_digits=6, decimal_places=2, default=10,
        help_text="A session costing above this multiple of its pool's median session.",
    )  # fmt: skip
    call_amount = models.BigIntegerField(
        null=True, blank=True, default=25_000_000,
        help_text="Micro-units: a single call charged above this (empty: off).",
    )  # fmt: skip
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "alert settings"
        constraints = [
            models.CheckConstraint(
                name="budgets_alertsettings_multiples_positive",
                condition=Q(day_multiple__gt=0, session_multiple__gt=0),
            ),
            models.CheckConstraint(
                name="budgets_alertsettings_call_amount_positive",
                condition=Q(call_amount__isnull=True) | Q(call_amount__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"alert settings of {self.organization}"


class AlertKind(models.TextChoices):
    THRESHOLD = "threshold", "Budget threshold crossed"
    SPEND_DAY = "spend_day", "Day's spend above its 7-day average"
    SESSION = "session", "Session far above the pool's median"
    CALL = "call", "Single call above the amount"


class Alert(models.Model):
    """One alert, raised exactly once: ``key`` names what it is about (a threshold of a pool in
    its period, a pool's day, a session, a call) and is unique per organization."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    key = models.CharField(max_length=300)
    period = models.ForeignKey(Period, on_delete=models.PROTECT, null=True, related_name="+")
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, null=True, related_name="+")
    message = models.TextField()
    details = models.JSONField(default=dict, help_text="Amounts in micro-units, as numbers.")
    raised_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="budgets_alert_once")
        ]
        indexes = [models.Index(fields=["organization", "-raised_at"], name="budgets_alert_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"


class WebhookFormat(models.TextChoices):
    JSON = "json", "JSON (the alert)"
    SLACK = "slack", "Slack-compatible ({'text': ...})"


class WebhookSubscription(models.Model):
    """Where an organization's alerts are delivered. Each delivery is signed with ``secret``
    (HMAC-SHA256 over the timestamp and the body: docs/alerts.md)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="webhooks"
    )
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000)
    events = models.JSONField(
        default=list, blank=True, help_text='Alert kinds, e.g. ["threshold"]; empty: all.'
    )
    format = models.CharField(max_length=8, choices=WebhookFormat.choices, default="json")
    secret = models.CharField(max_length=100, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["secret"])

    def __str__(self) -> str:
        return f"{self.name} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One alert to one subscription, with its attempts: the delivery log."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "alert"], name="budgets_delivery_once")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="budgets_delivery_due",
                condition=Q(status="pending"),
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"delivery of alert {self.alert_id} to {self.subscription_id}: {self.status}"


class SpendDimensions(models.Model):
    """The dimensions reports group by that are plain text, shared by entries and rollup."""

    credential_kind = models.CharField(max_length=16, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    session_id = models.CharField(max_length=200, blank=True, default="")
    # The four tags reports group by most, as columns; any other tag is read from ``tags``.
    repo = models.CharField(max_length=200, blank=True, default="")
    pr = models.CharField(max_length=64, blank=True, default="")
    ticket = models.CharField(max_length=200, blank=True, default="")
    use_case = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        abstract = True


class SpendEntry(SpendDimensions):
    """One posted ledger line of spend, with the dimensions reports group by.

    A read model, derived: built by ``budgets.spend.spend_entries_sync`` from immutable ledger
    transfers into (or, for reversals, out of) a pool's spend account, never written by the
    gateway. Exactly one entry per such transfer (its primary key), so the entries of a range
    sum to the ledger's spend of that range to the micro-unit. A call's count, tokens and
    measured saving sit on exactly one of its entries (``calls`` = 1), the rest carry money.
    """

    transfer = models.OneToOneField(
        "ledger.Transfer", on_delete=models.PROTECT, primary_key=True, related_name="spend_entry"
    )
    # Single-column indexes on these would only slow the sync: the composite ones below serve.
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="+", db_index=False)
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="+", db_index=False)
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, related_name="+", db_index=False,
        help_text="The pool's team at posting (a member pool: the member's home team).",
    )  # fmt: skip
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    authorization = models.ForeignKey(
        Authorization, on_delete=models.PROTECT, null=True, related_name="+"
    )
    tags = models.JSONField(default=dict, blank=True)
    amount = models.BigIntegerField(help_text="Micro-units; negative for a reversal of spend.")
    calls = models.PositiveSmallIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    saving = models.BigIntegerField(
        default=0, help_text="Measured: the usage at the requested model minus the charge."
    )
    occurred_at = models.DateTimeField(help_text="The transfer's posting time.")

    class Meta:
        verbose_name_plural = "spend entries"
        constraints = [
            models.CheckConstraint(name="budgets_spend_calls_0_or_1", condition=Q(calls__lte=1)),
            models.CheckConstraint(
                name="budgets_spend_tokens_non_negative",
                condition=Q(input_tokens__gte=0, cached_input_tokens__gte=0, output_tokens__gte=0),
            ),
        ]
        indexes = [
            # Every report reads one organization's range by posting time.
            models.Index(fields=["organization", "occurred_at"], name="budgets_spend_org_time"),
            models.Index(fields=["pool", "occurred_at"], name="budgets_spend_pool_time"),
            models.Index(fields=["session_id"], name="budgets_spend_session"),
        ]

    def __str__(self) -> str:
        return f"spend of transfer #{self.transfer_id}"


class SpendSyncState(models.Model):
    """How far ``spend_entries_sync`` has read the ledger: every spend transfer with an id at
    or below ``transfer_id`` has its entry. One row; its lock serializes the sync."""

    transfer_id = models.BigIntegerField(default=0)
    synced_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"spend synced to transfer #{self.transfer_id}"


class SpendRollup(SpendDimensions):
    """The spend entries of one organization's day, summed per combination of the dimensions
    reports group by (pool, team, member, credential kind, model, session, repo, pr, ticket,
    use case): what whole-day ranges of the reports read instead of the entries.

    Derived, like the entries, and written only by ``spend_entries_sync``, in the transaction
    that adds the entries it sums (each entry added exactly once), so for any set of whole
    days the rows sum to the entries, hence to the ledger's spend, to the micro-unit. ``day``
    is the entry's local date in the organization's timezone (``SpendRollupZone`` says which;
    a changed timezone rebuilds the organization's rows). ``key`` identifies the combination
    (a digest: NULL team or member ids would make a unique constraint over the columns miss).
    """

    key = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    day = models.DateField(help_text="Local date in the organization's timezone.")
    week = models.DateField(help_text="The Monday of ``day``'s week.")
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="+", db_index=False)
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    amount = models.BigIntegerField(default=0, help_text="Micro-units.")
    calls = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    saving = models.BigIntegerField(default=0)
    downgraded_calls = models.BigIntegerField(default=0, help_text="Entries with a saving.")
    entries = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "day"], name="budgets_rollup_org_day"),
            models.Index(fields=["session_id"], name="budgets_rollup_session"),
        ]

    def __str__(self) -> str:
        return f"spend of {self.day} ({self.key[:12]})"


class SpendRollupZone(models.Model):
    """The timezone an organization's ``SpendRollup`` days were cut in. No row, or another
    timezone than the organization's: the next sync rebuilds that organization's rollup."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    timezone = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.timezone}"


class Commit(models.Model):
    """A commit that AI sessions worked on: its repo, sha, pull request and author."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    repo = models.CharField(max_length=200, help_text="e.g. acme/payments.")
    sha = models.CharField(max_length=64)
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    is_merged = models.BooleanField(default=False)
    author = models.CharField(max_length=254, blank=True, default="")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    merged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "repo", "sha"], name="budgets_commit_unique"
            ),
            models.CheckConstraint(
                name="budgets_commit_sha_hex", condition=Q(sha__regex=r"^[0-9a-f]{7,64}$")
            ),
            # A merged commit says when; an unmerged one does not.
            models.CheckConstraint(
                name="budgets_commit_merged_at",
                condition=Q(is_merged=True, merged_at__isnull=False)
                | Q(is_merged=False, merged_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.repo}@{self.sha[:12]}"


class CommitLink(models.Model):
    """A gateway session, or one authorization, whose spend went into a commit."""

    commit = models.ForeignKey(Commit, on_delete=models.CASCADE, related_name="links")
    session_id = models.CharField(max_length=200, blank=True, default="")
    authorization = models.ForeignKey(
        Authorization, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="budgets_commit_link_one_target",
                condition=(Q(authorization__isnull=True) & ~Q(session_id=""))
                | (Q(authorization__isnull=False) & Q(session_id="")),
            ),
            models.UniqueConstraint(
                fields=["commit", "session_id"],
                condition=~Q(session_id=""),
                name="budgets_commit_link_session",
            ),
            models.UniqueConstraint(
                fields=["commit", "authorization"],
                condition=Q(authorization__isnull=False),
                name="budgets_commit_link_authorization",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.commit}: {self.session_id or self.authorization_id}"
