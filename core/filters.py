"""Filters shared by the list endpoints."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC.

    Python accepts UTC offsets up to ±23:59 but PostgreSQL refuses those beyond ±15:59 (a 500
    on `?since=2024-01-01T00:00:00-17:00`); in UTC every valid instant is fine.
    """

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. year 1 moved before the first representable instant
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
