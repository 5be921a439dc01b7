"""Times as people and warehouses write them, read strictly: an instant, or why it is not one.

One reading for every time an input carries (a consent row's ``decided_at``, an opt-out's
``requested_at``): a value that does not say its instant (no time zone, a date alone, milliseconds
taken for seconds, a placeholder) is never given a default; it comes back with the reason and the
latest instant it can stand for.
"""

from __future__ import annotations

import math
import re
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

# A decision time is plausible from this date on (epoch seconds of 1990-01-01): earlier ones are
# a unit mistake or a placeholder, never a person's recorded choice.
EARLIEST_DECISION = 631_152_000.0
# Clocks of warehouses and workers differ by a little; a decision further in the future is a
# time zone or unit mistake, and would win over every real choice.
FUTURE_TOLERANCE = 300.0
# How far a time written without a time zone can be from the same digits read as UTC.
_NAIVE_SPREAD = 14 * 3600.0
_EPOCH_TEXT = re.compile(r"[+-]?\d+(\.\d+)?")
# A decision time written as text must hold a calendar date and a time (ISO 8601, extended or basic
# form) before it is parsed: pendulum alone reads "12:00Z" as today, without its zone.
_DATE_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*|\d{8}[Tt]\d{4}.*")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
# The offsets time zones really have: UTC-12:00 to UTC+14:00.
_OFFSETS = (-12 * 3600.0, 14 * 3600.0)


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def moment(value: Any, now: float | None) -> tuple[datetime | None, float, str]:
    """``(aware datetime, its epoch seconds, "")`` for a usable decision time, else ``(None, the
    latest time the value can stand for (inf: unknown), why not)``.

    Accepted: an aware datetime, ISO 8601 text with a date, a time and an offset (``Z``,
    ``+02:00``, ``+0200``, ``+02``), epoch seconds as a number or as digits (a CSV cell). Refused,
    naming why: no time zone, a date alone, a time alone, an offset no zone has, epoch
    milliseconds, NaN and infinities, times before 1990 or in the future.
    """
    unknown = math.inf
    if value in (None, ""):
        return (
            None,
            unknown,
            "is empty: without it, a change made in HubSpot later cannot be told from an older one",
        )
    if isinstance(value, str) and _EPOCH_TEXT.fullmatch(value):
        value = Decimal(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _epoch(value, now)
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return None, unknown, f"{value!r} is not a date"
    if isinstance(value, date) and not isinstance(value, datetime):
        moment = datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp()
        # The day's last moment anywhere on earth: a date alone may stand for any time of it.
        return (
            None,
            moment + 86_400 + _NAIVE_SPREAD,
            f"{value.isoformat()} is a date without a time and time zone",
        )
    if isinstance(value, str):
        if not _DATE_TIME_TEXT.fullmatch(value):
            return None, unknown, f"{value!r} is not an ISO 8601 date and time (YYYY-MM-DDThh:mm:ss+hh:mm)"
        import pendulum

        try:
            parsed = pendulum.parse(value, tz=None, strict=True)
        except (ValueError, TypeError, OverflowError):  # pendulum's ParserError is a ValueError
            return None, unknown, f"{value!r} is not an ISO 8601 time"
        if not isinstance(parsed, datetime):
            return None, unknown, f"{value!r} is not a date and time"
        value = parsed
    if not isinstance(value, datetime):
        return None, unknown, f"{value!r} is not a time"
    offset = value.utcoffset()
    if offset is None or not _OFFSETS[0] <= offset.total_seconds() <= _OFFSETS[1]:
        naive = value.replace(tzinfo=timezone.utc).timestamp()
        why = "has no time zone: give it with one (e.g. Z for UTC)"
        if offset is not None:
            why = "has an offset no time zone has (they run from UTC-12:00 to UTC+14:00)"
        return None, naive + _NAIVE_SPREAD, f"{value.replace(tzinfo=None).isoformat()} {why}"
    return _plausible(value.timestamp(), now, value.isoformat())


def _epoch(value: int | float | Decimal, now: float | None) -> tuple[datetime | None, float, str]:
    try:
        seconds = float(value)
    except (ArithmeticError, ValueError):
        return None, math.inf, f"{value} is not a number of seconds"
    if not math.isfinite(seconds):
        return None, math.inf, f"{value} is not a time (not a finite number)"
    if seconds > 1e11:  # after the year 5138: milliseconds or microseconds since 1970
        return (
            None,
            math.inf,
            f"{value} is not a plausible time in epoch seconds (it would be after the year 5000); "
            "epoch milliseconds are not accepted: divide by 1000 or give ISO 8601",
        )
    return _plausible(seconds, now, f"{value} (epoch seconds)")


def _plausible(seconds: float, now: float | None, shown_as: str) -> tuple[datetime | None, float, str]:
    clock = time.time() if now is None else now
    if seconds > clock + FUTURE_TOLERANCE:
        return (
            None,
            seconds,
            f"{shown_as} is in the future (it is now {_utc(clock)}): a decision cannot be dated later "
            "than now; check the column's time zone and unit",
        )
    if seconds < EARLIEST_DECISION:
        # A placeholder (0, 1970-01-01) or a unit mistake (a YYYYMMDD number): when the person
        # decided is not known, so the row may be the latest.
        return None, math.inf, f"{shown_as} is before 1990: not a plausible decision time"
    return datetime.fromtimestamp(seconds, timezone.utc), seconds, ""
