"""Client-side pacing under HubSpot's rate limit, shared by the sync and async clients.

A sliding window of *reserved* send times keeps this client under ``max_requests`` per
``interval`` seconds. Reservations are made under a lock and never block, so the same limiter
serves threads and coroutines; the caller sleeps for the delay it is given.

Several workers often share one app's budget. With a ``shared`` budget (``shared_budget.RedisBudget``
across machines, ``machine_budget.MachineBudget`` on one) every client books its slot in one window
that all of them see. Without one, HubSpot tells each
client how much is left (``X-HubSpot-RateLimit-Remaining``), counted when the request arrived; what
HubSpot's window held beyond this client's own requests sent by then was spent by the others. The
client keeps to what the others left it at their busiest in the last window and a half (so their requests
leaving the window do not read as room they gave up), and grows into free room only as far as
HubSpot's latest count, less what the others sent in one round trip, says is really free.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .policy import MAX_WINDOWS_AHEAD, RateLimitInfo

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUESTS = 190
DEFAULT_INTERVAL = 10.0


def _discard(ascending: list[float], value: float) -> bool:
    """Remove one ``value`` from the sorted list ``ascending``; False if it is not there."""
    index = bisect.bisect_left(ascending, value)
    if index < len(ascending) and ascending[index] == value:
        del ascending[index]
        return True
    return False


class SharedBudget(Protocol):
    """A rolling window that several clients book their requests in: ``shared_budget.RedisBudget``
    (every machine) or ``machine_budget.MachineBudget`` (the processes of one machine)."""

    def reserve(self) -> tuple[float, str | None]: ...  # booking None: nothing booked, ask again
    def answered(self, member: str) -> None: ...
    def block_for(self, seconds: float) -> None: ...
    def observe(self, info: RateLimitInfo | None, age: float = 0.0) -> None: ...


@dataclass(eq=False)
class _Ticket:
    """One booked request: its send slot, and its booking in the shared budget (if any)."""

    slot: float
    booking: str | None = None
    booked: bool = True  # False: nothing booked; ask again after the wait
    sent: float = -1.0  # when it really went (a busy process sends after its slot); the slot until then

    def __post_init__(self) -> None:
        if self.sent < 0:
            self.sent = self.slot


@dataclass(frozen=True)
class _Count:
    """HubSpot's count as a response showed it: when we saw it, the others' part, what was left."""

    seen_at: float
    sent_at: float
    others: int
    remaining: int


class RateLimiter:
    """Keep requests under ``max_requests`` per ``interval`` seconds, and under what HubSpot says is left.

    A request counts in the window from its send slot until its answer arrives, and from then on
    at its arrival time: HubSpot may have timed it anywhere in between, so only the later time is
    safe. This costs one round trip per window and saves the 429s met at the window's edge.

    :param max_requests: the budget this client may use per interval (HubSpot: 100, 190 or 250
        per 10 s for private apps, 110 for public apps); a cap that is never exceeded, lowered to
        HubSpot's own limit (``X-HubSpot-RateLimit-Max``) as soon as an answer names a smaller one.
    :param interval: length of that rolling window, in seconds.
    :param headroom: requests per window left unused, for other callers of the same app.
    :param slack: seconds added to a window before a slot counts as free.
    :param shared: a budget shared with the app's other clients (Redis, or a file on this machine);
        when it fails, this client goes on pacing alone and says so in the log.
    """

    # How long HubSpot's latest count may limit growth into free room (later ones replace it).
    FRESH = 2.0
    # How long, in windows, the others' busiest count is remembered: longer than the window in
    # which they replace their requests as these leave it (a shorter memory reads their requests
    # leaving as room given up, and meets 429s), at the cost of taking over the room of a client
    # that stopped only this much later.
    REMEMBER = 1.5
    # Pacing alone, a slot further off than this is not booked: the caller asks again then, since
    # room may free sooner (another client stops) and a booked slot would sleep through it.
    RECHECK = 0.5
    NOISE = 2

    def __init__(
        self,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        interval: float = DEFAULT_INTERVAL,
        *,
        headroom: int = 0,
        slack: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedBudget | None = None,
    ) -> None:
        if max_requests < 1 or interval <= 0:
            raise ValueError("max_requests must be >= 1 and interval > 0")
        self.max_requests = max_requests
        self.interval = interval
        self.headroom = headroom
        self.slack = slack
        self._clock = clock
        self._lock = threading.Lock()
        self._times: list[float] = []  # when each request in the window counts from, ascending
        self._sent: list[float] = []  # each request's send slot, ascending: HubSpot's view of ours
        self._counts: deque[_Count] = deque()  # HubSpot's counts seen in the remembered time, by time seen
        # The same counts' ``(seen_at, others)`` with no later count as busy: the first is the busiest.
        self._busiest: deque[tuple[float, int]] = deque()
        self._latest: _Count | None = None  # the count of the most recently sent answered request
        self._round_trip = 0.0
        self._allowed = max_requests  # our share of HubSpot's window, lowered when others use it
        self._window = interval  # HubSpot's window, once its headers name one
        self._hubspot_max: int | None = None  # HubSpot's limit, once its headers name one
        self._blocked_until = 0.0
        self.shared = shared
        self._shared_failed_at = float("-inf")

    @property
    def limit(self) -> int:
        """Requests per interval this client never exceeds: the configured limit, or HubSpot's own
        when an answer named a smaller one."""
        return min(self.max_requests, self._hubspot_max or self.max_requests)

    @property
    def allowed(self) -> int:
        """Requests per HubSpot window this client currently allows itself."""
        return self._allowed

    def reserve(self) -> float:
        """Book the next send slot; return how many seconds to wait before sending."""
        return self.reserve_slot()[0]

    def reserve_slot(self) -> tuple[float, _Ticket]:
        """Book the next send slot: ``(seconds to wait, ticket)``; give the ticket back to ``answered``.

        A ticket that is not ``booked`` books nothing: wait, then ask again."""
        reply = self._shared_call(self.shared.reserve) if self.shared is not None else None
        shared_wait, booking = reply or (0.0, None)
        if reply is not None and booking is None:  # the shared queue is longer than it books ahead
            return shared_wait, _Ticket(self._clock() + shared_wait, booked=False)
        with self._lock:
            now = self._clock()
            horizon = max(self.interval, self._window) + self.slack
            del self._times[: bisect.bisect_right(self._times, now - horizon)]
            del self._sent[: bisect.bisect_right(self._sent, now - 2 * horizon)]
            slot = max(now + shared_wait, self._blocked_until, self._free_at(self.limit, self.interval))
            if booking is None:  # pacing alone: keep to this client's share of what HubSpot says is left
                by_share = self._free_at(self._share(now), self._window)
                if by_share - max(now, slot) > self.RECHECK:
                    # Set by the others' use, which may end sooner (a client stops): book nothing
                    # yet, ask again in a while.
                    return self.RECHECK, _Ticket(by_share, booked=False)
                slot = max(slot, by_share)
            bisect.insort(self._times, slot)
            bisect.insort(self._sent, slot)
            return slot - now, _Ticket(slot, booking)

    def _free_at(self, limit: int, window: float) -> float:
        """When this client may hold one more request under ``limit`` per ``window``: once the
        request ``limit`` places back has left the window."""
        limit = max(1, limit - self.headroom)
        return self._times[-limit] + window + self.slack if len(self._times) >= limit else float("-inf")

    def _share(self, now: float) -> int:
        """How many requests this client may hold in HubSpot's window now, pacing alone."""
        return min(self._allowed, self._free_room(now))

    def _free_room(self, now: float) -> int:
        """How many requests this client may hold in the window, by HubSpot's latest count: those it
        holds, plus what was left then, less its own sent since and what the others send meanwhile."""
        latest = self._latest
        if latest is None or now - latest.seen_at > self.FRESH:
            return self.limit
        ours_since = len(self._sent) - bisect.bisect_right(self._sent, latest.sent_at)
        # The others' requests sent in one round trip before that count: as many are on their way now.
        since = latest.seen_at - self._round_trip
        fewest = latest.others
        for count in reversed(self._counts):  # newest first: only the last round trip's are read
            if count.seen_at < since:
                break
            fewest = min(fewest, count.others)
        on_their_way = max(0, latest.others - fewest)
        return len(self._times) + max(0, latest.remaining - ours_since - on_their_way)

    def _shared_call(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on the shared budget, or None when it cannot be reached (said once a minute)."""
        try:
            return call(*args)
        except Exception as exc:  # Redis down or unreachable: pace alone, and say so
            now = self._clock()
            if now - self._shared_failed_at > 60:
                name = type(exc).__name__
                log.warning("Shared rate budget unavailable (%s: %s); pacing this client alone", name, exc)
            self._shared_failed_at = now
            return None

    def sending(self, ticket: _Ticket) -> None:
        """The request booked with ``ticket`` goes now: HubSpot orders ours by when they really went."""
        with self._lock:
            now = self._clock()
            _discard(self._sent, ticket.sent)
            bisect.insort(self._sent, now)
            ticket.sent = now

    def answered(self, ticket: _Ticket, info: RateLimitInfo | None = None, *, refused: bool = False) -> None:
        """The request booked with ``ticket`` was answered (with HubSpot's ``info`` headers, if any):
        learn from HubSpot's count, and from now on count the request from this moment.

        ``refused``: HubSpot answered 429. Whether it counted such a request is not documented, so
        the request still holds its place in this client's window, but it is no longer taken for
        one of ours in HubSpot's counts (which would make the others' part look smaller)."""
        if refused:
            with self._lock:
                _discard(self._sent, ticket.sent)
        self.observe(info, sent_at=ticket.sent)
        if self.shared is not None and ticket.booking is not None:
            self._shared_call(self.shared.answered, ticket.booking)
        with self._lock:
            now = self._clock()
            self._round_trip = max(0.0, now - ticket.sent)
            if _discard(self._times, ticket.slot):
                bisect.insort(self._times, max(ticket.slot, now))

    def observe(self, info: RateLimitInfo | None, sent_at: float | None = None) -> None:
        """Learn from HubSpot's headers on the answer to a request sent at ``sent_at`` (default: now)."""
        if info is None:
            return
        now = self._clock()
        sent_at = now if sent_at is None else sent_at
        if self.shared is not None:
            self._shared_call(self.shared.observe, info, max(0.0, now - sent_at))
        if info.max:
            self._hubspot_max = info.max
        if info.remaining is None:
            return
        with self._lock:
            server_max = self.limit
            if info.interval_ms:
                self._window = info.interval_ms / 1000
            # Ours that HubSpot counted with this request: those sent in the window before it.
            # (One sent a round trip before the window's start may have reached HubSpot within it.)
            ours = bisect.bisect_right(self._sent, sent_at) - bisect.bisect_right(
                self._sent, sent_at - self._window - self._round_trip
            )
            others = max(0, server_max - info.remaining - ours)
            count = _Count(now, sent_at, others, info.remaining)
            self._counts.append(count)
            while self._busiest and self._busiest[-1][1] <= others:
                self._busiest.pop()
            self._busiest.append((now, others))
            forget_before = now - self.REMEMBER * self._window
            while self._counts[0].seen_at < forget_before:
                self._counts.popleft()
            while self._busiest[0][0] < forget_before:
                self._busiest.popleft()
            if self._latest is None or sent_at >= self._latest.sent_at:
                self._latest = count
            # The others hold what they held at their busiest of late: requests of theirs leaving
            # the window are replaced, not given up. A count can be off by a request or two when
            # requests in flight together arrive reordered: so few "others" are nobody.
            busiest = self._busiest[0][1]
            self._allowed = server_max if busiest <= self.NOISE else max(1, server_max - busiest)

    def block_for(self, seconds: float) -> None:
        """Hold every sender back (a 429 said so), not just the request that met it; for two
        windows at most, as the shared budgets do: HubSpot's window empties within one."""
        if self.shared is not None:
            self._shared_call(self.shared.block_for, seconds)
        with self._lock:
            hold = min(seconds, MAX_WINDOWS_AHEAD * max(self.interval, self._window))
            self._blocked_until = max(self._blocked_until, self._clock() + hold)
