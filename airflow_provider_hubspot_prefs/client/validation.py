"""Checks of caller input made before any request, each failing with an error naming the field."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import HubSpotInputError

DEFAULT_MAX_BATCH_SIZE = 100
# Pragmatic address shape: one @, no whitespace, a dot in the domain. HubSpot has the last word.
_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_EMAIL_LENGTH = 254


def is_plausible_email(value: object) -> bool:
    """True if ``value`` looks like an email address HubSpot could accept."""
    return isinstance(value, str) and len(value) <= MAX_EMAIL_LENGTH and bool(_EMAIL_SHAPE.match(value))


def check_subscriber_id(value: Any, field: str = "subscriber_id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise HubSpotInputError(field, value, "must be a non-empty email address string")
    if not is_plausible_email(value):
        raise HubSpotInputError(field, value, "is not a valid email address")
    return value


def check_subscriber_ids(values: Any, max_batch_size: int, field: str = "subscriber_ids") -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise HubSpotInputError(field, type(values).__name__, "must be a list of email addresses")
    if not values:
        raise HubSpotInputError(field, [], "must not be empty")
    if len(values) > max_batch_size:
        raise HubSpotInputError(
            field, f"{len(values)} inputs", f"exceeds the batch maximum of {max_batch_size}"
        )
    return [check_subscriber_id(v, f"{field}[{i}]") for i, v in enumerate(values)]


def check_positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise HubSpotInputError(field, value, "must be a positive integer")
    return value


def check_business_unit_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HubSpotInputError("business_unit_id", value, "must be a non-negative integer or None")
    return value
