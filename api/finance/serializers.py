"""Shapes of the finance API: read models, write inputs and report outputs. Money is always
{"amount": "<decimal string>", "currency"}."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from allocation.models import TransferRequest
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
