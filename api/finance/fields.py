"""Date-times from query strings, in UTC: PostgreSQL refuses offsets Python accepts (+22:47),
and a date near year 1 or 9999 cannot always move to UTC; both are a 400, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers


def _utc(value: datetime) -> datetime:
    """The instant in UTC. Raises OverflowError when it falls outside the calendar."""
    return value.astimezone(UTC)


class UtcDateTimeField(serializers.DateTimeField):
    default_error_messages = {"range": "The date-time is out of range."}

    def to_internal_value(self, value: Any) -> datetime:
        parsed = super().to_internal_value(value)
        try:
            return _utc(parsed)
        except OverflowError:
            self.fail("range")


class UtcIsoDateTimeField(IsoDateTimeField):  # type: ignore[misc]
    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return _utc(parsed)
        except OverflowError:
            raise forms.ValidationError("The date-time is out of range.") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):  # type: ignore[misc]
    field_class = UtcIsoDateTimeField
