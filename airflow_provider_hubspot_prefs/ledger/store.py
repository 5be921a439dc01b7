"""The work store: one task instance's batch state in a private SQLite file on the worker.

It de-duplicates without holding the input in memory, hands out pending chunks, records each
input's outcome and when it was first sent, and survives a killed process, so that a retry on the
same machine resumes exactly. It also records which try owns it, so that a try that is no longer
the current one notices and stops. The durable copy of this state lives next to the ledger (see
``checkpoint``); this file is a fast local cache of it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from .inputs import InputRecord
from .outcomes import CONFIRMED_OUTCOMES, RETRIED_OUTCOMES, Outcome, Row
from .private_files import create_private_file, private_folder

_INGEST_COMMIT_EVERY = 10_000
# How the reason of a ``duplicate`` row that is the same change as an earlier line begins (not one
# superseded by a later decision): such a row shares its first line's confirmation.
SAME_CHANGE_PREFIX = "same "
# ... and of one a later decision for the same contact and subscription replaced (the consent sync),
# which ends with that decision's time (``superseded_at`` reads it back).
SUPERSEDED_PREFIX = "superseded by the latest decision"
_SUPERSEDED_AT = re.compile(r"^" + SUPERSEDED_PREFIX + r".*\(decided at (\S+)\)$")


def superseded_at(reason: str) -> float | None:
    """When the decision that superseded a row was taken (epoch seconds), from the row's reason."""
    found = _SUPERSEDED_AT.match(reason)
    if found is None:
        return None
    try:
        return parse_iso_utc(found.group(1))
    except ValueError:
        return None


STALE_AFTER_DAYS = 7


def _earlier_send(why: str) -> str:
    """The reason (an SQL expression) of a row an earlier try sent (``sent_sure``: that try's own
    record of the send) or may have sent (a send window covered it), which this try ends without
    sending it again: HubSpot may have applied it, so it is ``failed`` (a retry resends it safely),
    never "not sent". ``why``: an SQL term saying why this try stops."""
    at = "iso_utc(sent_at)"  # as the ledger's first_sent_at column shows it
    return (
        f"CASE WHEN sent_sure THEN 'sent by an earlier try at ' || {at} "
        f"ELSE 'an earlier try may have sent it (from ' || {at} || ' on)' END "
        "|| ': HubSpot may have applied it. This try did not send it "
        f"again (' || COALESCE({why}, 'it stopped') || '); a retry resends it safely'"
    )


def iso_utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def parse_iso_utc(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def sweep_stale(folder: Path, days: float = STALE_AFTER_DAYS) -> int:
    """Remove work stores untouched for ``days`` (left by killed tasks); return how many."""
    cutoff = time.time() - days * 86400
    removed = 0
    for path in folder.glob("*.sqlite*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += path.suffix == ".sqlite"
        except OSError:
            continue
    return removed


class PendingRow(NamedTuple):
    """A row still to decide: its line, its input as read, its address, when it was first sent
    (None: never), and its parsed form where the operator keeps one (``InputRecord.payload``)."""

    line: int
    raw: str
    address: str
    sent_at: float | None
    payload: str | None


class InputChangedError(ValueError):
    """The input is not what an earlier try of this task read: its ledger cannot be resumed line by line."""


class StaleTryError(RuntimeError):
    """A newer try of the same task instance owns the state: this try must not write it."""


class WorkStore:
    """SQLite-backed state of one batch task instance. Use from a single thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        private_folder(self.path.parent)
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database
        # file's mode (it would create the database itself 0644 less the umask).
        os.close(create_private_file(self.path))
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.create_function("iso_utc", 1, iso_utc, deterministic=True)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS inputs (
                line INTEGER PRIMARY KEY, raw TEXT, address TEXT, outcome TEXT, reason TEXT,
                category TEXT, correlation_id TEXT, error_id TEXT, operation_status TEXT,
                sent_at REAL, key TEXT, decided REAL, payload TEXT, plan TEXT, sent_sure INTEGER,
                requested TEXT, confirmed_at REAL);
            """
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(inputs)")}
        # A store left by an older version of this package lacks the newer columns.
        for added in (
            "key TEXT",
            "decided REAL",
            "payload TEXT",
            "plan TEXT",
            "sent_sure INTEGER",
            "requested TEXT",
            "confirmed_at REAL",
        ):
            if added.split()[0] not in columns:
                self._db.execute(f"ALTER TABLE inputs ADD COLUMN {added}")
        self._mine: int | None = None  # the try this connection records for, once it claimed the store
        self._unanswered: set[int] = set()  # lines this connection sent and recorded no answer for yet
        if self.get_meta("store_id") is None:
            self.set_meta("store_id", uuid.uuid4().hex)

    @classmethod
    def open_existing(cls, path: str | Path) -> WorkStore | None:
        """The store at ``path`` if there is one; never creates an empty one."""
        return cls(path) if Path(path).exists() else None

    def close(self) -> None:
        self._db.close()

    def remove(self) -> None:
        """Close and delete the store with its WAL files."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    # -- metadata ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: object) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    @property
    def store_id(self) -> str:
        """Names this store in the checkpoints it writes (see ``checkpoint.BatchState.open``)."""
        return str(self.get_meta("store_id"))

    @property
    def owner_try(self) -> int:
        return int(self.get_meta("try_number") or 0)

    def claim(self, try_number: int) -> None:
        """Make ``try_number`` the owner, unless a newer try already is (``StaleTryError``)."""
        if self.owner_try > try_number:
            raise StaleTryError(
                f"try {self.owner_try} owns this task's work store; try {try_number} is stale"
            )
        self.set_meta("try_number", try_number)
        self._mine = try_number  # from now on this connection records only while its try owns the store

    def check_owner(self, try_number: int) -> None:
        if self.owner_try > try_number:
            raise StaleTryError(
                f"try {self.owner_try} took over this task's work store from try {try_number}"
            )

    @property
    def ingested(self) -> bool:
        """True once the whole input has been read in (a resumed run does not read it again)."""
        return self.get_meta("ingested") == "1"

    @property
    def total(self) -> int:
        return int(self.get_meta("total") or 0)

    # -- ingestion and resume ------------------------------------------------------------------

    def ingest(self, records: Iterable[InputRecord]) -> None:
        """Read every input at once: invalid and duplicate ones get their outcome now."""
        self.begin_ingest()
        block: list[InputRecord] = []
        for record in records:
            block.append(record)
            if len(block) >= _INGEST_COMMIT_EVERY:
                self.ingest_block(block)
                block.clear()
        self.ingest_block(block)
        self.end_ingest()

    def begin_ingest(self) -> None:
        """Start reading the input in blocks (``ingest_block``); what was read before is dropped."""
        self._db.execute("DELETE FROM inputs")
        self._db.execute("CREATE INDEX IF NOT EXISTS inputs_key ON inputs(key, line)")
        self.set_meta("ingested", "0")
        self.set_meta("read_through", 0)

    def ingest_block(self, block: list[InputRecord]) -> None:
        """Add the next records in line order, in one transaction; each gets its outcome if it has one.

        A line whose key (its address, unless the record names another) an earlier line already
        has (in this block or an earlier one) is a duplicate of the first such line. Sending may
        start from the lines read so far.
        """
        if not block:
            return
        db = self._db
        invalid = Outcome.INVALID_INPUT.value
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO inputs (line, raw, address, outcome, reason, key, decided, payload, requested) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.line,
                    r.text,
                    r.address,
                    None if r.address is not None else invalid,
                    r.problem,
                    # A refused record may still name its key (a consent row whose contact and
                    # subscription are readable): it takes part in choosing the latest decision.
                    r.key or r.address,
                    r.decided,
                    r.payload,
                    r.requested,
                )
                for r in block
            ],
        )
        db.execute(
            "UPDATE inputs SET outcome = :duplicate, reason = :same || firsts.first "
            "FROM (SELECT key, MIN(line) AS first FROM inputs WHERE key IN "
            "(SELECT key FROM inputs WHERE line BETWEEN :first AND :last AND key IS NOT NULL) "
            "AND (outcome IS NULL OR outcome != :invalid) GROUP BY key) AS firsts "
            "WHERE inputs.line BETWEEN :first AND :last AND inputs.key = firsts.key "
            "AND inputs.line > firsts.first AND inputs.outcome IS NULL",
            {
                "duplicate": Outcome.DUPLICATE.value,
                "invalid": invalid,
                "same": "same change as line " if any(r.key for r in block) else "same address as line ",
                "first": block[0].line,
                "last": block[-1].line,
            },
        )
        self.set_meta("read_through", block[-1].line)
        db.execute("COMMIT")

    def end_ingest(self) -> None:
        """The whole input is read: a resumed run will not read it again.

        Where the lines of a key carry decision times, the latest decision is the one kept (of
        identical lines at the same time, the last), not the first line: a person's later choice
        replaces the earlier. No line of a key is sent when its latest decision is not known: the
        latest is a refused line (a line whose time cannot be read counts as infinitely late), or
        lines that say different things (their ``payload``) carry the same, latest, time.
        """
        (count,) = self._db.execute("SELECT COUNT(*) FROM inputs").fetchone()
        words = {
            "duplicate": Outcome.DUPLICATE.value,
            "invalid": Outcome.INVALID_INPUT.value,
            "why": f"{SUPERSEDED_PREFIX} for the same contact and subscription, line ",
            "blocked": "superseded by a later decision for the same contact and subscription that "
            "cannot be used, line ",
            "tied": "superseded: lines ",
        }
        usable = "(inputs.outcome IS NULL OR inputs.outcome = :duplicate)"
        db = self._db
        db.execute("BEGIN")
        db.execute("DROP TABLE IF EXISTS temp.latest")
        db.execute("DROP TABLE IF EXISTS temp.tied")
        db.execute(
            "CREATE TEMP TABLE latest AS SELECT key, line, decided, outcome, reason, payload FROM "
            "(SELECT key, line, decided, outcome, reason, payload, ROW_NUMBER() OVER (PARTITION BY key "
            "ORDER BY decided DESC, line DESC) AS rank FROM inputs WHERE key IS NOT NULL AND decided IS "
            "NOT NULL) WHERE rank = 1"
        )
        db.execute(  # the keys whose latest time is shared by a line that says something else
            "CREATE TEMP TABLE tied AS SELECT latest.key, latest.line, MIN(other.line) AS other, "
            "latest.decided FROM latest JOIN inputs AS other ON other.key = latest.key "
            "AND other.line != latest.line AND other.decided = latest.decided "
            "WHERE latest.outcome = :invalid OR other.outcome = :invalid "
            "OR other.payload IS NOT latest.payload GROUP BY latest.key",
            words,
        )
        db.execute(
            "UPDATE inputs SET outcome = :duplicate, reason = :tied || tied.other || ' and ' || tied.line "
            "|| ' decide differently at the same time (' || strftime('%Y-%m-%dT%H:%M:%fZ', tied.decided, "
            "'unixepoch') || '): nothing is written for this contact and subscription until one of them "
            f"is corrected' FROM tied WHERE inputs.key = tied.key AND {usable}",
            words,
        )
        db.execute(
            "UPDATE inputs SET outcome = :duplicate, reason = CASE WHEN kept.outcome = :invalid THEN "
            ":blocked || kept.line || ' (' || kept.reason || '): nothing is written for this contact and "
            "subscription until that line is corrected' ELSE :why || kept.line || ' (decided at ' "
            "|| strftime('%Y-%m-%dT%H:%M:%fZ', kept.decided, 'unixepoch') || ')' END "
            "FROM latest AS kept WHERE inputs.key = kept.key AND inputs.line != kept.line "
            f"AND kept.key NOT IN (SELECT key FROM tied) AND {usable}",
            words,
        )
        db.execute(
            "UPDATE inputs SET outcome = NULL, reason = NULL WHERE outcome = :duplicate AND line IN "
            "(SELECT line FROM latest WHERE key NOT IN (SELECT key FROM tied))",
            words,
        )
        db.execute("DROP TABLE temp.latest")
        db.execute("DROP TABLE temp.tied")
        self.set_meta("ingested", "1")
        self.set_meta("total", count)
        db.execute("COMMIT")

    @property
    def read_through(self) -> int:
        """The last line read in so far (all of them once ``ingested``)."""
        return int(self.get_meta("read_through") or 0)

    def reopen_retried(self) -> None:
        """Inputs an earlier try left failed, not attempted or unanswered become pending again."""
        wanted = [o.value for o in RETRIED_OUTCOMES]
        self._db.execute(
            "UPDATE inputs SET outcome=NULL, reason=NULL, category=NULL, correlation_id=NULL, error_id=NULL, "
            f"operation_status=NULL WHERE outcome IN ({','.join('?' * len(wanted))})",
            wanted,
        )

    def restore(self, ledger_rows: Iterable[dict[str, str]], source: str) -> int:
        """Take the outcomes of a ledger written by an earlier try of this task (the durable checkpoint).

        Each row must describe the same input at the same line, else the input changed since and
        ``ValueError`` says where. Returns the number of rows taken.
        """
        db = self._db
        db.execute("BEGIN")
        taken = 0
        for row in ledger_rows:
            line = int(row["line"])
            found = db.execute("SELECT raw FROM inputs WHERE line=?", (line,)).fetchone()
            if found is None or found[0] != row["input"]:
                db.execute("ROLLBACK")
                raise InputChangedError(
                    f"the input changed since the checkpoint {source} was written (line {line} differs); "
                    "give this run a new ledger_path, or restore the original input"
                )
            outcome = row["outcome"] or None
            db.execute(
                "UPDATE inputs SET outcome=?, reason=?, category=?, correlation_id=?, error_id=?, "
                "operation_status=?, sent_at=COALESCE(?, sent_at), confirmed_at=? WHERE line=?",
                (
                    outcome,
                    row.get("reason") or None,
                    row.get("category") or None,
                    row.get("correlation_id") or None,
                    row.get("error_id") or None,
                    row.get("operation_status") or None,
                    parse_iso_utc(row.get("first_sent_at")),
                    parse_iso_utc(row.get("confirmed_at")),
                    line,
                ),
            )
            taken += 1
        db.execute("COMMIT")
        return taken

    def set_sent(self, sent: Iterable[tuple[int, float | None]]) -> None:
        """Each ``(line, at)``: the line was first sent in a write that may have been applied at
        ``at`` (None: never), as the operator's own record says (the consent sync's journal)."""
        self._db.executemany(
            "UPDATE inputs SET sent_at = ?, sent_sure = ? WHERE line = ?",
            [(at, None if at is None else 1, line) for line, at in sent],
        )

    def mark_sent_window(self, first_line: int, last_line: int, since: float) -> None:
        """Inputs of ``[first_line, last_line]`` without an answer may have been sent from ``since`` on."""
        self._db.execute(
            "UPDATE inputs SET sent_at = MIN(COALESCE(sent_at, ?), ?) "
            "WHERE line BETWEEN ? AND ? AND address IS NOT NULL",
            (since, since, first_line, last_line),
        )

    # -- sending -------------------------------------------------------------------------------

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM inputs WHERE outcome IS NULL").fetchone()[0])

    def pending_chunks(self, size: int) -> Iterator[list[tuple[int, str]]]:
        """Chunks of ``(line, address)`` still without an outcome, in input order."""
        last = 0
        while chunk := self.next_pending(last, size):
            last = chunk[-1][0]
            yield chunk

    def next_pending(self, after: int, size: int, through: int | None = None) -> list[tuple[int, str]]:
        """Up to ``size`` ``(line, address)`` without an outcome after line ``after`` (to ``through``)."""
        rows = self._db.execute(
            "SELECT line, address FROM inputs WHERE outcome IS NULL AND line > ? AND line <= ? "
            "ORDER BY line LIMIT ?",
            (after, through if through is not None else 2**62, size),
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def pending_rows(self, after: int, size: int) -> list[PendingRow]:
        """Up to ``size`` rows without an outcome after line ``after``, in line order."""
        rows = self._db.execute(
            "SELECT line, raw, address, sent_at, payload FROM inputs WHERE outcome IS NULL AND line > ? "
            "ORDER BY line LIMIT ?",
            (after, size),
        ).fetchall()
        return [PendingRow(int(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]

    # -- plans (the consent sync decides every row before it writes any) ----------------------------

    def clear_plans(self) -> None:
        self._db.execute("UPDATE inputs SET plan = NULL WHERE plan IS NOT NULL")

    def set_plans(self, plans: Iterable[tuple[int, str]]) -> None:
        """Note that each ``(line, why)`` is to be written; it keeps no outcome until it is."""
        self._db.execute("BEGIN")
        self._db.executemany(
            "UPDATE inputs SET plan = ? WHERE line = ?", [(why, line) for line, why in plans]
        )
        self._db.execute("COMMIT")

    def planned_count(self) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM inputs WHERE outcome IS NULL AND plan IS NOT NULL"
        ).fetchone()
        return int(count)

    def planned_rows(self, after: int, size: int) -> list[tuple[PendingRow, str]]:
        """Up to ``size`` planned rows still without an outcome after line ``after``, with the plan."""
        rows = self._db.execute(
            "SELECT line, raw, address, sent_at, payload, plan FROM inputs WHERE outcome IS NULL "
            "AND plan IS NOT NULL AND line > ? ORDER BY line LIMIT ?",
            (after, size),
        ).fetchall()
        return [(PendingRow(int(r[0]), str(r[1]), str(r[2]), r[3], r[4]), str(r[5])) for r in rows]

    def count_with(self, outcomes: Iterable[Outcome]) -> int:
        wanted = [o.value for o in outcomes]
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM inputs WHERE outcome IN ({','.join('?' * len(wanted))})", wanted
        ).fetchone()
        return int(count)

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
            f"UPDATE inputs SET sent_sure = COALESCE(sent_sure, sent_at IS NULL), "
            f"sent_at = COALESCE(sent_at, ?) WHERE line IN ({marks})",
            [at, *lines],
        )
        self._unanswered.update(lines)
        return None if earlier is None else float(earlier)

    def withdraw_attempt(self, lines: list[int], at: float) -> None:
        """The attempt ``start_attempt(lines, at)`` noted never reached HubSpot, or was refused
        whole: the lines it was the first send of are unsent again (their ledger rows say no first
        send, and nothing takes them for an earlier try's send). ``StaleTryError`` (nothing
        written) if a newer try owns the store."""
        marks = ",".join("?" * len(lines))
        self._begin_owned()  # a stale try must not unsend what a newer try sent since
        self._db.execute(
            f"UPDATE inputs SET sent_at = NULL, sent_sure = NULL WHERE line IN ({marks}) AND sent_at = ?",
            [*lines, at],
        )
        self._db.execute("COMMIT")
        self._unanswered.difference_update(lines)

    def record(self, rows: Iterable[Row]) -> None:
        """Record outcomes, unless a newer try took the store over (``StaleTryError``, nothing written).

        A ``not_attempted`` row that an earlier try sent, or may have sent, is ``failed`` instead,
        saying so (see ``mark_remaining``).

        The check and the writes are one transaction: a stale try's late answer can never overwrite
        what the current try recorded.
        """
        rows = list(rows)
        seen = time.time()  # HubSpot's answer is in: an outcome that says it holds the state was seen now
        self._begin_owned()
        self._db.executemany(
            "UPDATE inputs SET outcome=?, reason=?, category=?, correlation_id=?, error_id=?, "
            "operation_status=?, confirmed_at=? WHERE line=?",
            [
                (
                    r.outcome.value,
                    r.reason,
                    r.category,
                    r.correlation_id,
                    r.error_id,
                    r.operation_status,
                    seen if r.outcome in CONFIRMED_OUTCOMES else None,
                    r.line,
                )
                for r in rows
            ],
        )
        unsent = [r.line for r in rows if r.outcome is Outcome.NOT_ATTEMPTED]
        for start in range(0, len(unsent), 500):  # SQLite's limit of bound parameters
            part = unsent[start : start + 500]
            self._db.execute(
                f"UPDATE inputs SET outcome = ?, reason = {_earlier_send('reason')} "
                f"WHERE line IN ({','.join('?' * len(part))}) AND sent_at IS NOT NULL",
                [Outcome.FAILED.value, *part],
            )
        self._db.execute("COMMIT")
        self._unanswered.difference_update(r.line for r in rows)

    def _begin_owned(self) -> None:
        """Begin a write transaction, unless a newer try took the store over (``StaleTryError``)."""
        if self._db.in_transaction:  # one a signal (an Airflow timeout) cut short: nothing of it stays
            self._db.execute("ROLLBACK")
        self._db.execute("BEGIN IMMEDIATE")
        if self._mine is not None and self.owner_try > self._mine:
            self._db.execute("ROLLBACK")
            owner = self.owner_try
            raise StaleTryError(f"try {owner} took over this task's work store from try {self._mine}")

    def mark_remaining(self, outcome: Outcome, reason: str) -> int:
        """Give every input still without an outcome ``outcome`` with ``reason``; returns how many.

        ``not_attempted`` is only for inputs no try sent: those an earlier try sent, or may have
        sent (a send window), end ``failed``, saying so (HubSpot may have applied them).
        """
        begun = not self._db.in_transaction
        if begun:
            self._db.execute("BEGIN IMMEDIATE")
        ended = 0
        if outcome is Outcome.NOT_ATTEMPTED:
            ended = self._db.execute(
                f"UPDATE inputs SET outcome = ?, reason = {_earlier_send('?')} "
                "WHERE outcome IS NULL AND sent_at IS NOT NULL",
                (Outcome.FAILED.value, reason),
            ).rowcount
        ended += self._db.execute(
            "UPDATE inputs SET outcome=?, reason=? WHERE outcome IS NULL", (outcome.value, reason)
        ).rowcount
        if begun:
            self._db.execute("COMMIT")
        return int(ended)

    def end_unanswered(self, reason: str) -> int:
        """Give every input still without an outcome its final one, as a try that stops must.

        Those this connection sent without recording an answer are ``failed``: the request may have
        reached HubSpot. So are those an earlier try sent or may have sent (``mark_remaining``).
        The others were never sent: ``not_attempted``. Returns how many inputs this ended.
        ``StaleTryError`` (nothing written) if a newer try owns the store.
        """
        lost = (
            f"no answer recorded before this try stopped ({reason}); the request may have reached "
            "HubSpot, so it may have applied it: a rerun resends it safely"
        )
        self._begin_owned()
        ended = self._db.executemany(
            "UPDATE inputs SET outcome=?, reason=? WHERE line=? AND outcome IS NULL",
            [(Outcome.FAILED.value, lost, line) for line in sorted(self._unanswered)],
        ).rowcount
        ended += self.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {reason}")
        self._db.execute("COMMIT")
        self._unanswered.clear()
        return int(ended)

    # -- reading -------------------------------------------------------------------------------

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

    def ledger_rows(self, after: int = 0, *, batch: int = 5000) -> Iterator[tuple[object, ...]]:
        """The ledger's rows (without the header) of the lines after ``after``, in line order.

        They are fetched ``batch`` at a time: a reader that stops early pays for little more.
        """
        # A duplicate of the same change was confirmed when its first line was (the kept line of its
        # key comes first); one superseded by a later decision keeps no confirmation of its own.
        cursor = self._db.execute(
            "SELECT line, raw, address, COALESCE(outcome, 'pending'), reason, category, correlation_id, "
            "error_id, operation_status, iso_utc(sent_at), requested, iso_utc(CASE WHEN outcome = ? "
            "AND reason LIKE ? THEN (SELECT kept.confirmed_at FROM inputs AS kept WHERE kept.key = "
            "inputs.key AND kept.line < inputs.line AND kept.outcome != ? ORDER BY kept.line LIMIT 1) "
            "ELSE confirmed_at END) FROM inputs WHERE line > ? ORDER BY line",
            (Outcome.DUPLICATE.value, SAME_CHANGE_PREFIX + "%", Outcome.DUPLICATE.value, after),
        )
        try:
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()
