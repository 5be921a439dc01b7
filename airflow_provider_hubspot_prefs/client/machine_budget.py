"""One HubSpot rate budget shared by every process of an app on one machine, kept in a SQLite file.

The processes of one machine (mapped tasks on a LocalExecutor, the task processes of one Celery
worker) spend one app's budget together. Without a shared counter each paces itself from HubSpot's
headers, which tell it of the others only one answer late. This budget books their send slots in
one rolling window in a private SQLite file, with the same rules as the Redis budget
(``shared_budget.RedisBudget``), which does the same across machines; ``tests/client/test_shared_budget.py``
holds both to one set of tests.

Safe when a process dies holding budget: a booking is a time, not a lease, and leaves the window by
itself. HubSpot's word wins: a 429's ``Retry-After`` holds back every process, and what HubSpot's
headers show spent beyond our bookings (callers on other machines) is taken off the limit for a
window. A file that cannot be used (locked too long, read-only disk) raises, and the caller
(``RateLimiter``) paces alone and says so.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .policy import MAX_WINDOWS_AHEAD, RateLimitInfo
from .shared_budget import counted_by_hubspot

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bookings (member TEXT PRIMARY KEY, slot REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS bookings_by_slot ON bookings (slot)",
    # 'blocked' (until a 429's Retry-After ends) and 'foreign' (requests of callers elsewhere)
    "CREATE TABLE IF NOT EXISTS holds (name TEXT PRIMARY KEY, amount REAL NOT NULL, until REAL NOT NULL)",
    # What HubSpot's answers said: 'max' (X-HubSpot-RateLimit-Max, the portal's own limit)
    "CREATE TABLE IF NOT EXISTS learned (name TEXT PRIMARY KEY, value REAL NOT NULL)",
)


class MachineBudget:
    """A rolling window of ``max_requests`` per ``interval`` seconds shared through a local file.

    :param path: the SQLite file; every process of the app on this machine must name the same one
        (the hook puts it in the work folder, named after the app). Created private (0600).
    :param max_requests: the app's budget per window (HubSpot: 100, 190, 250; 110 for public apps);
        once an answer names HubSpot's own limit (``X-HubSpot-RateLimit-Max``), the smaller of the
        two, for every process of the file.
    :param interval: the window, in seconds.
    :param slack: seconds added to a window before a slot counts as free.
    :param clock: seconds, the same for every process of the machine (wall time: the file may
        outlive a process, and ``time.monotonic`` is not comparable across reboots).
    """

    def __init__(
        self,
        path: Path,
        max_requests: int,
        interval: float,
        *,
        slack: float = 0.01,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_requests < 1 or interval <= 0:
            raise ValueError("max_requests must be >= 1 and interval > 0")
        self.path = path
        self.max_requests = max_requests
        self.interval = interval
        self.slack = slack
        self._clock = clock
        self._lock = (
            threading.Lock()
        )  # one connection, used by the sync client's and the async clients' threads
        # Every folder it creates is private, the work folder above included (mkdir's parents are not).
        for folder in reversed([f for f in (path.parent, *path.parent.parents) if not f.exists()]):
            folder.mkdir(mode=0o700, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        # Autocommit mode: each call below is one explicit IMMEDIATE transaction, so that two
        # processes never book the same free slot.
        self._db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a lost booking after a power cut costs nothing
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _hold(self, db: sqlite3.Connection, name: str, now: float) -> float:
        row = db.execute("SELECT amount FROM holds WHERE name = ? AND until > ?", (name, now)).fetchone()
        return float(row[0]) if row else 0.0

    def _limit(self, db: sqlite3.Connection) -> int:
        """The configured limit, or HubSpot's own when an answer named a smaller one."""
        row = db.execute("SELECT value FROM learned WHERE name = 'max'").fetchone()
        return self.max_requests if row is None else min(self.max_requests, int(row[0]))

    def reserve(self) -> tuple[float, str | None]:
        """Book the next shared slot: ``(seconds to wait, booking)``. A slot more than two windows
        off is not booked (booking None): ask again after the wait."""
        member = uuid.uuid4().hex
        horizon = MAX_WINDOWS_AHEAD * self.interval
        with self._transaction() as db:
            now = self._clock()
            # Bookings are kept for two windows: an answer's count may look back one window from its
            # send. Nothing is booked or held further ahead than two windows: what is was written
            # while the clock was ahead (then stepped back), and would hold everyone for that long.
            ahead = now + horizon + self.slack
            db.execute("DELETE FROM bookings WHERE slot < ? OR slot > ?", (now - horizon - self.slack, ahead))
            db.execute("DELETE FROM holds WHERE until > ?", (ahead,))
            limit = max(1, self._limit(db) - int(self._hold(db, "foreign", now)))
            slot = max(now, self._hold(db, "blocked", now))
            back = db.execute(
                "SELECT slot FROM bookings ORDER BY slot DESC LIMIT 1 OFFSET ?", (limit - 1,)
            ).fetchone()
            if back is not None:
                slot = max(slot, back[0] + self.interval + self.slack)
            if slot > now + horizon:  # a queue longer than two windows: wait its turn unbooked
                return slot - now - horizon, None
            db.execute("INSERT INTO bookings (member, slot) VALUES (?, ?)", (member, slot))
        return slot - now, member

    def answered(self, member: str) -> None:
        """The request booked as ``member`` was answered: from now on it counts from this moment."""
        with self._transaction() as db:
            now = self._clock()
            db.execute("UPDATE bookings SET slot = ? WHERE member = ? AND slot < ?", (now, member, now))

    def block_for(self, seconds: float) -> None:
        """Hold every process back for ``seconds``, at most two windows (never shortening a longer hold)."""
        with self._transaction() as db:
            now = self._clock()
            until = now + min(max(seconds, 0.001), MAX_WINDOWS_AHEAD * self.interval)
            if until > self._hold(db, "blocked", now):
                db.execute("INSERT OR REPLACE INTO holds VALUES ('blocked', ?, ?)", (until, until))

    def observe(self, info: RateLimitInfo | None, age: float = 0.0) -> None:
        """HubSpot's count on the answer to a request sent ``age`` seconds ago: what our bookings of
        the window before that request (and since) do not explain, beyond a little accounting
        jitter, was spent by callers elsewhere; it is taken off the limit for one window. HubSpot's
        own limit, when the answer names it, is kept for every process."""
        counted = counted_by_hubspot(info, self.max_requests, self.interval)
        if info is None or (counted is None and not info.max):
            return
        with self._transaction() as db:
            if info.max:
                db.execute("INSERT OR REPLACE INTO learned VALUES ('max', ?)", (info.max,))
            if counted is None:
                return
            spent, window, jitter = counted
            now = self._clock()
            (ours,) = db.execute(
                "SELECT COUNT(*) FROM bookings WHERE slot BETWEEN ? AND ?", (now - age - window, now)
            ).fetchone()
            foreign = spent - ours - jitter
            if foreign > 0:
                db.execute("INSERT OR REPLACE INTO holds VALUES ('foreign', ?, ?)", (foreign, now + window))
