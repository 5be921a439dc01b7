"""Opt-out deadlines: when each request was due, and whether HubSpot was seen to hold it in time.

A ledger row says when the person asked (``requested_at``) and when HubSpot was seen holding the
state asked for (``confirmed_at``). A deadline is a number of business days (CAN-SPAM gives 10,
CCPA 15 for an opt-out of sale) or a plain duration (GDPR's "without undue delay", as a policy
sets it). Business days are Monday to Friday in the deadline's time zone (UTC unless given); a
request made on a weekend counts from the next Monday's start; public holidays are not known here
and count as business days, which can only make a deadline earlier, never later.

A row's state is never guessed: a ``requested_at`` that is no readable instant is ``unknown``
(and listed), one that is empty is ``none`` (nothing to measure).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from .moments import moment
from .outcomes import CONFIRMED_OUTCOMES, Outcome
from .store import SUPERSEDED_PREFIX, iso_utc, parse_iso_utc, superseded_at

CONFIRMED_VALUES = frozenset(o.value for o in CONFIRMED_OUTCOMES)

_BUSINESS = re.compile(r"(\d+)\s*business\s*days?", re.IGNORECASE)
# ISO 8601 durations of fixed length: weeks, days, hours, minutes, seconds. Months and years are no
# fixed length (GDPR's "one month" from 1 February ends on 1 March), so they are refused, not guessed.
_ISO = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
)
# No law gives more than a few dozen business days; a bigger number is a unit mistake (seconds?).
MAX_BUSINESS_DAYS = 365
_PLAIN = re.compile(r"(\d+(?:\.\d+)?)\s*(d|days?|h|hours?|m|min|minutes?)", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0}


class DeadlineState(str, Enum):
    """Where one row stands against its deadline."""

    MET = "met"  # HubSpot was seen holding it before it was due
    MISSED = "missed"  # seen holding it, but after it was due
    OVERDUE = "overdue"  # not seen holding it, and it is past due
    NEAR = "near"  # not seen holding it, due within the warning
    OPEN = "open"  # not seen holding it, due later
    SUPERSEDED = "superseded"  # the person decided again later (the later decision is what counts)
    UNKNOWN = "unknown"  # requested_at is no readable instant: when it is due cannot be said
    NONE = "none"  # no requested_at: nothing to measure


# States a report lists row by row (besides counting them).
PAST_STATES = (DeadlineState.MISSED, DeadlineState.OVERDUE)
LISTED_STATES = (*PAST_STATES, DeadlineState.NEAR, DeadlineState.UNKNOWN)


@dataclass(frozen=True)
class Deadline:
    """A time limit: ``business_days`` weekdays, or ``duration``, after the request.

    Build one with ``Deadline.parse``: ``"10 business days"``, an ``int`` (business days), a
    ``timedelta``, ``"36h"``, ``"15 days"`` or ISO 8601 (``"P15D"``, ``"PT36H"``).
    """

    business_days: int | None = None
    duration: timedelta | None = None
    timezone: str = "UTC"

    @classmethod
    def parse(cls, spec: object, timezone: str = "UTC") -> Deadline:
        """The deadline ``spec`` says, or ``ValueError`` saying what was wrong with it."""
        try:
            ZoneInfo(timezone)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"deadline time zone {timezone!r} is not a time zone name") from exc
        if isinstance(spec, Deadline):
            return spec
        if isinstance(spec, bool):
            raise ValueError(f"deadline {spec!r} is not a number of business days or a duration")
        if isinstance(spec, int):
            return cls._days(spec, timezone)
        if isinstance(spec, timedelta):
            return cls._duration(spec, timezone, spec)
        if isinstance(spec, str):
            text = spec.strip()
            if text.isdigit():
                return cls._days(int(text), timezone)
            found = _BUSINESS.fullmatch(text)
            if found:
                return cls._days(int(found.group(1)), timezone)
            found = _PLAIN.fullmatch(text)
            if found:
                seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)[0].lower()]
                return cls._duration(timedelta(seconds=seconds), timezone, spec)
            found = _ISO.fullmatch(text.upper())
            if found and text.upper() not in ("P", "PT") and any(found.groupdict().values()):
                parts = {k: float(v) for k, v in found.groupdict().items() if v}
                seconds = (
                    parts.get("w", 0) * 7 * 86400
                    + parts.get("d", 0) * 86400
                    + parts.get("h", 0) * 3600
                    + parts.get("m", 0) * 60
                    + parts.get("s", 0)
                )
                return cls._duration(timedelta(seconds=seconds), timezone, spec)
            if re.fullmatch(r"P.*[YM].*", text.upper()) and "T" not in text.upper().split("M")[0]:
                raise ValueError(
                    f"deadline {spec!r}: months and years are no fixed length (a month from 1 February "
                    "ends on 1 March); give days, weeks or business days"
                )
        raise ValueError(
            f"deadline {spec!r} is not a number of business days ('10 business days', 10) or a "
            "duration ('36h', '15 days', 'P15D', a timedelta)"
        )

    @classmethod
    def _days(cls, days: int, timezone: str) -> Deadline:
        if days < 0:
            raise ValueError(f"deadline of {days} business days: it cannot be negative")
        if days > MAX_BUSINESS_DAYS:
            raise ValueError(
                f"deadline of {days} business days: more than {MAX_BUSINESS_DAYS} is no opt-out deadline "
                "(a number of seconds? give '72h' or 'P3D' for a duration)"
            )
        return cls(business_days=days, timezone=timezone)

    @classmethod
    def _duration(cls, duration: timedelta, timezone: str, spec: object) -> Deadline:
        if duration < timedelta(0):
            raise ValueError(f"deadline {spec!r} is negative")
        return cls(duration=duration, timezone=timezone)

    def due(self, requested: float) -> float:
        """When a request made at ``requested`` (epoch seconds) is due (epoch seconds)."""
        if self.duration is not None:
            return requested + self.duration.total_seconds()
        zone = ZoneInfo(self.timezone)
        at = datetime.fromtimestamp(requested, zone)
        if at.weekday() >= 5:  # a weekend's request counts from the next Monday's start
            at = (at + timedelta(days=7 - at.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        weeks, left = divmod(self.business_days or 0, 5)
        at += timedelta(weeks=weeks)  # five business days are a week, from any weekday
        while left:
            at += timedelta(days=1)
            if at.weekday() < 5:
                left -= 1
        # Wall-clock time in the zone: a daylight-saving change keeps the hour, as a calendar does.
        return at.replace(tzinfo=None).replace(tzinfo=zone).timestamp()

    def describe(self) -> str:
        zone = "" if self.timezone == "UTC" else f" ({self.timezone})"
        if self.duration is not None:
            hours = self.duration.total_seconds() / 3600
            return f"{hours:g} hours{zone}" if hours % 24 else f"{hours / 24:g} days{zone}"
        return f"{self.business_days} business days{zone}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "business_days": self.business_days,
                "seconds": None if self.duration is None else self.duration.total_seconds(),
                "timezone": self.timezone,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Deadline:
        data = json.loads(text)
        seconds = data.get("seconds")
        return cls(
            business_days=data.get("business_days"),
            duration=None if seconds is None else timedelta(seconds=seconds),
            timezone=data.get("timezone") or "UTC",
        )


UNREADABLE_PREFIX = "unreadable: "


def shown_requested_at(value: str) -> str:
    """``requested_at`` as shown outside the ledger (XCom, asset events, pages): an unreadable value
    is free text (a shifted spreadsheet cell may hold an address), so only ``unreadable`` is shown."""
    return "unreadable" if value.startswith(UNREADABLE_PREFIX) else value


def requested_text(value: Any, now: float | None = None) -> str | None:
    """``requested_at`` as the ledger keeps it: ISO UTC for a readable instant, else
    ``unreadable: <the value> (<why>)`` (a deadline report then says ``unknown``); None for none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    at, _, problem = moment(value.strip() if isinstance(value, str) else value, now)
    if at is None:
        return f"{UNREADABLE_PREFIX}{value} ({problem})"
    return iso_utc(at.timestamp())


def assess(
    row: Mapping[str, str], deadline: Deadline, warning: Deadline, now: float
) -> tuple[DeadlineState, float | None]:
    """Where ``row`` (a ledger row) stands against ``deadline`` at ``now``, and when it is due."""
    requested = row.get("requested_at") or ""
    if not requested:
        return DeadlineState.NONE, None
    try:
        asked = None if requested.startswith(UNREADABLE_PREFIX) else parse_iso_utc(requested)
    except ValueError:
        asked = None
    if asked is None:
        return DeadlineState.UNKNOWN, None
    due = deadline.due(asked)
    confirmed = parse_iso_utc(row.get("confirmed_at") or None)
    if confirmed is not None:
        return (DeadlineState.MET if confirmed <= due else DeadlineState.MISSED), due
    outcome, reason = row.get("outcome"), row.get("reason") or ""
    if outcome in CONFIRMED_VALUES:
        # HubSpot was seen holding it, but when was not recorded (a ledger row of version 0.2
        # taken over by a retry): met or missed cannot be said.
        return DeadlineState.UNKNOWN, due
    if outcome == Outcome.KEPT_NEWER_IN_HUBSPOT.value:
        # HubSpot holds a newer choice: whether it held the opt-out in time was not seen.
        return DeadlineState.UNKNOWN, due
    if outcome == Outcome.DUPLICATE.value and reason.startswith(SUPERSEDED_PREFIX):
        later = superseded_at(reason)
        # A later decision taken before this request was due replaces it; one taken after it
        # does not excuse the deadline that had already passed (nor does an undated one).
        if later is not None and later <= due:
            return DeadlineState.SUPERSEDED, due
    if now > due:
        return DeadlineState.OVERDUE, due
    # "Near": the warning before the due time, counted back the way the deadline counts forward.
    if warning.due(now) >= due:
        return DeadlineState.NEAR, due
    return DeadlineState.OPEN, due


def deadline_report(
    rows: Iterable[Mapping[str, str]],
    deadline: Deadline,
    warning: Deadline,
    now: float,
    limit: int = 100,
) -> dict[str, Any]:
    """Counts of every state, and the rows past, near or unknown (up to ``limit`` of each), by line:
    JSON-able and without addresses, for a summary, an asset event or a view."""
    counts: Counter[str] = Counter()
    listed: dict[str, list[dict[str, Any]]] = {"past": [], "near": [], "unknown": []}
    for row in rows:
        state, due = assess(row, deadline, warning, now)
        counts[state.value] += 1
        if state not in LISTED_STATES:
            continue
        group = "past" if state in PAST_STATES else state.value
        if len(listed[group]) < limit:
            listed[group].append(
                {
                    "line": int(row["line"]),
                    "outcome": row.get("outcome", ""),
                    "state": state.value,
                    "requested_at": shown_requested_at(row.get("requested_at") or ""),
                    "due_at": iso_utc(due) or "",
                    "confirmed_at": row.get("confirmed_at", ""),
                }
            )
    return {
        "deadline": deadline.describe(),
        "warning": warning.describe(),
        "assessed_at": iso_utc(now),
        "counts": dict(counts),
        **listed,
        "listed_up_to": limit,
    }
