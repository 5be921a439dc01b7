"""HubSpot's rate limits: a rolling ten-second window and a daily count per app."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .config import EmulatorConfig
from .problems import ApiProblem


@dataclass
class AppUsage:
    window: deque[float] = field(default_factory=deque)
    day: str = ""
    daily_count: int = 0


class RateLimits:
    """Requests counted per app against the configured limits (a part of ``PortalBackend``)."""

    lock: Any
    config: EmulatorConfig

    def _reset_limits(self) -> None:
        self.usage: dict[str, AppUsage] = {}

    def consume_rate_limit(self, app: str) -> dict[str, str]:
        """Count one request of ``app``; return HubSpot's rate-limit headers or raise 429."""
        cfg = self.config
        interval = cfg.rate_limit_interval_ms / 1000
        now = time.monotonic()
        today = datetime.now(timezone.utc).date().isoformat()
        with self.lock:
            usage = self.usage.setdefault(app, AppUsage())
            if usage.day != today:
                usage.day, usage.daily_count = today, 0
            while usage.window and usage.window[0] <= now - interval:
                usage.window.popleft()
            headers = {
                "X-HubSpot-RateLimit-Max": str(cfg.rate_limit_max),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.rate_limit_interval_ms),
                "X-HubSpot-RateLimit-Daily": str(cfg.daily_limit),
            }
            if usage.daily_count >= cfg.daily_limit:
                headers.update(
                    {
                        "X-HubSpot-RateLimit-Remaining": str(cfg.rate_limit_max - len(usage.window)),
                        "X-HubSpot-RateLimit-Daily-Remaining": "0",
                    }
                )
                raise self.rate_limited("DAILY", headers, None)
            if len(usage.window) >= cfg.rate_limit_max:
                wait = usage.window[0] + interval - now
                headers.update(
                    {
                        "X-HubSpot-RateLimit-Remaining": "0",
                        "X-HubSpot-RateLimit-Daily-Remaining": str(cfg.daily_limit - usage.daily_count),
                    }
                )
                raise self.rate_limited("TEN_SECONDLY_ROLLING", headers, max(1, math.ceil(wait)))
            usage.window.append(now)
            usage.daily_count += 1
            headers["X-HubSpot-RateLimit-Remaining"] = str(cfg.rate_limit_max - len(usage.window))
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(cfg.daily_limit - usage.daily_count)
            return headers

    @staticmethod
    def rate_limited(policy: str, headers: dict[str, str], retry_after: float | None) -> ApiProblem:
        if retry_after is not None:
            headers = {**headers, "Retry-After": f"{retry_after:g}"}
        limit = "daily" if policy == "DAILY" else policy.lower()
        return ApiProblem(
            429,
            "RATE_LIMITS",
            f"You have reached your {limit} limit.",
            headers=headers,
            extra={"errorType": "RATE_LIMIT", "policyName": policy},
        )
