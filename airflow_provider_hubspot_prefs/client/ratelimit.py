"""Client-side pacing under HubSpot's rate limit, shared by the sync and async clients.

A sliding window of *reserved* send times keeps this client under ``max_requests`` per
``interval`` seconds. Reservations are made under a lock and never block, so the same limiter
serves threads and coroutines; the caller sleeps for the delay it is given.

Several workers often share one app's budget. With a ``shared`` budget (``shared_budget.RedisBudget``)
every client books its slot in one window that all of them see. Without one, HubSpot tells each
client how much is left (``X-HubSpot-RateLimit-Remaining``); what the window holds beyond this
client's own requests was spent by the others, so the limiter lowers its own share accordingly.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .policy import RateLimitInfo

if TYPE_CHECKING:
    from .shared_budget import RedisBudget

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUESTS = 190
DEFAULT_INTERVAL = 10.0


class RateLimiter:
    """Keep requests under ``max_requests`` per ``interval`` seconds, and under what HubSpot says is left.

    A request counts in the window from its send slot until its answer arrives, and from then on
    at its arrival time: HubSpot may have timed it anywhere in between, so only the later time is
    safe. This costs one round trip per window and saves the 429s met at the window's edge.

    :param max_requests: the budget this client may use per interval (HubSpot: 100, 190 or 250
        per 10 s for private apps, 110 for public apps); a cap that is never exceeded.
    :param interval: length of that rolling window, in seconds.
    :param headroom: requests per window left unused, for other callers of the same app.
    :param slack: seconds added to a window before a slot counts as free.
    :param shared: a budget shared with the app's other clients (Redis); when it fails, this
        client goes on pacing alone and says so in the log.
    """

    def __init__(
        self,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        interval: float = DEFAULT_INTERVAL,
        *,
        headroom: int = 0,
        slack: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        shared: RedisBudget | None = None,
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
        self._allowed = max_requests  # our share of HubSpot's window, lowered when others use it
        self._window = interval  # HubSpot's window, once its headers name one
        self._blocked_until = 0.0
        self.shared = shared
        self._shared_failed_at = float("-inf")

    @property
    def allowed(self) -> int:
        """Requests per HubSpot window this client currently allows itself."""
        return self._allowed

    def reserve(self) -> float:
        """Book the next send slot; return how many seconds to wait before sending."""
        return self.reserve_slot()[0]

    def reserve_slot(self) -> tuple[float, Any]:
        """Book the next send slot: ``(seconds to wait, ticket)``; give the ticket back to ``answered``."""
        shared_wait, booking = 0.0, None
        if self.shared is not None:
            shared_wait, booking = self._shared_call(self.shared.reserve) or (0.0, None)
        with self._lock:
            now = self._clock()
            horizon = max(self.interval, self._window) + self.slack
            expired = bisect.bisect_right(self._times, now - horizon)
            del self._times[:expired]
            slot = max(now + shared_wait, self._blocked_until)
            limits = [(self.max_requests, self.interval)]
            if booking is None:  # pacing alone: keep to this client's share of what HubSpot says is left
                limits.append((self._allowed, self._window))
            for limit, window in limits:
                limit = max(1, limit - self.headroom)
                if len(self._times) >= limit:
                    # Free once the request `limit` places back has left the window.
                    slot = max(slot, self._times[-limit] + window + self.slack)
            bisect.insort(self._times, slot)
            return slot - now, slot if booking is None else (slot, booking)

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

    def answered(self, ticket: Any) -> None:
        """The request booked with ``ticket`` was answered: from now on it counts from this moment."""
        slot = ticket
        if isinstance(ticket, tuple):
            slot, booking = ticket
            if self.shared is not None:
                self._shared_call(self.shared.answered, booking)
        with self._lock:
            index = bisect.bisect_left(self._times, slot)
            if index < len(self._times) and self._times[index] == slot:
                del self._times[index]
                bisect.insort(self._times, max(slot, self._clock()))

    def observe(self, info: RateLimitInfo | None) -> None:
        """Adjust this client's share from HubSpot's headers on a response."""
        if info is None or info.remaining is None:
            return
        if self.shared is not None:
            self._shared_call(self.shared.observe, info)
        with self._lock:
            server_max = info.max or self.max_requests
            if info.interval_ms:
                self._window = info.interval_ms / 1000
            now = self._clock()
            mine = sum(1 for t in self._times if now - self._window < t <= now)
            others = max(0, (server_max - info.remaining) - mine)
            self._allowed = max(1, server_max - others)

    def block_for(self, seconds: float) -> None:
        """Hold every sender back (a 429 said so), not just the request that met it."""
        if self.shared is not None:
            self._shared_call(self.shared.block_for, seconds)
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
