"""Client-side pacing under HubSpot's rate limit, shared by the sync and async clients.

A sliding window of *reserved* send times keeps this client under ``max_requests`` per
``interval`` seconds. Reservations are made under a lock and never block, so the same limiter
serves threads and coroutines; the caller sleeps for the delay it is given.

Several workers often share one app's budget. HubSpot tells each of them how much of it is left
(``X-HubSpot-RateLimit-Remaining``); what the window holds beyond this client's own requests was
spent by the others, so the limiter lowers its own share accordingly. Workers sharing a budget
thus slow down together instead of meeting at the 429.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from .policy import RateLimitInfo

DEFAULT_MAX_REQUESTS = 190
DEFAULT_INTERVAL = 10.0


class RateLimiter:
    """Keep requests under ``max_requests`` per ``interval`` seconds, and under what HubSpot says is left.

    :param max_requests: the budget this client may use per interval (HubSpot: 100, 190 or 250
        per 10 s for private apps, 110 for public apps); a cap that is never exceeded.
    :param interval: length of that rolling window, in seconds.
    :param headroom: requests per window left unused, for other callers of the same app.
    :param slack: seconds added to a window before a slot counts as free, because HubSpot times
        a request on arrival and this client on sending.
    """

    def __init__(
        self,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        interval: float = DEFAULT_INTERVAL,
        *,
        headroom: int = 0,
        slack: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_requests < 1 or interval <= 0:
            raise ValueError("max_requests must be >= 1 and interval > 0")
        self.max_requests = max_requests
        self.interval = interval
        self.headroom = headroom
        self.slack = slack
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()  # reserved send times, ascending
        self._allowed = max_requests  # our share of HubSpot's window, lowered when others use it
        self._window = interval  # HubSpot's window, once its headers name one
        self._blocked_until = 0.0
        self._lag = 0.0  # how late sends leave after their slot (a busy machine or event loop)

    @property
    def allowed(self) -> int:
        """Requests per HubSpot window this client currently allows itself."""
        return self._allowed

    def reserve(self) -> float:
        """Book the next send slot; return how many seconds to wait before sending."""
        with self._lock:
            now = self._clock()
            horizon = max(self.interval, self._window)
            while self._sent and self._sent[0] <= now - horizon:
                self._sent.popleft()
            slot = max(now, self._blocked_until, self._sent[-1] if self._sent else now)
            for limit, window in ((self.max_requests, self.interval), (self._allowed, self._window)):
                limit = max(1, limit - self.headroom)
                if len(self._sent) >= limit:
                    # Free once the request `limit` places back has left the window.
                    slot = max(slot, self._sent[-limit] + window + self.slack + self._lag)
            self._sent.append(slot)
            return slot - now

    def observe(self, info: RateLimitInfo | None) -> None:
        """Adjust this client's share from HubSpot's headers on a response."""
        if info is None or info.remaining is None:
            return
        with self._lock:
            server_max = info.max or self.max_requests
            if info.interval_ms:
                self._window = info.interval_ms / 1000
            now = self._clock()
            mine = sum(1 for t in self._sent if now - self._window < t <= now)
            others = max(0, (server_max - info.remaining) - mine)
            self._allowed = max(1, server_max - others)

    def note_lag(self, seconds: float) -> None:
        """A send left ``seconds`` after its slot: keep that much more distance (decaying maximum)."""
        with self._lock:
            self._lag = max(self._lag * 0.95, min(max(seconds, 0.0), 1.0))

    def block_for(self, seconds: float) -> None:
        """Hold every sender back (a 429 said so), not just the request that met it."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
