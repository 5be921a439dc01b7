"""Rows of a desired consent state, read as the consent sync needs them (issue 13's sync input).

A row says what one person decided about one subscription: subscriber, subscription id, status,
legal basis with its explanation, and when they decided. Rows come from a CSV or JSON-lines file,
a list of mappings (XCom) or a SQL cursor; each is numbered (its line in a file, its position
otherwise) and either complete and valid or refused with the field and the reason, so that every
row can end in exactly one ledger row.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
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
STATUSES = tuple(state.value for state in StatusState)
LEGAL_BASES = tuple(basis.value for basis in LegalBasis)


@dataclass(frozen=True)
class DesiredStatus:
    """One row: what to make HubSpot hold, or why it cannot be used (``problem``)."""

    line: int
    text: str
    subscriber: str | None = None
    subscription_id: int | None = None
    status: str | None = None
    legal_basis: str | None = None
    legal_basis_explanation: str | None = None
    decided_at: datetime | None = None
    problem: str | None = None


def _cell(row: Mapping[str, Any], column: str) -> Any:
    value = row.get(column)
    return value.strip() if isinstance(value, str) else value


def desired_status(line: int, row: Mapping[str, Any], *, require_legal_basis: bool = True) -> DesiredStatus:
    """Check one row (keys as in ``COLUMNS``) and say what is wrong with it, naming the field."""
    # The row as JSON is its ledger ``input``, and what the sync reads back to send it: exact
    # for every valid row (a value with undecodable bytes is refused below).
    given = {c: row.get(c) for c in COLUMNS if row.get(c) not in (None, "")}
    text = shown(json.dumps(given, default=str, ensure_ascii=False))

    def refused(problem: str) -> DesiredStatus:
        return DesiredStatus(line, text, problem=problem)

    subscriber, problem = examine(row.get("subscriber_id"), empty="empty")
    if subscriber is None:
        return refused(f"subscriber_id is {problem}")
    subscription = _cell(row, "subscription_id")
    if isinstance(subscription, str) and subscription.isdigit():
        subscription = int(subscription)
    # Warehouses answer NUMBER columns as Decimal (Snowflake, Oracle) or float: whole ones are ids.
    if isinstance(subscription, (Decimal, float)) and math.isfinite(subscription) and subscription % 1 == 0:
        subscription = int(subscription)
    if isinstance(subscription, bool) or not isinstance(subscription, int) or subscription <= 0:
        return refused(f"subscription_id {subscription!r} is not a positive whole number")
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
    decided_at, problem = _moment(_cell(row, "decided_at"))
    if decided_at is None:
        return refused(f"decided_at {problem}")
    return DesiredStatus(
        line,
        text,
        subscriber,
        subscription,
        status,
        legal_basis,
        explanation and str(explanation),
        decided_at,
    )


def _moment(value: Any) -> tuple[datetime | None, str]:
    """An aware datetime from a datetime, an ISO 8601 text or epoch seconds; else why not."""
    if value in (None, ""):
        return None, "is empty: without it, a change made in HubSpot later cannot be told from an older one"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        from datetime import timezone

        return datetime.fromtimestamp(float(value), timezone.utc), ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None, f"{value!r} is not an ISO 8601 time"
    if not isinstance(value, datetime):
        return None, f"{value!r} is not a time"
    if value.tzinfo is None:
        return None, f"{value.isoformat()} has no time zone: give it with one (e.g. Z for UTC)"
    return value, ""


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
    """A CSV with a header naming the columns (``COLUMNS``); rows numbered by the line they start on."""
    reader = csv.DictReader(stream)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or []) and c != "legal_basis_explanation"]
    if reader.fieldnames is not None and missing:
        raise ValueError(
            f"the desired state lacks the column(s) {', '.join(missing)} "
            f"(found: {', '.join(reader.fieldnames)})"
        )
    previous_end = reader.line_num
    for row in reader:
        line, previous_end = previous_end + 1, reader.line_num
        yield desired_status(line, row, require_legal_basis=require_legal_basis)


def desired_from_json_lines(stream: IO[str], *, require_legal_basis: bool = True) -> Iterator[DesiredStatus]:
    """One JSON object a line; a line that is no JSON object is refused with its line number."""
    for line, raw in enumerate(stream, start=1):
        text = raw.strip()
        if not text:
            yield DesiredStatus(line, "", problem="empty line")
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield DesiredStatus(line, shown(text), problem=f"not JSON ({exc.msg} at column {exc.colno})")
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
