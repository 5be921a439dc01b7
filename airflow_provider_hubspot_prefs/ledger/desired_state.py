"""Rows of a desired consent state, read as the consent sync needs them (issue 13's sync input).

A row says what one person decided about one subscription: subscriber, subscription id (and its
business unit), status, legal basis with its explanation, and when they decided. Rows come from a
CSV or JSON-lines file, a list of mappings (XCom) or a SQL cursor; each is numbered (its line in a
file, its position otherwise) and either complete and valid or refused with the field and the
reason, so that every row can end in exactly one ledger row.

Every value is parsed once, here: the sync plans from the normalized row (``DesiredStatus.payload``),
never from the text again. A refused row whose contact and subscription can still be read keeps
them (``key``) and the latest time it can have been decided (``latest_possible``): a later decision
that cannot be used must stop an earlier one from being written (``store.WorkStore.end_ingest``).
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import IO, Any

from ..client.models import LegalBasis, StatusState
from .inputs import examine, shown

COLUMNS = (
    "subscriber_id",
    "subscription_id",
    "status",
    "legal_basis",
    "legal_basis_explanation",
    "decided_at",
)
# Optional: the business unit of the subscription (default: the operator's or the connection's).
OPTIONAL_COLUMNS = ("legal_basis_explanation", "business_unit_id")
STATUSES = tuple(state.value for state in StatusState)
LEGAL_BASES = tuple(basis.value for basis in LegalBasis)

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


@dataclass(frozen=True)
class DesiredStatus:
    """One row: what to make HubSpot hold, or why it cannot be used (``problem``).

    A refused row keeps ``subscriber`` and ``subscription_id`` when they could be read, and
    ``latest_possible``: the latest time (epoch seconds) it can have been decided, ``inf`` when
    its time cannot be read at all.
    """

    line: int
    text: str
    subscriber: str | None = None
    subscription_id: int | None = None
    status: str | None = None
    legal_basis: str | None = None
    legal_basis_explanation: str | None = None
    decided_at: datetime | None = None
    problem: str | None = None
    business_unit_id: int | None = None
    latest_possible: float | None = None

    @property
    def key(self) -> str | None:
        """Contact and subscription: what makes two rows decisions about the same thing."""
        if self.subscriber is None or self.subscription_id is None:
            return None
        return f"{self.subscriber} {self.subscription_id}"

    @property
    def decided(self) -> float | None:
        """When the person decided (epoch seconds): the decision time of a usable row, else the
        latest time a refused one can have been decided."""
        if self.problem is None and self.decided_at is not None:
            return self.decided_at.timestamp()
        return self.latest_possible

    def payload(self) -> str:
        """The normalized row as JSON: what the sync plans from (``from_payload``)."""
        assert self.decided_at is not None
        return json.dumps(
            [
                self.subscriber,
                self.subscription_id,
                self.business_unit_id,
                self.status,
                self.legal_basis,
                self.legal_basis_explanation,
                self.decided_at.timestamp(),
            ],
            ensure_ascii=False,
        )

    @classmethod
    def from_payload(cls, line: int, text: str, payload: str) -> DesiredStatus:
        subscriber, subscription, unit, status, basis, explanation, decided = json.loads(payload)
        return cls(
            line,
            text,
            subscriber,
            subscription,
            status,
            basis,
            explanation,
            datetime.fromtimestamp(decided, timezone.utc),
            business_unit_id=unit,
        )


def _cell(row: Mapping[str, Any], column: str) -> Any:
    value = row.get(column)
    return value.strip() if isinstance(value, str) else value


def _whole_number(value: Any) -> Any:
    """A positive whole number as an int, from an int, ASCII digits, or a whole Decimal/float
    (warehouses answer NUMBER/NUMERIC columns so: ``Decimal('1001.0')``); anything else as it was."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]+(\.0*)?", value):
        return int(value.split(".")[0])
    try:
        if isinstance(value, (Decimal, float)) and math.isfinite(value) and value % 1 == 0:
            return int(value)
    except (ArithmeticError, ValueError):  # Decimal('sNaN') refuses even to be compared
        pass
    return value


def desired_status(
    line: int,
    row: Mapping[str, Any],
    *,
    require_legal_basis: bool = True,
    now: float | None = None,
) -> DesiredStatus:
    """Check one row (keys as in ``COLUMNS``) and say what is wrong with it, naming the field.

    ``now`` (epoch seconds, default the clock) bounds ``decided_at``: a decision more than a few
    minutes in the future is refused.
    """
    # The row as JSON is its ledger ``input``: what the row said, as read.
    given = {c: row.get(c) for c in (*COLUMNS, "business_unit_id") if row.get(c) not in (None, "")}
    text = shown(json.dumps(given, default=str, ensure_ascii=False))
    subscriber, problem = examine(row.get("subscriber_id"), empty="empty")
    if subscriber is None:
        return DesiredStatus(line, text, problem=f"subscriber_id is {problem}")
    subscription = _whole_number(_cell(row, "subscription_id"))
    if isinstance(subscription, bool) or not isinstance(subscription, int) or subscription <= 0:
        return DesiredStatus(
            line, text, subscriber, problem=f"subscription_id {subscription!r} is not a positive whole number"
        )
    decided_at, latest_possible, time_problem = _moment(_cell(row, "decided_at"), now)

    def refused(problem: str) -> DesiredStatus:
        # The contact and subscription are known: the refused row still speaks for them.
        return DesiredStatus(
            line, text, subscriber, subscription, problem=problem, latest_possible=latest_possible
        )

    unit = _whole_number(_cell(row, "business_unit_id"))
    if unit in (None, ""):
        unit = None
    elif isinstance(unit, bool) or not isinstance(unit, int) or unit < 0:
        return refused(f"business_unit_id {unit!r} is not a whole number")
    status = str(_cell(row, "status") or "").upper()
    if status not in STATUSES:
        return refused(f"status {_cell(row, 'status')!r} is not one of {', '.join(STATUSES)}")
    legal_basis = str(_cell(row, "legal_basis") or "").upper() or None
    if legal_basis is not None and legal_basis not in LEGAL_BASES:
        return refused(f"legal_basis {_cell(row, 'legal_basis')!r} is not one of {', '.join(LEGAL_BASES)}")
    explanation = _cell(row, "legal_basis_explanation") or None
    if isinstance(explanation, str) and any("\udc80" <= ch <= "\udcff" for ch in explanation):
        return refused("legal_basis_explanation holds bytes that are not text in the input's encoding")
    if require_legal_basis and status == "SUBSCRIBED" and (legal_basis is None or explanation is None):
        return refused(
            "SUBSCRIBED needs legal_basis and legal_basis_explanation (require_legal_basis=True): "
            "without them HubSpot may accept it and keep no evidence of consent"
        )
    if decided_at is None:
        return refused(f"decided_at {time_problem}")
    return DesiredStatus(
        line,
        text,
        subscriber,
        subscription,
        status,
        legal_basis,
        explanation and str(explanation),
        decided_at,
        business_unit_id=unit,
    )


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def _moment(value: Any, now: float | None) -> tuple[datetime | None, float, str]:
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


def desired_from_mappings(
    rows: Iterable[Mapping[str, Any]], *, require_legal_basis: bool = True, start: int = 1
) -> Iterator[DesiredStatus]:
    """Rows given as mappings (an XCom list, SQL rows): row ``n`` is numbered ``n``, from ``start``."""
    for line, row in enumerate(rows, start=start):
        if not isinstance(row, Mapping):
            yield DesiredStatus(
                line, shown(repr(row)), problem=f"not a row of named fields but {type(row).__name__}"
            )
            continue
        yield desired_status(line, row, require_legal_basis=require_legal_basis)


def desired_from_csv(stream: IO[str], *, require_legal_basis: bool = True) -> Iterator[DesiredStatus]:
    """A CSV with a header naming the columns (``COLUMNS``); rows numbered by the line they start
    on, blank lines included (each is refused as an empty line under its own number)."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    missing = [c for c in COLUMNS if c not in names and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(
            f"the desired state lacks the column(s) {', '.join(missing)} (found: {', '.join(header)})"
        )
    previous_end = reader.line_num
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            yield DesiredStatus(line, ",".join(cells), problem="empty line")
            continue
        yield desired_status(
            line, dict(zip(names, cells, strict=False)), require_legal_basis=require_legal_basis
        )


def desired_from_json_lines(stream: IO[str], *, require_legal_basis: bool = True) -> Iterator[DesiredStatus]:
    """One JSON object a line; a line that is no JSON object is refused with its line number."""
    for line, raw in enumerate(stream, start=1):
        text = raw.strip()
        if not text:
            yield DesiredStatus(line, "", problem="empty line")
            continue
        try:
            row = json.loads(text, parse_float=Decimal)
        except (json.JSONDecodeError, ValueError) as exc:
            where = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            yield DesiredStatus(line, shown(text), problem=f"not JSON ({reason}{where})")
            continue
        if not isinstance(row, dict):
            yield DesiredStatus(line, shown(text), problem=f"not a JSON object but {type(row).__name__}")
            continue
        yield desired_status(line, row, require_legal_basis=require_legal_basis)


def desired_from_cursor(
    cursor: Any, *, require_legal_basis: bool = True, batch: int = 1000
) -> Iterator[DesiredStatus]:
    """Rows of a DB-API cursor that ran the query, fetched ``batch`` at a time (never all at once)."""
    line = 0
    names: list[str] = []
    while rows := cursor.fetchmany(batch):
        # A server-side cursor (PostgreSQL's) describes its columns only once it has fetched.
        names = names or [str(d[0]).lower() for d in cursor.description]
        for values in rows:
            line += 1
            yield desired_status(
                line, dict(zip(names, values, strict=True)), require_legal_basis=require_legal_basis
            )
