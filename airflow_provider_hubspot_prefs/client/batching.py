"""Large inputs: streaming ingestion, de-duplication, chunked sending and the result ledger.

Nothing here imports Airflow. The work state lives in a SQLite file (the *work store*): it
de-duplicates without holding the input in memory, hands out pending chunks, records each
input's outcome, and survives a killed process so that a retry resumes instead of restarting.
The ledger is exported from it: one CSV row per input, in input order.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

from .errors import (
    HubSpotAPIError,
    HubSpotAuthenticationError,
    HubSpotError,
    HubSpotInputError,
    HubSpotPermissionError,
    HubSpotRateLimitError,
)
from .models import OperationResponse, OperationStatus, SetStatusSuccessReason
from .validation import is_plausible_email

log = logging.getLogger(__name__)

LEDGER_COLUMNS = (
    "line",
    "input",
    "subscriber_id",
    "outcome",
    "reason",
    "category",
    "correlation_id",
    "operation_status",
)
_INGEST_COMMIT_EVERY = 10_000


class Outcome(str, Enum):
    """Where each input ended. Every input gets exactly one."""

    UNSUBSCRIBED = "unsubscribed"
    ALREADY_UNSUBSCRIBED = "already_unsubscribed"
    STATUS_SET = "status_set"
    ALREADY_IN_STATE = "already_in_state"
    SUBMITTED = "submitted"  # accepted by HubSpot, operation still PENDING/PROCESSING
    INVALID_INPUT = "invalid_input"  # rejected locally, never sent
    DUPLICATE = "duplicate"  # same address as an earlier line, sent once
    FAILED = "failed"  # HubSpot (or the network) refused it; see reason
    NOT_ATTEMPTED = "not_attempted"  # dry run, or the task stopped before sending it


SUCCESS_OUTCOMES = frozenset(
    {
        Outcome.UNSUBSCRIBED,
        Outcome.ALREADY_UNSUBSCRIBED,
        Outcome.STATUS_SET,
        Outcome.ALREADY_IN_STATE,
        Outcome.SUBMITTED,
    }
)


@dataclass(frozen=True)
class Row:
    """An outcome to record for one input line."""

    line: int
    outcome: Outcome
    reason: str | None = None
    category: str | None = None
    correlation_id: str | None = None
    operation_status: str | None = None


class BatchAborted(HubSpotError):
    """Sending stopped early (auth lost, scopes missing, daily limit); the ledger says what remains."""

    def __init__(self, cause: HubSpotError, remaining: int) -> None:
        self.cause = cause
        self.remaining = remaining
        super().__init__(f"{remaining} input(s) not attempted after {cause}")


def normalize_address(raw: object) -> str | None:
    """Trimmed, lower-cased address, or None when it cannot be an email address."""
    if not isinstance(raw, str):
        return None
    address = raw.strip().lower()
    return address if is_plausible_email(address) else None


def iter_lines(stream: Iterable[str], csv_column: str | None = None) -> Iterator[str]:
    """Addresses from a text stream: one per line, or one column of a CSV with a header row."""
    if csv_column is None:
        for line in stream:
            value = line.rstrip("\r\n")
            if value.strip():
                yield value
        return
    reader = csv.DictReader(stream)
    if reader.fieldnames is None or csv_column not in reader.fieldnames:
        found = ", ".join(reader.fieldnames or []) or "no header"
        raise HubSpotInputError("csv_column", csv_column, f"is not a column of the input (found: {found})")
    for record in reader:
        value = record.get(csv_column) or ""
        if value.strip():
            yield value


class WorkStore:
    """SQLite-backed state of one batch run (see module docstring). Use from a single thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS inputs (
                line INTEGER PRIMARY KEY, raw TEXT, address TEXT, outcome TEXT, reason TEXT,
                category TEXT, correlation_id TEXT, operation_status TEXT, sent_at REAL);
            """
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(inputs)")}
        if "sent_at" not in columns:  # a store left by an older version of this package
            self._db.execute("ALTER TABLE inputs ADD COLUMN sent_at REAL")

    def close(self) -> None:
        self._db.close()

    @property
    def ingested(self) -> bool:
        """True once the whole input has been read in (a resumed run skips reading it again)."""
        row = self._db.execute("SELECT value FROM meta WHERE key='ingested'").fetchone()
        return bool(row and row[0] == "1")

    def ingest(self, inputs: Iterable[object], first_line: int = 1) -> None:
        """Read every input once: invalid and duplicate ones get their outcome now.

        A store that already holds a whole input (a resumed run) is not read again; the inputs an
        earlier try left not attempted or failed become pending again (the writes are idempotent, so
        sending a failed one again cannot apply anything twice).
        """
        if self.ingested:
            self._db.execute(
                "UPDATE inputs SET outcome=NULL, reason=NULL, category=NULL, correlation_id=NULL, "
                "operation_status=NULL WHERE outcome IN (?, ?)",
                (Outcome.NOT_ATTEMPTED.value, Outcome.FAILED.value),
            )
            return
        db = self._db
        db.execute("BEGIN")
        db.execute("DELETE FROM inputs")
        insert = "INSERT INTO inputs (line, raw, address, outcome, reason) VALUES (?, ?, ?, ?, ?)"
        rows: list[tuple[int, str, str | None, str | None, str | None]] = []
        count = 0
        for line, raw in enumerate(inputs, start=first_line):
            count += 1
            text = raw if isinstance(raw, str) else repr(raw)
            address = normalize_address(raw)
            if address is None:
                rows.append((line, text, None, Outcome.INVALID_INPUT.value, "not a valid email address"))
            else:
                rows.append((line, text, address, None, None))
            if len(rows) >= _INGEST_COMMIT_EVERY:
                db.executemany(insert, rows)
                rows.clear()
        db.executemany(insert, rows)
        # Every later line of an address already seen is a duplicate of its first line: one set-based
        # pass instead of a lookup per line.
        db.execute("CREATE INDEX IF NOT EXISTS inputs_address ON inputs(address, line)")
        db.execute(
            "UPDATE inputs SET outcome = ?, reason = 'same address as line ' || firsts.first "
            "FROM (SELECT address, MIN(line) AS first FROM inputs WHERE address IS NOT NULL "
            "GROUP BY address) AS firsts "
            "WHERE inputs.address = firsts.address AND inputs.line > firsts.first",
            (Outcome.DUPLICATE.value,),
        )
        db.execute("INSERT OR REPLACE INTO meta VALUES ('ingested', '1')")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('total', ?)", (str(count),))
        db.execute("COMMIT")

    @property
    def total(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='total'").fetchone()
        return int(row[0]) if row else 0

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM inputs WHERE outcome IS NULL").fetchone()[0])

    def pending_chunks(self, size: int) -> Iterator[list[tuple[int, str]]]:
        """Chunks of ``(line, address)`` still without an outcome, in input order."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT line, address FROM inputs WHERE outcome IS NULL AND line > ? ORDER BY line LIMIT ?",
                (last, size),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(int(r[0]), str(r[1])) for r in rows]

    def start_attempt(self, lines: list[int], at: float) -> float | None:
        """Note that ``lines`` are being sent at ``at`` (epoch seconds); committed before sending.

        Returns when an earlier attempt sent any of them first, if one did: an attempt whose try
        was killed before its answer was recorded may have been applied by HubSpot.
        """
        marks = ",".join("?" * len(lines))
        (earlier,) = self._db.execute(
            f"SELECT MIN(sent_at) FROM inputs WHERE line IN ({marks})", lines
        ).fetchone()
        self._db.execute(
            f"UPDATE inputs SET sent_at = COALESCE(sent_at, ?) WHERE line IN ({marks})", [at, *lines]
        )
        return None if earlier is None else float(earlier)

    def record(self, rows: Iterable[Row]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "UPDATE inputs SET outcome=?, reason=?, category=?, correlation_id=?, operation_status=? "
            "WHERE line=?",
            [
                (r.outcome.value, r.reason, r.category, r.correlation_id, r.operation_status, r.line)
                for r in rows
            ],
        )
        self._db.execute("COMMIT")

    def mark_remaining(self, outcome: Outcome, reason: str) -> int:
        cur = self._db.execute(
            "UPDATE inputs SET outcome=?, reason=? WHERE outcome IS NULL", (outcome.value, reason)
        )
        return int(cur.rowcount)

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT COALESCE(outcome, 'pending'), COUNT(*) FROM inputs GROUP BY 1")
        return {str(k): int(v) for k, v in rows}

    def addresses_with(self, outcomes: Iterable[Outcome]) -> Iterator[str]:
        wanted = [o.value for o in outcomes]
        marks = ",".join("?" * len(wanted))
        for (address,) in self._db.execute(
            f"SELECT address FROM inputs WHERE outcome IN ({marks}) ORDER BY line", wanted
        ):
            yield str(address)

    def export(self, out: IO[str]) -> int:
        """Write the ledger CSV (header plus one row per input) and return the number of rows."""
        writer = csv.writer(out)
        writer.writerow(LEDGER_COLUMNS)
        count = 0
        cursor = self._db.execute(
            "SELECT line, raw, address, COALESCE(outcome, 'pending'), reason, category, correlation_id, "
            "operation_status FROM inputs ORDER BY line"
        )
        while batch := cursor.fetchmany(5000):
            writer.writerows(batch)
            count += len(batch)
        return count


# ---- classification of HubSpot's answers -----------------------------------------------------------


def _error_rows(
    response: OperationResponse[Any], by_address: dict[str, int], done: set[int]
) -> Iterator[Row]:
    for error in response.errors:
        for subscriber in error.subscriber_ids:
            line = by_address.get(subscriber.strip().lower())
            if line is not None and line not in done:
                done.add(line)
                yield Row(line, Outcome.FAILED, error.message, error.category, error.id)


# How far HubSpot's clock may run behind ours when telling "changed by the attempt whose answer was
# lost" from "was already so": a misjudgement only swaps applied/unchanged, never loses a row.
CLOCK_SKEW_TOLERANCE = 2.0
LOST_ANSWER_REASON = "changed by an earlier attempt of this request whose answer was lost"


def classify(
    chunk: list[tuple[int, str]],
    response: OperationResponse[Any],
    *,
    applied: Outcome,
    unchanged: Outcome,
) -> list[Row]:
    """One row per chunk input from a batch answer: applied, unchanged, submitted or failed.

    ``applied`` is the outcome when HubSpot reports a change (UNSUBSCRIBE_FROM_ALL_OCCURRED,
    REQUESTED_CHANGE_OCCURRED, RESUBSCRIBE_OCCURRED); ``unchanged`` when it reports
    NO_STATUS_CHANGE. Inputs HubSpot does not mention at all are failed, never dropped.
    """
    by_address = {address: line for line, address in chunk}
    done: set[int] = set()
    rows = list(_error_rows(response, by_address, done))
    status = response.status
    if status is OperationStatus.CANCELED:
        reason = "HubSpot canceled the operation"
        return rows + [
            Row(line, Outcome.FAILED, reason, "CANCELED", None, status.value)
            for line, _ in chunk
            if line not in done
        ]
    if status in (OperationStatus.PENDING, OperationStatus.PROCESSING):
        return rows + [
            Row(line, Outcome.SUBMITTED, "accepted; HubSpot is still processing", None, None, status.value)
            for line, _ in chunk
            if line not in done
        ]
    reasons_by_line: dict[int, set[SetStatusSuccessReason | None]] = {}
    changed_by_lost_attempt: set[int] = set()
    since = response.uncertain_since
    for result in response.results:
        # Bulk rows carry ``statuses``; single-contact answers are PublicStatus items themselves.
        line = by_address.get(str(getattr(result, "subscriber_id_string", "")).lower())
        if line is None or line in done:
            continue
        statuses = getattr(result, "statuses", None)
        items = [result] if statuses is None else statuses
        reasons_by_line.setdefault(line, set()).update(
            getattr(item, "set_status_success_reason", None) for item in items
        )
        if since is not None and any(
            item.timestamp.timestamp() >= since - CLOCK_SKEW_TOLERANCE for item in items
        ):
            changed_by_lost_attempt.add(line)
    for line, reasons in reasons_by_line.items():
        changed = sorted(
            str(r.value) for r in reasons if r and r is not SetStatusSuccessReason.NO_STATUS_CHANGE
        )
        if changed or not reasons:
            rows.append(Row(line, applied, ",".join(changed) or None, operation_status=status.value))
        elif line in changed_by_lost_attempt:
            # Unchanged now, but changed since this request's first attempt, whose answer was lost.
            rows.append(Row(line, applied, LOST_ANSWER_REASON, operation_status=status.value))
        else:
            rows.append(Row(line, unchanged, "NO_STATUS_CHANGE", operation_status=status.value))
        done.add(line)
    rows += [
        Row(line, Outcome.FAILED, "HubSpot returned no result for this input", None, None, status.value)
        for line, _ in chunk
        if line not in done
    ]
    return rows


def is_fatal(error: HubSpotError) -> bool:
    """Errors after which no further chunk can succeed: stop sending instead of failing everything."""
    if isinstance(error, HubSpotRateLimitError):
        return error.is_daily
    return isinstance(error, (HubSpotAuthenticationError, HubSpotPermissionError))


def failed_rows(chunk: list[tuple[int, str]], error: HubSpotError) -> list[Row]:
    category = error.category if isinstance(error, HubSpotAPIError) else type(error).__name__
    correlation = error.correlation_id if isinstance(error, HubSpotAPIError) else None
    reason = str(error)
    if error.may_have_applied:
        reason += (
            "; an answer was lost or unreadable, so HubSpot may have applied it: a rerun resends it safely"
        )
    return [Row(line, Outcome.FAILED, reason, category, correlation) for line, _ in chunk]


SendChunk = Callable[[list[str]], Awaitable[OperationResponse[Any]]]


async def send_pending(
    store: WorkStore,
    send: SendChunk,
    *,
    batch_size: int,
    max_in_flight: int,
    applied: Outcome,
    unchanged: Outcome,
) -> None:
    """Send every pending input in chunks, at most ``max_in_flight`` requests at a time.

    A chunk that fails for good marks its inputs failed with the error's reason. A fatal error
    stops the sending; the remaining inputs are marked not attempted and ``BatchAborted`` raised.
    """
    slots = asyncio.Semaphore(max_in_flight)
    running: set[asyncio.Task[None]] = set()
    fatal: list[HubSpotError] = []

    async def one(chunk: list[tuple[int, str]]) -> None:
        try:
            earlier = store.start_attempt([line for line, _ in chunk], time.time())
            response = await send([address for _, address in chunk])
            if earlier is not None:
                response.mark_uncertain(min(earlier, response.uncertain_since or earlier))
        except HubSpotError as error:
            if is_fatal(error):
                fatal.append(error)  # the chunk stays pending: nothing is known about it
            else:
                store.record(failed_rows(chunk, error))
        else:
            store.record(classify(chunk, response, applied=applied, unchanged=unchanged))
        finally:
            slots.release()

    for chunk in store.pending_chunks(batch_size):
        await slots.acquire()
        if fatal:
            slots.release()
            break
        task = asyncio.create_task(one(chunk))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*running)
    if fatal:
        remaining = store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {fatal[0]}")
        raise BatchAborted(fatal[0], remaining)
