"""Query and answer shapes of the reports and the commit receipts."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.finance.fields import UtcDateTimeField
from api.money import MoneySerializer, StrictCharField
from budgets.reports import BUCKETS, SPEND_ROWS_DEFAULT, SPEND_ROWS_MAX

SHA = r"^[0-9a-f]{7,64}$"


class RangeQuerySerializer(serializers.Serializer[dict[str, Any]]):
    start = UtcDateTimeField(help_text="Inclusive, ISO 8601.")
    end = UtcDateTimeField(help_text="Exclusive, ISO 8601.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError("start must be before end.")
        return attrs


class SpendQuerySerializer(RangeQuerySerializer):
    group_by = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=500,
        help_text="Comma-separated: team, member, pool, model, credential_kind, repo, pr, "
        "ticket, use_case, or tag:<name>.",
    )  # fmt: skip
    bucket = serializers.ChoiceField(choices=BUCKETS, required=False, allow_null=True)
    limit = serializers.IntegerField(
        required=False, default=SPEND_ROWS_DEFAULT, min_value=1, max_value=SPEND_ROWS_MAX,
        help_text="Rows (groups) per page, in group order.",
    )  # fmt: skip
    offset = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=2**31,
        help_text="Groups to skip: the previous page's next_offset.",
    )  # fmt: skip


class PeriodQuerySerializer(serializers.Serializer[dict[str, Any]]):
    period = serializers.IntegerField(min_value=1, max_value=2**62)


class BurnQuerySerializer(PeriodQuerySerializer):
    at = UtcDateTimeField(required=False, help_text="Defaults to now.")


class MeasuresOutputSerializer(serializers.Serializer[dict[str, Any]]):
    amount = MoneySerializer()
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()


class SpendRowOutputSerializer(MeasuresOutputSerializer):
    group = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="The row's value of each group_by dimension (and bucket), as strings.",
    )
    labels = serializers.DictField(child=serializers.CharField(), help_text="Names of ids.")


class SpendReportOutputSerializer(serializers.Serializer[dict[str, Any]]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    group_by = serializers.ListField(child=serializers.CharField())
    bucket = serializers.CharField(allow_null=True)
    rows = SpendRowOutputSerializer(many=True, help_text="One page of groups, in group order.")
    total = MeasuresOutputSerializer(help_text="Every group of the range, not only this page.")
    row_count = serializers.IntegerField(help_text="Groups in the whole range.")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(
        allow_null=True, help_text="The offset of the next page; null on the last page."
    )


class AllocationRowOutputSerializer(serializers.Serializer[dict[str, Any]]):
    pool = serializers.IntegerField(allow_null=True)
    team = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    allocated = MoneySerializer(help_text="Moved in minus moved out.")
    spent = MoneySerializer()
    reserved = MoneySerializer()
    available = MoneySerializer()
    share_used = serializers.CharField(allow_null=True, help_text="spent / allocated, 4 places.")


class AllocationReportOutputSerializer(serializers.Serializer[dict[str, Any]]):
    period = serializers.IntegerField()
    pools = AllocationRowOutputSerializer(many=True)
    teams = AllocationRowOutputSerializer(many=True)


class HourOutputSerializer(serializers.Serializer[dict[str, Any]]):
    hour = serializers.DateTimeField()
    amount = MoneySerializer()


class PoolBurnOutputSerializer(serializers.Serializer[dict[str, Any]]):
    pool = serializers.IntegerField()
    name = serializers.CharField()
    available = MoneySerializer()
    daily_rate = MoneySerializer(help_text="The last 7 days' average per day.")
    runs_out_on = serializers.DateField(
        allow_null=True, help_text="At that rate; null: not within 100 years."
    )


class BurnReportOutputSerializer(serializers.Serializer[dict[str, Any]]):
    period = serializers.IntegerField()
    at = serializers.DateTimeField()
    hourly = HourOutputSerializer(many=True)
    last_24_hours = MoneySerializer()
    daily_average_7_days = MoneySerializer()
    period_to_date = MoneySerializer()
    forecast_period_end = MoneySerializer()
    pools = PoolBurnOutputSerializer(many=True)


class TopMemberOutputSerializer(serializers.Serializer[dict[str, Any]]):
    member = serializers.IntegerField()
    username = serializers.CharField()
    amount = MoneySerializer()
    calls = serializers.IntegerField()


class PullRequestCostOutputSerializer(serializers.Serializer[dict[str, Any]]):
    repo = serializers.CharField()
    pr = serializers.CharField()
    team = serializers.IntegerField(allow_null=True, required=False)
    amount = MoneySerializer()
    team_median = MoneySerializer(required=False)


class OutlierReportOutputSerializer(serializers.Serializer[dict[str, Any]]):
    top_members = TopMemberOutputSerializer(many=True)
    top_prs = PullRequestCostOutputSerializer(many=True)
    expensive_prs = PullRequestCostOutputSerializer(many=True)
    factor = serializers.IntegerField()


class SavingRowOutputSerializer(serializers.Serializer[dict[str, Any]]):
    lever = serializers.ChoiceField(choices=["model_downgrade"])
    team = serializers.IntegerField()
    team_name = serializers.CharField()
    period = serializers.IntegerField()
    saving = MoneySerializer()
    downgraded_calls = serializers.IntegerField()
    spent = MoneySerializer()


class ChargebackRowOutputSerializer(MeasuresOutputSerializer):
    cost_center = serializers.CharField(allow_blank=True)


class ChargebackReportOutputSerializer(serializers.Serializer[dict[str, Any]]):
    period = serializers.IntegerField()
    rows = ChargebackRowOutputSerializer(many=True)
    total = MoneySerializer()


class PullRequestWeekOutputSerializer(serializers.Serializer[dict[str, Any]]):
    week = serializers.DateField(help_text="Monday of the week of merge.")
    team = serializers.IntegerField(allow_null=True)
    repo = serializers.CharField()
    merged_prs = serializers.IntegerField()
    amount = MoneySerializer()
    per_pr = MoneySerializer()


class CommitCreateInputSerializer(serializers.Serializer[dict[str, Any]]):
    repo = StrictCharField(max_length=200, help_text="e.g. acme/payments.")
    sha = serializers.RegexField(SHA, max_length=64)
    pr_number = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True, default=None
    )
    is_merged = serializers.BooleanField(default=False)
    merged_at = UtcDateTimeField(required=False, allow_null=True, default=None)
    author = StrictCharField(max_length=254, required=False, default="", allow_blank=True)
    session_ids = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, default=list, max_length=1000
    )
    authorization_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, max_length=1000
    )

    def validate_repo(self, repo: str) -> str:
        if not repo.strip() or any(c in repo for c in "\n\r\t "):
            raise serializers.ValidationError("A repo is a name like owner/name.")
        return repo


class CommitOutputSerializer(serializers.Serializer[dict[str, Any]]):
    repo = serializers.CharField()
    sha = serializers.CharField()
    pr_number = serializers.IntegerField(allow_null=True)
    is_merged = serializers.BooleanField()
    merged_at = serializers.DateTimeField(allow_null=True)
    author = serializers.CharField(allow_blank=True)
    session_ids = serializers.ListField(child=serializers.CharField())
    authorization_ids = serializers.ListField(child=serializers.UUIDField())


class ModelMixOutputSerializer(MeasuresOutputSerializer):
    model = serializers.CharField(allow_blank=True)


class ReceiptOutputSerializer(serializers.Serializer[dict[str, Any]]):
    repo = serializers.CharField()
    sha = serializers.CharField()
    pr_number = serializers.IntegerField(allow_null=True)
    models = ModelMixOutputSerializer(many=True)
    total = MeasuresOutputSerializer()
    trailers = serializers.ListField(
        child=serializers.CharField(), help_text="Lines to paste into the commit message."
    )
