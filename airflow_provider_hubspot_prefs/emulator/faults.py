"""Faults injected into requests: errors, dropped connections, slow, cut-off and partial answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("error", "drop_before", "drop_after", "slow", "malformed", "partial")


@dataclass
class Fault:
    """A fault for the next ``count`` requests whose path contains ``path_contains`` (and ends
    with ``path_endswith``).

    ``kind`` says what happens:

    - ``error``: answer ``status`` (429 with ``policy_name`` and, if set, the
      ``X-HubSpot-RateLimit-Daily-Remaining`` header ``daily_remaining``; 5xx; 4xx) without running
      the request;
    - ``drop_before`` / ``drop_after``: close the connection without an answer, before or after the
      request was applied (the client cannot know which);
    - ``slow``: apply the request, then answer only after ``delay`` seconds;
    - ``malformed``: apply the request, then answer 200 with a truncated JSON body;
    - ``partial``: apply a batch except the inputs containing ``reject_contains``, which come back
      in ``errors`` with ``category`` and ``message`` (HTTP 207 where the version answers 207).
    """

    status: int = 500
    count: int = 1
    path_contains: str = ""
    path_endswith: str = ""
    retry_after: float | None = None
    category: str | None = None
    policy_name: str | None = None
    kind: str = "error"
    delay: float = 0.0
    reject_contains: str = ""
    message: str | None = None
    daily_remaining: int | None = None
    every: int = 1  # hit every n-th matching request only: scattered faults instead of a burst
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")


class Faults:
    """The faults waiting for requests (a part of ``PortalBackend``)."""

    lock: Any

    def _reset_faults(self) -> None:
        self.faults: list[Fault] = []

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path_contains in path and path.endswith(fault.path_endswith):
                    fault.seen += 1
                    if fault.seen % max(fault.every, 1):
                        continue
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None
