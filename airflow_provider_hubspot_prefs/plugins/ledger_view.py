"""What the task-instance view shows of one ledger, computed by streaming the file.

A ledger may hold hundreds of thousands of rows on object storage: every function here reads it
row by row (``ledger.files.read_rows``) and keeps only what it returns (counts, durations, one page
of rows), never the file. Addresses leave only through ``shown_row``, which redacts them for users
who may not see addresses.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..client.redaction import redact_email, redact_text
from ..ledger.deadlines import shown_requested_at
from ..ledger.files import read_rows
from ..ledger.report import PROBLEM_OUTCOMES
from ..ledger.store import parse_iso_utc

# The rows an on-call engineer or an auditor has to look at: refused, failed, or not (yet) known
# to have reached HubSpot; the same the report page lists.
ATTENTION_OUTCOMES = frozenset(PROBLEM_OUTCOMES)
MAX_PAGE = 500


class CursorNotFound(ValueError):
    """The paging cursor names a line this ledger has no attention row for."""


def shown_row(row: Mapping[str, str], addresses: bool) -> dict[str, str]:
    """One ledger row as the views show it: the address kept or redacted, free text scrubbed.

    ``input`` is the line as given (an invalid line may still hold an address-like text) and
    ``reason`` may quote HubSpot's message, which can name the contact: both are scrubbed too.
    """
    shown = dict(row)
    if not addresses:
        # Every column, not a list of the ones that may hold an address: a shifted spreadsheet cell
        # puts one in requested_at, HubSpot's message one in reason.
        shown = {column: redact_text(value or "") for column, value in row.items()}
        shown["subscriber_id"] = redact_email(row["subscriber_id"]) if row.get("subscriber_id") else ""
        shown["requested_at"] = shown_requested_at(shown.get("requested_at", ""))
    return shown


@dataclass
class LedgerSummary:
    """Counts, time to confirmation and (when a deadline is set) the deadline report of one ledger."""

    rows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    attention: int = 0
    confirmation: dict[str, Any] = field(default_factory=dict)
    deadlines: dict[str, Any] | None = None


def _seconds(row: Mapping[str, str]) -> float | None:
    """confirmed_at - first_sent_at of a row, ``None`` when either is missing or unreadable."""
    try:
        sent = parse_iso_utc(row.get("first_sent_at") or None)
        confirmed = parse_iso_utc(row.get("confirmed_at") or None)
    except ValueError:
        return None
    if sent is None or confirmed is None:
        return None
    return max(0.0, confirmed - sent)


def confirmation_stats(durations: list[float]) -> dict[str, Any]:
    """Median, 95th percentile (nearest rank) and maximum of the seconds to confirmation."""
    if not durations:
        return {"confirmed_rows": 0, "median_s": None, "p95_s": None, "max_s": None}
    ordered = sorted(durations)
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    p95 = ordered[max(0, math.ceil(0.95 * n) - 1)]
    return {"confirmed_rows": n, "median_s": median, "p95_s": p95, "max_s": ordered[-1]}


def summarize_ledger(
    location: str,
    deadline_report: Callable[[Iterable[Mapping[str, str]]], dict[str, Any]] | None = None,
    each_row: Callable[[dict[str, str]], None] | None = None,
) -> LedgerSummary:
    """One pass over the ledger: outcome counts, attention rows, time to confirmation, deadlines.

    ``deadline_report`` (the entry's deadline bound in) consumes the same stream of rows, and
    ``each_row`` sees every row too (``FirstPage``), so that the file is read once however large it is.
    """
    counts: Counter[str] = Counter()
    durations: list[float] = []

    def observed() -> Iterator[dict[str, str]]:
        for row in read_rows(location):
            counts[row["outcome"]] += 1
            seconds = _seconds(row)
            if seconds is not None:
                durations.append(seconds)
            if each_row is not None:
                each_row(row)
            yield row

    report = deadline_report(observed()) if deadline_report else None
    if report is None:
        for _ in observed():
            pass
    return LedgerSummary(
        rows=sum(counts.values()),
        outcomes=dict(counts),
        attention=sum(n for outcome, n in counts.items() if outcome in ATTENTION_OUTCOMES),
        confirmation=confirmation_stats(durations),
        deadlines=report,
    )


class FirstPage:
    """Collects the first page of attention rows while ``summarize_ledger`` reads the file: what
    ``attention_page(location, None, limit, addresses)`` would return, without a second pass."""

    def __init__(self, limit: int, addresses: bool) -> None:
        self.limit = max(1, min(limit, MAX_PAGE))
        self.addresses = addresses
        self.rows: list[dict[str, str]] = []
        self.more = False

    def __call__(self, row: dict[str, str]) -> None:
        if row["outcome"] not in ATTENTION_OUTCOMES or self.more:
            return
        if len(self.rows) == self.limit:
            self.more = True
        else:
            self.rows.append(shown_row(row, self.addresses))

    @property
    def cursor(self) -> int | None:
        """The line of the page's last row when more follow (``attention_page``'s cursor), else None."""
        return int(self.rows[-1]["line"]) if self.more else None


def attention_page(
    location: str, after_line: int | None, limit: int, addresses: bool
) -> tuple[list[dict[str, str]], int | None]:
    """The next ``limit`` attention rows after the row of line ``after_line``, and the next cursor.

    The cursor is the line of the last row returned (``None``: no more rows). Each input line has
    exactly one row, so "after that row" holds whatever order the file is in; the file is streamed
    from its start each time (a CSV has no index) and no more than ``limit + 1`` rows are kept.
    """
    limit = max(1, min(limit, MAX_PAGE))
    page: list[dict[str, str]] = []
    passed = after_line is None
    for row in read_rows(location):
        if row["outcome"] not in ATTENTION_OUTCOMES:
            continue
        if not passed:
            passed = row["line"] == str(after_line)
            continue
        if len(page) == limit:
            return page, int(page[-1]["line"])
        page.append(shown_row(row, addresses))
    if not passed:
        raise CursorNotFound(f"line {after_line} is no failed or refused row of this ledger")
    return page, None
