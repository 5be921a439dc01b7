"""The emulated HubSpot portal: its parts put together, and the request log.

Written from HubSpot's documentation and OpenAPI specs (never from this package's client), so
that the emulator can serve as the test oracle. ``PortalBackend`` is the portal's state and rules
(``portal``), who may call (``access``), rate limits (``limits``), injected faults (``faults``) and
how writes run (``operations``); the HTTP side (``app``, ``routes``, ``control``) only translates
requests into its calls and its answers or ``ApiProblem`` into responses.
"""

from __future__ import annotations

import threading
from typing import Any

from .access import Access, AccessToken
from .config import EmulatorConfig
from .faults import Fault, Faults
from .limits import RateLimits
from .operations import Operations
from .portal import CHANNELS, LEGAL_BASES, STATUS_STATES, Definition, PortalState, StatusRecord, is_email
from .problems import ApiProblem, iso, now_iso, validation

__all__ = [
    "CHANNELS",
    "LEGAL_BASES",
    "STATUS_STATES",
    "AccessToken",
    "ApiProblem",
    "Definition",
    "Fault",
    "PortalBackend",
    "StatusRecord",
    "is_email",
    "iso",
    "now_iso",
    "validation",
]


class PortalBackend(PortalState, Access, RateLimits, Faults, Operations):
    """One emulated HubSpot portal: definitions, statuses, wide opt-outs, tokens, limits, faults."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            # A request still being served (a slow fault) belongs to the portal before the reset:
            # when it ends, it is not logged into the new one's request log.
            self.generation = getattr(self, "generation", 0) + 1
            self._reset_portal()
            self._reset_limits()
            self._reset_faults()
            self.request_log: list[dict[str, Any]] = []
            self._reset_access()
            self._reset_operations()

    def log_request(
        self,
        method: str,
        path: str,
        status: int,
        started: float,
        correlation_id: str | None = None,
        query: str = "",
        generation: int | None = None,
    ) -> None:
        with self.lock:
            if generation is not None and generation != self.generation:
                return
            self.request_log.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "time": started,
                    "correlation_id": correlation_id,
                }
            )
