"""Shapes of the finance API: read models, write inputs and report outputs. Money is always
{"amount": "<decimal string>", "currency"}."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from allocation.models import (
    Exemption,
    ExemptionSource,
    Plan,
    PlanBaseline,
    PlanLine,
    TransferRequest,
)
from allocation.planning import DEFAULT_BUFFER, PlanComparison
from api.finance.fields import UtcDateTimeField
from api.money import DecimalAmountField, MoneySerializer, StrictCharField, money
from budgets.models import (
    Authorization,
    Member,
    Organization,
    Period,
    Pool,
    Team,
)
from budgets.selectors import pool_balance_of
from ledger.models import Transfer


@extend_schema_field(MoneySerializer)
class MoneyField(serializers.Field[int, Any, dict[str, str], Any]):
    """Micro-units read from the object, shown as money in the organization's currency."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: int) -> dict[str, str]:
        return money(int(value), self.context["currency"])


class OrganizationOutputSerializer(serializers.ModelSerializer[Organization]):
    class Meta:
        model = Organization
        fields = ("id", "name", "slug", "currency", "timezone", "fiscal_year_start_month")


class TeamOutputSerializer(serializers.ModelSerializer[Team]):
    class Meta:
        model = Team
        fields = ("id", "name", "slug", "parent", "cost_center", "is_active")


class MemberOutputSerializer(serializers.ModelSerializer[Member]):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    managed_teams: serializers.PrimaryKeyRelatedField[Team] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = Member
        fields = ("id", "username", "email", "team", "role", "managed_teams", "is_active")


class PeriodOutputSerializer(serializers.ModelSerializer[Period]):
    class Meta:
        model = Period
        fields = ("id", "fiscal_year", "quarter", "starts_at", "ends_at", "status")


class PoolBalanceOutputSerializer(serializers.Serializer[dict[str, Any]]):
    budget = MoneySerializer(help_text="Everything ever moved in.")
    moved_out = MoneySerializer(help_text="Given to other pools.")
    spent = MoneySerializer(help_text="Posted spend, overage included, net of reversals.")
    reserved = MoneySerializer(help_text="Held by open authorizations.")
    available = MoneySerializer(help_text="What can still be reserved or moved.")


class PoolOutputSerializer(serializers.ModelSerializer[Pool]):
    display = serializers.CharField(source="__str__", read_only=True)
    balance = serializers.SerializerMethodField()

    class Meta:
        model = Pool
        fields = ("id", "display", "kind", "period", "team", "member", "name", "balance")

    @extend_schema_field(PoolBalanceOutputSerializer)
    def get_balance(self, pool: Pool) -> dict[str, Any]:
        balance = pool_balance_of(account=pool.account, spend=pool.spend_account)
        return {
            name: money(getattr(balance, name), balance.currency)
            for name in ("budget", "moved_out", "spent", "reserved", "available")
        }


class TransferOutputSerializer(serializers.ModelSerializer[Transfer]):
    amount = serializers.SerializerMethodField()

    class Meta:
        model = Transfer
        fields = (
            "id", "code", "phase", "amount", "debit_account", "credit_account", "pending",
            "reverses", "expires_at", "metadata", "actor", "created_at",
        )  # fmt: skip

    @extend_schema_field(MoneySerializer)
    def get_amount(self, transfer: Transfer) -> dict[str, str]:
        return money(transfer.amount, transfer.currency)


class AuthorizationRecordOutputSerializer(serializers.ModelSerializer[Authorization]):
    reserved = MoneyField()
    charged = MoneyField()
    released = MoneyField()
    overage = MoneyField()
    saving = serializers.SerializerMethodField()

    class Meta:
        model = Authorization
        fields = (
            "id", "pool", "member", "subject", "requested_model", "model", "decision", "status",
            "code", "message", "reserved", "charged", "released", "overage", "saving",
            "session_id", "tags", "input_tokens", "max_output_tokens", "created_at",
            "settled_at",
        )  # fmt: skip

    @extend_schema_field(MoneySerializer)
    def get_saving(self, authorization: Authorization) -> dict[str, str]:
        measured = 0
        if authorization.settled_at and authorization.model != authorization.requested_model:
            measured = max(0, authorization.cost_at_requested_model - authorization.charged)
        return money(measured, self.context["currency"])


class TransferRequestOutputSerializer(serializers.ModelSerializer[TransferRequest]):
    amount = MoneyField()

    class Meta:
        model = TransferRequest
        fields = (
            "id", "source", "target", "amount", "reason", "requester", "status", "decided_by",
            "decided_at", "decision_reason", "ledger_transfer", "created_at", "expires_at",
        )  # fmt: skip


class PoolFundInputSerializer(serializers.Serializer[dict[str, Any]]):
    amount = DecimalAmountField()


class PoolAllocateInputSerializer(serializers.Serializer[dict[str, Any]]):
    target = serializers.IntegerField(min_value=1, help_text="The pool one step up or down.")
    amount = DecimalAmountField()
    reason = StrictCharField(max_length=1000, required=False, default="", allow_blank=True)


class TransferRequestCreateInputSerializer(serializers.Serializer[dict[str, Any]]):
    source_pool = serializers.IntegerField(min_value=1, help_text="Where the budget leaves.")
    target_pool = serializers.IntegerField(min_value=1, help_text="Where it arrives.")
    amount = DecimalAmountField()
    reason = StrictCharField(max_length=1000)


class TransferRequestRejectInputSerializer(serializers.Serializer[dict[str, Any]]):
    reason = StrictCharField(max_length=1000)


# --- exemptions ----------------------------------------------------------------------------


class ExemptionOutputSerializer(serializers.ModelSerializer[Exemption]):
    amount = MoneyField()
    clawed_back = MoneyField(help_text="What went back to the source at the end or on revoke.")

    class Meta:
        model = Exemption
        fields = (
            "id", "pool", "source", "source_pool", "amount", "starts_at", "ends_at", "use_case",
            "reason", "requester", "status", "decided_by", "decided_at", "decision_reason",
            "grant_transfer", "granted_at", "clawback_transfer", "clawed_back", "ended_at",
            "last_error", "created_at",
        )  # fmt: skip


class ExemptionRequestInputSerializer(serializers.Serializer[dict[str, Any]]):
    pool = serializers.IntegerField(min_value=1, help_text="The pool to increase.")
    amount = DecimalAmountField()
    starts_at = UtcDateTimeField()
    ends_at = UtcDateTimeField()
    use_case = StrictCharField(max_length=200)
    reason = StrictCharField(max_length=1000)
    # DRF collects declared fields before the class exists, so this does not shadow
    # Field.source at run time; only the stubs see a clash.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=ExemptionSource.choices, default=ExemptionSource.TEAM,
        help_text="Who pays: the pool one level up (team) or the organization pool.",
    )  # fmt: skip


class ExemptionRejectInputSerializer(serializers.Serializer[dict[str, Any]]):
    reason = StrictCharField(max_length=1000)


class ExemptionRevokeInputSerializer(serializers.Serializer[dict[str, Any]]):
    reason = StrictCharField(max_length=1000, required=False, default="", allow_blank=True)


# --- plans ---------------------------------------------------------------------------------


class PlanLineOutputSerializer(serializers.ModelSerializer[PlanLine]):
    baseline = MoneyField(help_text="Measured settled spend.")
    amount = MoneyField(help_text="Planned.")

    class Meta:
        model = PlanLine
        fields = ("id", "kind", "team", "member", "name", "baseline", "amount")


class PlanOutputSerializer(serializers.ModelSerializer[Plan]):
    buffer = serializers.DecimalField(max_digits=5, decimal_places=3, read_only=True)
    total = serializers.SerializerMethodField()
    lines = serializers.SerializerMethodField()

    class Meta:
        model = Plan
        fields = (
            "id", "period", "status", "baseline", "buffer", "total", "created_by",
            "approved_by", "approved_at", "created_at", "lines",
        )  # fmt: skip

    @extend_schema_field(MoneySerializer(allow_null=True))
    def get_total(self, plan: Plan) -> dict[str, str] | None:
        """The organization total: for finance and admins only (it funds the org pool)."""
        if not self.context.get("sees_organization"):
            return None
        return money(plan.total, self.context["currency"])

    @extend_schema_field(PlanLineOutputSerializer(many=True))
    def get_lines(self, plan: Plan) -> Any:
        """The lines the reader sees (the view prefetches them, scoped, as ``visible_lines``)."""
        lines = plan.visible_lines  # type: ignore[attr-defined]
        return PlanLineOutputSerializer(lines, many=True, context=self.context).data


class PlanComparisonOutputSerializer(serializers.Serializer[PlanComparison]):
    line = serializers.IntegerField(source="line.pk")
    kind = serializers.CharField(source="line.kind")
    team = serializers.IntegerField(source="line.team_id", allow_null=True)
    member = serializers.IntegerField(source="line.member_id", allow_null=True)
    name = serializers.CharField(source="line.name")
    planned = MoneyField()
    allocated = serializers.SerializerMethodField(
        help_text="Moved into the pool and kept there; null when the pool does not exist."
    )
    spent = serializers.SerializerMethodField(help_text="null when the pool does not exist.")

    @extend_schema_field(MoneySerializer(allow_null=True))
    def get_allocated(self, row: PlanComparison) -> dict[str, str] | None:
        return None if row.allocated is None else money(row.allocated, self.context["currency"])

    @extend_schema_field(MoneySerializer(allow_null=True))
    def get_spent(self, row: PlanComparison) -> dict[str, str] | None:
        return None if row.spent is None else money(row.spent, self.context["currency"])


class PlanProposeInputSerializer(serializers.Serializer[dict[str, Any]]):
    period = serializers.IntegerField(min_value=1, help_text="A planned (coming) period.")
    baseline = serializers.ChoiceField(choices=PlanBaseline.choices, default=PlanBaseline.PERIOD)
    buffer = serializers.DecimalField(
        max_digits=5, decimal_places=3, min_value=Decimal(0), default=DEFAULT_BUFFER,
        coerce_to_string=True, help_text='A decimal string, e.g. "0.25" for +25 %.',
    )  # fmt: skip


class PlanLineSetInputSerializer(serializers.Serializer[dict[str, Any]]):
    amount = DecimalAmountField(allow_zero=True)


class PlanTotalSetInputSerializer(serializers.Serializer[dict[str, Any]]):
    total = DecimalAmountField(allow_zero=True)
