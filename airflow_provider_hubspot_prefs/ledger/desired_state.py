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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any

from ..client.models import LegalBasis, StatusState
from .deadlines import requested_text
from .inputs import examine, shown
from .moments import moment

COLUMNS = (
    "subscriber_id",
    "subscription_id",
    "status",
    "legal_basis",
    "legal_basis_explanation",
    "decided_at",
)
# Optional: the business unit of the subscription (default: the operator's or the connection's),
# and, for an opt-out, when the person asked for it (default: ``decided_at``), which its deadline
# counts from.
OPTIONAL_COLUMNS = ("legal_basis_explanation", "business_unit_id", "requested_at")
STATUSES = tuple(state.value for state in StatusState)
LEGAL_BASES = tuple(basis.value for basis in LegalBasis)


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
    # An opt-out's request time as the ledger keeps it (``deadlines.requested_text``).
    requested: str | None = None

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
    given = {c: row.get(c) for c in (*COLUMNS, *OPTIONAL_COLUMNS) if row.get(c) not in (None, "")}
    text = shown(json.dumps(given, default=str, ensure_ascii=False))
    subscriber, problem = examine(row.get("subscriber_id"), empty="empty")
    if subscriber is None:
        return DesiredStatus(line, text, problem=f"subscriber_id is {problem}")
    subscription = _whole_number(_cell(row, "subscription_id"))
    if isinstance(subscription, bool) or not isinstance(subscription, int) or subscription <= 0:
        return DesiredStatus(
            line, text, subscriber, problem=f"subscription_id {subscription!r} is not a positive whole number"
        )
    decided_at, latest_possible, time_problem = moment(_cell(row, "decided_at"), now)
    # An opt-out's deadline counts from when the person asked: the row's requested_at, else its
    # decision time (a refused row's too, when it says UNSUBSCRIBED: its deadline runs all the same).
    requested = None
    if str(_cell(row, "status") or "").upper() == "UNSUBSCRIBED":
        asked = _cell(row, "requested_at")
        if asked in (None, ""):  # the decision time, as given: unreadable stays unreadable
            asked = decided_at if decided_at is not None else _cell(row, "decided_at")
        requested = requested_text(asked, now)

    def refused(problem: str) -> DesiredStatus:
        # The contact and subscription are known: the refused row still speaks for them.
        return DesiredStatus(
            line,
            text,
            subscriber,
            subscription,
            problem=problem,
            latest_possible=latest_possible,
            requested=requested,
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
        requested=requested,
    )


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
