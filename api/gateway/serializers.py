"""Request and response shapes of the gateway contract (docs/gateway.md)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.money import DecimalAmountField, MoneySerializer, StrictCharField

MAX_TOKENS = 10_000_000
MAX_TAGS = 20


class AuthorizationCreateInputSerializer(serializers.Serializer[dict[str, Any]]):
    idempotency_key = StrictCharField(min_length=1, max_length=200, trim_whitespace=False)
    subject = StrictCharField(max_length=254)
    model = StrictCharField(max_length=200)
    input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    max_output_tokens = serializers.IntegerField(
        min_value=0, max_value=MAX_TOKENS, required=False, allow_null=True, default=None
    )
    amount = DecimalAmountField(required=False, allow_null=True, default=None)
    session_id = serializers.CharField(max_length=200, required=False, default="")
    tags = serializers.DictField(
        child=StrictCharField(max_length=200, allow_blank=True), required=False, default=dict
    )
    ttl_seconds = serializers.IntegerField(min_value=1, max_value=3600, default=600)

    def validate_tags(self, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_TAGS:
            raise serializers.ValidationError(f"At most {MAX_TAGS} tags.")
        if any(not 1 <= len(key) <= 64 for key in tags):
            raise serializers.ValidationError("Tag names are 1 to 64 characters.")
        return tags


class AuthorizationCreateOutputSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["held"])
    decision = serializers.ChoiceField(choices=["allow", "downgrade"])
    model = serializers.CharField()
    requested_model = serializers.CharField()
    reserved = MoneySerializer()
    available = MoneySerializer()
    expires_at = serializers.DateTimeField()
    message = serializers.CharField(allow_blank=True)


class AuthorizationDeniedOutputSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.UUIDField()
    decision = serializers.ChoiceField(choices=["deny"])
    code = serializers.ChoiceField(
        choices=["budget_exhausted", "request_limit", "session_limit", "model_not_allowed",
                 "pool_frozen"]
    )  # fmt: skip
    message = serializers.CharField()
    available = MoneySerializer()


class AuthorizationSettleInputSerializer(serializers.Serializer[dict[str, Any]]):
    model = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)
    input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    cached_input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    cache_write_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    output_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    amount = DecimalAmountField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["cached_input_tokens"] > attrs["input_tokens"]:
            raise serializers.ValidationError(
                {"cached_input_tokens": "Cached input tokens are part of input_tokens."}
            )
        return attrs


class AuthorizationSettleOutputSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["settled", "settled_late"])
    charged = MoneySerializer()
    released = MoneySerializer()
    overage = MoneySerializer()
    available = MoneySerializer()


class AuthorizationVoidOutputSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["voided"])
    released = MoneySerializer()


class AuthorizationOutputSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=["held", "settled", "settled_late", "voided", "denied"]
    )
    decision = serializers.ChoiceField(choices=["allow", "downgrade", "deny"])
    code = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)
    subject = serializers.CharField()
    model = serializers.CharField()
    requested_model = serializers.CharField()
    reserved = MoneySerializer()
    charged = MoneySerializer()
    released = MoneySerializer()
    overage = MoneySerializer()
    saving = MoneySerializer(help_text="Cost at the requested model minus the cost charged.")
    session_id = serializers.CharField(allow_blank=True)
    tags = serializers.DictField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    settled_at = serializers.DateTimeField(allow_null=True)


class ErrorOutputSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField()
    message = serializers.CharField()
    field_errors = serializers.DictField(
        required=False, help_text="Per-field messages, for code invalid."
    )


class UsageCreateInputSerializer(serializers.Serializer[dict[str, Any]]):
    idempotency_key = StrictCharField(min_length=1, max_length=180, trim_whitespace=False)
    subject = StrictCharField(max_length=254)
    model = StrictCharField(max_length=200, required=False, allow_null=True, default=None)
    input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    cached_input_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    cache_write_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    output_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, default=0)
    amount = DecimalAmountField(required=False, allow_null=True, default=None)
    occurred_at = serializers.DateTimeField()
    tags = serializers.DictField(
        child=StrictCharField(max_length=200, allow_blank=True), required=False, default=dict
    )

    def validate_tags(self, tags: dict[str, str]) -> dict[str, str]:
        return AuthorizationCreateInputSerializer().validate_tags(tags)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["cached_input_tokens"] > attrs["input_tokens"]:
            raise serializers.ValidationError(
                {"cached_input_tokens": "Cached input tokens are part of input_tokens."}
            )
        if attrs["amount"] is None and not attrs["model"]:
            raise serializers.ValidationError({"model": "Name the model, or send an amount."})
        return attrs


class UsageCreateOutputSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField(allow_null=True, help_text="The ledger transfer.")
    status = serializers.ChoiceField(choices=["recorded"])
    code = serializers.ChoiceField(choices=["spend", "overage", ""])
    charged = MoneySerializer()
    overage = MoneySerializer()
    available = MoneySerializer()


class BalanceQuerySerializer(serializers.Serializer[dict[str, Any]]):
    subject = StrictCharField(max_length=254)


class BalanceOutputSerializer(serializers.Serializer[dict[str, Any]]):
    subject = serializers.CharField()
    pool = serializers.CharField()
    budget = MoneySerializer()
    spent = MoneySerializer()
    reserved = MoneySerializer()
    available = MoneySerializer()
    soft_limit_share = serializers.CharField(allow_null=True)
    soft_limit_reached = serializers.BooleanField()
