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
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .files import CLOCK_SKEW_TOLERANCE, write_atomically

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
    """One write of the consent sync, or its intent.

    ``applied`` is True when HubSpot's answer showed it holding ``status`` (``timestamp``,
    ``source`` and ``basis_held`` are then HubSpot's), None while the answer is not known (sent
    at ``at`` or later), False when HubSpot did not apply it (refused, or not sent after all).
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

    def describe(self) -> str:
        return f"the sync's write of the decision at {_iso(self.decided)} (line {self.line})"


def matching_write(
    entries: Iterable[JournalEntry], status: str, timestamp: float, source: str | None
) -> JournalEntry | None:
    """The entry whose write HubSpot's ``status`` (dated ``timestamp``, from ``source``) is, if any.

    An answered write matches only the very status HubSpot's answer reported; an unanswered one
    matches what it sent, dated from its send on, within ``UNANSWERED_WINDOW``, unless the same task
    recorded HubSpot's answer to it since (a person who chose the same status minutes after the
    write is then not taken for the sync).
    """
    answered: set[str] = set()  # tasks whose later entries settle their earlier intents
    for entry in sorted(entries, key=lambda e: e.at, reverse=True):
        settled = entry.task in answered
        if entry.applied is not None:
            answered.add(entry.task)
        if entry.status != status or entry.applied is False or (entry.applied is None and settled):
            continue
        if entry.applied and entry.timestamp is not None:
            same_source = entry.source is None or source is None or entry.source == source
            if abs(entry.timestamp - timestamp) <= SAME_WRITE and same_source:
                return entry
        elif (
            entry.applied is None
            and entry.at - CLOCK_SKEW_TOLERANCE <= timestamp <= entry.at + UNANSWERED_WINDOW
        ):
            return entry
    return None


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


_FIELDS = {
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
        self._db = sqlite3.connect(cache, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT, at REAL, entry TEXT)")
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_key ON entries(key, at)")
        self._read: list[Any] = []  # the files the index holds

    # -- reading ---------------------------------------------------------------------------------------

    def _files(self) -> list[Any]:
        from .._io import storage_path

        folder = storage_path(self.location)
        try:
            return sorted((p for p in folder.iterdir() if p.name.endswith(".jsonl")), key=lambda p: p.name)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def load(self) -> int:
        """Read every file of the journal into the index; the number of entries read.

        A file folded away by another writer while this one reads means reading again.
        """
        for _ in range(5):
            self._db.execute("DELETE FROM entries")
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
                rows.append((entry.key, entry.at, text.strip()))
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO entries VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")
        return len(rows)

    def entries(self, keys: Iterable[str]) -> dict[str, list[JournalEntry]]:
        """The entries of ``keys`` (newest first), from what was loaded and added since."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, list[JournalEntry]] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            for (text,) in self._db.execute(
                f"SELECT entry FROM entries WHERE key IN ({','.join('?' * len(part))}) ORDER BY at DESC",
                part,
            ):
                entry = _decode(text)
                found.setdefault(entry.key, []).append(entry)
        return found

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, entries: list[JournalEntry]) -> None:
        """Add ``entries`` as a new file of the journal (never rewriting another), and to the index."""
        if not entries:
            return
        lines = [_encode(e) for e in entries]
        self._write_file(lambda out: out.writelines(line + "\n" for line in lines))
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO entries VALUES (?, ?, ?)",
            [(e.key, e.at, t) for e, t in zip(entries, lines, strict=True)],
        )
        self._db.execute("COMMIT")

    def _write_file(self, write: Any) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        write_atomically(f"{self.location}/{stamp}-{uuid.uuid4().hex[:12]}.jsonl", write)

    def fold(self) -> bool:
        """Fold the files read into one (the newest entries of each key) once there are many."""
        if len(self._read) <= FOLD_AFTER:
            return False

        def write(out: IO[str]) -> None:
            cursor = self._db.execute(
                "SELECT entry FROM (SELECT entry, ROW_NUMBER() OVER (PARTITION BY key ORDER BY at DESC) AS n "
                "FROM entries) WHERE n <= ?",
                (KEEP_PER_KEY,),
            )
            while rows := cursor.fetchmany(5000):
                out.writelines(text + "\n" for (text,) in rows)

        self._write_file(write)
        for path in self._read:  # only files whose entries the new file holds
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._read = []
        return True

    def close(self) -> None:
        self._db.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.cache.with_name(self.cache.name + suffix).unlink(missing_ok=True)
