"""The consent sync's journal: what it wrote to HubSpot, for which decision, and what HubSpot answered.

HubSpot dates a status with the time it was last set, by anyone. A status the sync itself wrote
last night is then dated after every decision made before that write, and a decision that reaches
the warehouse a day late would look older than HubSpot's status: the sync would keep its own write
as if it were the person's newer choice, and the late withdrawal would never be applied. The
journal is how a later run tells the two apart: when HubSpot still holds exactly what an entry
says the sync wrote (same status, same timestamp as HubSpot's answer gave it, same ``source``), the
time that counts is the decision's (``JournalEntry.decided``), not the write's. Anything else
HubSpot holds is someone else's change, dated as HubSpot dates it.

The journal is a folder (local, shared or object storage) of immutable JSON-lines files: each try
of a sync adds one file of *intents* before each group of writes (sent, answer not known yet) and
one of *results* when it ends; no file is ever rewritten, so tries and DAGs writing at the same
time never lose each other's entries. Once there are many files, a writer folds them into one (the
newest entries per key) and removes the files it folded. Entries name no address: a key is a hash
of business unit, address and subscription. Files are created 0600 like the ledgers.

HubSpot's ``source`` is free text whose values the API documents nowhere; it is kept as HubSpot's
answer to the sync's own write gave it, and a status whose ``source`` differs is not the sync's.
It never decides alone: another integration writing through the API looks the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .files import CLOCK_SKEW_TOLERANCE, write_atomically
from .private_files import create_private_file
from .store import iso_utc

# HubSpot's timestamp of a status read back equals the one its answer to the write gave; a second
# of slack covers a clock that rounds, never a person's change (they would have to make the same
# choice within that second).
SAME_WRITE = 1.0
# A write whose answer never came (killed try, lost answer, PENDING): the status HubSpot holds is
# the sync's if it is what was sent and dated from the send on, within this long.
UNANSWERED_WINDOW = 3600.0
# Entries kept per key when files are folded together: the newest few are all a match can need.
KEEP_PER_KEY = 4
# Files in the folder before a writing sync folds them into one.
FOLD_AFTER = 24


class JournalError(ValueError):
    """The journal cannot be read: the sync cannot tell its own writes from a person's change."""


def journal_key(business_unit: int, address: str, subscription_id: int) -> str:
    """The key of one contact's subscription in one business unit (no address in the journal)."""
    return hashlib.sha256(f"{business_unit}\n{address}\n{subscription_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class JournalEntry:
    """One write of the consent sync, its intent, or what became of it.

    An *intent* (``applied`` None) is written just before a batch leaves: the write was sent at
    ``at`` or later, its answer not known yet. An *answer* (``applied`` True) gives what HubSpot's
    answer showed it holding (``timestamp``, ``source`` and ``basis_held`` are HubSpot's) and
    whether this write changed the status (``changed``: False for HubSpot's NO_STATUS_CHANGE).
    ``applied`` False says the write was not applied: HubSpot refused it, or it was not sent after
    all. The next entry of the same task and key after an intent is that intent's outcome.
    """

    key: str
    status: str
    decided: float
    at: float
    applied: bool | None
    timestamp: float | None = None
    source: str | None = None
    basis_sent: str | None = None
    basis_held: str | None = None
    task: str = ""
    line: int = 0
    changed: bool | None = None

    def describe(self) -> str:
        return f"the sync's write of the decision at {iso_utc(self.decided)} (line {self.line})"


class KeyHistory:
    """The journal's entries of one key, and what they say about HubSpot's status of it."""

    def __init__(self, entries: Iterable[JournalEntry]) -> None:
        self.entries = sorted(entries, key=lambda e: e.at)  # oldest first
        # Each intent's outcome: the next entry of the same task, or None while there is none.
        self._outcome: dict[int, JournalEntry | None] = {}
        latest: dict[str, int] = {}
        for index, entry in enumerate(self.entries):
            before = latest.get(entry.task)
            if before is not None and self.entries[before].applied is None:
                self._outcome[before] = entry
            if entry.applied is None:
                self._outcome[index] = None
            latest[entry.task] = index

    def _intents(self, *, task: str | None = None, unanswered: bool = False) -> list[JournalEntry]:
        found = []
        for index, outcome in self._outcome.items():
            intent = self.entries[index]
            if task is not None and intent.task != task:
                continue
            if outcome is not None and (unanswered or outcome.applied is False):
                continue  # answered (when only unanswered ones count), or never applied
            found.append(intent)
        return found

    def sync_write(
        self, status: str, timestamp: float, source: str | None, api_sources: Collection[str] = ()
    ) -> JournalEntry | None:
        """The sync's write that HubSpot's ``status`` (dated ``timestamp``, from ``source``) is, if any.

        A write HubSpot answered as a change matches only the very status its answer reported (the
        timestamp within ``SAME_WRITE``, the same ``source``). A write whose answer never came
        matches what it sent, dated from its send on, within ``UNANSWERED_WINDOW``, unless HubSpot
        names a ``source`` its answers to the sync's writes never gave (``api_sources``).
        """
        for entry in reversed(self.entries):
            if entry.status != status or not entry.applied or not entry.changed or entry.timestamp is None:
                continue
            same_source = entry.source is None or source is None or entry.source == source
            if abs(entry.timestamp - timestamp) <= SAME_WRITE and same_source:
                return entry
        foreign = source is not None and bool(api_sources) and source not in api_sources
        for intent in reversed(self._intents(unanswered=True)):
            if (
                intent.status == status
                and not foreign
                and intent.at - CLOCK_SKEW_TOLERANCE <= timestamp <= intent.at + UNANSWERED_WINDOW
            ):
                return intent
        return None

    def basis_attempt(self, status: str, timestamp: float, basis_held: str | None) -> JournalEntry | None:
        """The sync's last answered write of a legal basis to this very status, if HubSpot still
        holds what it answered then (status, timestamp and the basis it kept)."""
        for entry in reversed(self.entries):
            if (
                entry.applied
                and entry.basis_sent is not None
                and entry.status == status
                and entry.timestamp is not None
                and abs(entry.timestamp - timestamp) <= SAME_WRITE
                and entry.basis_held == basis_held
            ):
                return entry
        return None

    def knows(self, task: str) -> bool:
        """Whether ``task`` left any entry for this key."""
        return any(e.task == task for e in self.entries)

    def sent_by(self, task: str) -> float | None:
        """When ``task`` first sent a write of this key that may have been applied (None: never)."""
        return min((intent.at for intent in self._intents(task=task)), default=None)

    def written_by(self, task: str) -> bool:
        """Whether ``task`` changed this key, or sent a write whose answer never came."""
        changed = any(e.task == task and e.applied and e.changed for e in self.entries)
        return changed or bool(self._intents(task=task, unanswered=True))

    def kept_when_folded(self, now: float) -> list[JournalEntry]:
        """What folding keeps: the last two answered changes and the last two legal-basis answers
        (what a match needs, however old), and every entry of the last two windows (the intents a
        match may still need, with their outcomes)."""
        changes = [e for e in self.entries if e.applied and e.changed][-2:]
        bases = [e for e in self.entries if e.applied and e.basis_sent is not None][-2:]
        recent = [e for e in self.entries if e.at >= now - 2 * UNANSWERED_WINDOW]
        keep = {id(e) for e in (*changes, *bases, *recent)}
        return [e for e in self.entries if id(e) in keep]


_FIELDS = {
    "changed": "ch",
    "key": "k",
    "status": "s",
    "decided": "d",
    "at": "at",
    "applied": "ok",
    "timestamp": "t",
    "source": "src",
    "basis_sent": "b",
    "basis_held": "hb",
    "task": "ti",
    "line": "line",
}
_NAMES = {short: name for name, short in _FIELDS.items()}


def _encode(entry: JournalEntry) -> str:
    # ``applied`` is kept even when None: it is what tells an intent from an answered write.
    fields = asdict(entry).items()
    return json.dumps(
        {_FIELDS[k]: v for k, v in fields if v is not None or k == "applied"}, ensure_ascii=False
    )


def _decode(text: str) -> JournalEntry:
    data = json.loads(text)
    return JournalEntry(**{_NAMES[k]: v for k, v in data.items() if k in _NAMES})


class SyncJournal:
    """The journal at ``location`` (a folder), indexed in a private SQLite file at ``cache``.

    :param location: local folder or object-storage URI holding the journal's files.
    :param cache: where the index of what was read goes (a file in the work folder; removed by ``close``).
    """

    def __init__(self, location: str, cache: Path) -> None:
        self.location = location.rstrip("/")
        self.cache = cache
        os.close(create_private_file(cache))  # 0600 before SQLite opens it, as the work stores
        self._db = sqlite3.connect(cache, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT, at REAL, task TEXT, entry TEXT)")
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_key ON entries(key, at)")
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_task ON entries(task)")
        self._read: list[Any] = []  # the files the index holds
        self.found = False  # whether the journal's folder existed when it was loaded
        # The ``source`` HubSpot's answers gave the sync's own changes: a status under another
        # source was not written by it.
        self.api_sources: set[str] = set()

    # -- reading ---------------------------------------------------------------------------------------

    def _files(self) -> list[Any]:
        from .storage import storage_path

        folder = storage_path(self.location)
        try:
            files = sorted((p for p in folder.iterdir() if p.name.endswith(".jsonl")), key=lambda p: p.name)
        except FileNotFoundError:
            self.found = False
            return []
        self.found = True
        return files

    def load(self) -> int:
        """Read every file of the journal into the index; the number of entries read.

        A file folded away by another writer while this one reads means reading again.
        """
        for _ in range(5):
            self._db.execute("DELETE FROM entries")
            self.api_sources.clear()
            files = self._files()
            try:
                count = sum(self._load_file(path) for path in files)
            except FileNotFoundError:
                continue
            self._read = files
            return count
        raise JournalError(f"the sync journal {self.location} kept changing while it was read; try again")

    def _load_file(self, path: Any) -> int:
        rows = []
        with path.open("r", encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    entry = _decode(text)
                except (ValueError, TypeError) as exc:
                    raise JournalError(
                        f"the sync journal's file {path} is damaged at line {number} ({exc}); the sync "
                        "cannot tell its own earlier writes from a person's change without it"
                    ) from None
                rows.append((entry.key, entry.at, entry.task, text.strip()))
                self._learn(entry)
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")
        return len(rows)

    def _learn(self, entry: JournalEntry) -> None:
        if entry.applied and entry.changed and entry.source:
            self.api_sources.add(entry.source)

    def histories(self, keys: Iterable[str]) -> dict[str, KeyHistory]:
        """The history of each of ``keys`` (empty for a key the journal never saw)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, list[JournalEntry]] = {key: [] for key in wanted}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            for (text,) in self._db.execute(
                f"SELECT entry FROM entries WHERE key IN ({','.join('?' * len(part))})", part
            ):
                entry = _decode(text)
                found[entry.key].append(entry)
        return {key: KeyHistory(entries) for key, entries in found.items()}

    def keys_written_by(self, task: str) -> int:
        """How many keys ``task`` changed or sent a write of whose answer never came."""
        keys = [k for (k,) in self._db.execute("SELECT DISTINCT key FROM entries WHERE task = ?", (task,))]
        return sum(history.written_by(task) for history in self.histories(keys).values())

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, entries: list[JournalEntry]) -> None:
        """Add ``entries`` as a new file of the journal (never rewriting another), and to the index."""
        if not entries:
            return
        lines = [_encode(e) for e in entries]
        self._write_file(lambda out: out.writelines(line + "\n" for line in lines))
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO entries VALUES (?, ?, ?, ?)",
            [(e.key, e.at, e.task, text) for e, text in zip(entries, lines, strict=True)],
        )
        self._db.execute("COMMIT")
        for entry in entries:
            self._learn(entry)

    def _write_file(self, write: Any) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        write_atomically(f"{self.location}/{stamp}-{uuid.uuid4().hex[:12]}.jsonl", write)

    def fold(self, now: float) -> bool:
        """Fold the files read into one once there are many: of each key, what a match can still
        need (``KeyHistory.kept_when_folded``). Only the files read are removed: a file another
        writer adds meanwhile stays."""
        if len(self._read) <= FOLD_AFTER:
            return False

        def write(out: IO[str]) -> None:
            cursor = self._db.execute("SELECT key, entry FROM entries ORDER BY key")
            key: str | None = None
            group: list[JournalEntry] = []
            for found, text in cursor:
                if found != key and group:
                    out.writelines(_encode(e) + "\n" for e in KeyHistory(group).kept_when_folded(now))
                    group = []
                key = found
                group.append(_decode(text))
            if group:
                out.writelines(_encode(e) + "\n" for e in KeyHistory(group).kept_when_folded(now))

        self._write_file(write)
        for path in self._read:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._read = []
        return True

    def close(self) -> None:
        self._db.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.cache.with_name(self.cache.name + suffix).unlink(missing_ok=True)
