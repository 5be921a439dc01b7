"""One HubSpot rate budget shared by every worker of an app, kept in Redis.

HubSpot's 10-second budget is one bucket per app and account: every worker, DAG and deployment
using the app spends from it. Each client books its send slot in one Redis sorted set per budget
(a rolling window of slot times, scored with Redis's own clock, so that the workers' clocks do not
matter); a slot is free once the request ``limit`` places back has left the window, exactly as the
local ``RateLimiter`` decides for one client.

Safe when a worker dies holding budget: a booking is a time, not a lease, and leaves the window
by itself. HubSpot's word wins over ours: a 429's ``Retry-After`` holds back every worker (a shared
"blocked until"), and when HubSpot's headers show more of the window spent than our bookings
explain (callers outside this Redis), that difference is kept for one window and taken off the
limit. Nothing here imports Airflow; the client is any ``redis.Redis``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from .policy import MAX_WINDOWS_AHEAD, RateLimitInfo

log = logging.getLogger(__name__)

# Book a slot: KEYS window, blocked, foreign, max; ARGV limit, window ms, slack ms, member,
# horizon ms (MAX_WINDOWS_AHEAD windows). Returns {milliseconds to wait, 1 if booked else 0}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, slack = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- Bookings are kept for two windows: an answer's count may look back one window from its send.
-- Nothing is booked or held further ahead than two windows: what is was written while Redis's
-- clock was ahead (then stepped back), and would hold every worker for that long.
local horizon = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - horizon - slack)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. (now + horizon + slack), '+inf')
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now + horizon + slack then
  redis.call('DEL', KEYS[2])
  blocked = 0
end
-- HubSpot's own limit, once an answer named a smaller one.
limit = math.min(limit, tonumber(redis.call('GET', KEYS[4]) or limit))
limit = math.max(1, limit - tonumber(redis.call('GET', KEYS[3]) or '0'))
local slot = math.max(now, blocked)
local back = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
if back[2] then slot = math.max(slot, tonumber(back[2]) + window + slack) end
-- A queue longer than two windows: book nothing, wait its turn and ask again.
if slot > now + horizon then return {slot - now - horizon, 0} end
redis.call('ZADD', KEYS[1], slot, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window * 3 + (slot - now))
return {slot - now, 1}
"""

# The request booked as ARGV[1] was answered: from now on it counts from this moment.
_ANSWERED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < now then redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1]) end
return 1
"""

# Hold every worker back for ARGV[1] ms, at most ARGV[2] ms (two windows; never shortening a longer hold).
_BLOCK = """
local t = redis.call('TIME')
local hold = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]))
local until_ = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + hold
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_, 'PX', hold + 1000)
end
return 1
"""

# HubSpot says ARGV[1] requests of the window were spent when it counted a request sent ARGV[4] ms ago;
# what our bookings of the window before that request (and since) do not explain, beyond ARGV[3] of
# accounting jitter, was spent by callers outside this Redis: keep it for one window (ARGV[2] ms).
# ARGV[5], when above 0, is HubSpot's own limit (X-HubSpot-RateLimit-Max): kept for every worker.
# KEYS window, foreign, max.
_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(ARGV[5]) > 0 then redis.call('SET', KEYS[3], ARGV[5], 'EX', 86400) end
if ARGV[1] == '' then return 0 end
local window = tonumber(ARGV[2])
local ours = redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[4]) - window, now)
local foreign = math.max(0, tonumber(ARGV[1]) - ours - tonumber(ARGV[3]))
if foreign > 0 then redis.call('SET', KEYS[2], foreign, 'PX', window) end
return foreign
"""


def counted_by_hubspot(
    info: RateLimitInfo | None, max_requests: int, interval: float
) -> tuple[int, float, int] | None:
    """What an answer's headers say of HubSpot's window, for a shared budget to compare with its
    bookings: ``(requests spent, window in seconds, requests of accounting jitter to allow)``;
    None without a count. The jitter covers requests in flight together that arrive reordered."""
    if info is None or info.remaining is None:
        return None
    spent = (info.max or max_requests) - info.remaining
    window = info.interval_ms / 1000 if info.interval_ms else interval
    return spent, window, max(3, max_requests // 50)


class RedisBudget:
    """A rolling window of ``max_requests`` per ``interval`` seconds shared through Redis.

    :param redis: a ``redis.Redis`` client (e.g. from Airflow's ``RedisHook``).
    :param key: names the budget: one per HubSpot app and account (see the hook).
    :param max_requests: the app's budget per window (HubSpot: 100, 190, 250; 110 for public apps);
        once an answer names HubSpot's own limit (``X-HubSpot-RateLimit-Max``), the smaller of the
        two, for every worker of the budget.
    :param interval: the window, in seconds.
    :param slack: seconds added to a window before a slot counts as free.
    """

    def __init__(
        self, redis: Any, key: str, max_requests: int, interval: float, *, slack: float = 0.01
    ) -> None:
        if max_requests < 1 or interval <= 0:
            raise ValueError("max_requests must be >= 1 and interval > 0")
        self.max_requests = max_requests
        self.interval = interval
        self.slack = slack
        prefix = f"hubspot_prefs:budget:{key}"
        self._keys = [f"{prefix}:window", f"{prefix}:blocked", f"{prefix}:foreign", f"{prefix}:max"]
        self._reserve = redis.register_script(_RESERVE)
        self._answered = redis.register_script(_ANSWERED)
        self._block = redis.register_script(_BLOCK)
        self._observe = redis.register_script(_OBSERVE)
        self._window_ms = int(interval * 1000)
        self._horizon_ms = MAX_WINDOWS_AHEAD * self._window_ms

    def reserve(self) -> tuple[float, str | None]:
        """Book the next shared slot: ``(seconds to wait, booking)``. A slot more than two windows
        off is not booked (booking None): ask again after the wait."""
        member = uuid.uuid4().hex
        wait_ms, booked = self._reserve(
            keys=self._keys,
            args=[self.max_requests, self._window_ms, int(self.slack * 1000), member, self._horizon_ms],
        )
        return max(0.0, int(wait_ms) / 1000), member if int(booked) else None

    def answered(self, member: str) -> None:
        self._answered(keys=self._keys[:1], args=[member])

    def block_for(self, seconds: float) -> None:
        self._block(keys=self._keys[1:2], args=[max(1, int(seconds * 1000)), self._horizon_ms])

    def observe(self, info: RateLimitInfo | None, age: float = 0.0) -> None:
        """HubSpot's count (and limit) on the answer to a request sent ``age`` seconds ago."""
        counted = counted_by_hubspot(info, self.max_requests, self.interval)
        if info is None or (counted is None and not info.max):
            return
        spent, window, jitter = counted or ("", 0.0, 0)
        args = [spent, round(window * 1000), jitter, int(age * 1000), info.max or 0]
        self._observe(keys=[self._keys[0], self._keys[2], self._keys[3]], args=args)
