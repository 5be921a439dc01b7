"""Writes as HubSpot runs them: at once, or queued PENDING and then COMPLETE or CANCELED."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .config import EmulatorConfig


@dataclass
class PendingWrite:
    """A write accepted in asynchronous mode, applied (or canceled) once ``due`` has passed."""

    due: float
    emails: list[str]
    apply: Callable[[], list[dict[str, Any]]]
    canceled: bool


class Operations:
    """Synchronous or asynchronous writes and the operation status reads report (a part of
    ``PortalBackend``)."""

    lock: Any
    config: EmulatorConfig
    contacts: set[str]

    def _reset_operations(self) -> None:
        self.pending: list[PendingWrite] = []
        self.inflight: dict[str, int] = {}
        self.last_operation: dict[str, str] = {}

    def run_write(
        self, emails: list[str], apply: Callable[[], list[dict[str, Any]]]
    ) -> tuple[str, list[dict[str, Any]], float]:
        """Apply a write now or queue it; return (operation status, results, completion time)."""
        with self.lock:
            self.settle()
            cfg = self.config
            cancel = cfg.cancel_next_writes > 0
            if cancel:
                cfg.cancel_next_writes -= 1
            self.contacts.update(emails)
            delay = cfg.processing_delay_ms / 1000
            if delay <= 0:
                status = "CANCELED" if cancel else "COMPLETE"
                results = [] if cancel else apply()
                for email in emails:
                    if not self.inflight.get(email):
                        self.last_operation[email] = status
                return status, results, time.time()
            self.pending.append(PendingWrite(time.monotonic() + delay, list(emails), apply, cancel))
            for email in emails:
                self.inflight[email] = self.inflight.get(email, 0) + 1
                self.last_operation[email] = "PENDING"
            return "PENDING", [], time.time() + delay

    def settle(self) -> None:
        """Apply (or cancel) every queued write whose time has come, in the order received."""
        now = time.monotonic()
        with self.lock:
            while self.pending and self.pending[0].due <= now:
                op = self.pending.pop(0)
                if not op.canceled:
                    op.apply()
                for email in op.emails:
                    self.inflight[email] -= 1
                    if not self.inflight[email]:
                        self.last_operation[email] = "CANCELED" if op.canceled else "COMPLETE"

    def read_status(self, emails: Iterable[str]) -> str:
        """Operation status a read reports: the state of the latest writes to these contacts."""
        with self.lock:
            self.settle()
            states = {self.last_operation.get(e, "COMPLETE") for e in emails}
        if "CANCELED" in states:
            return "CANCELED"
        return "PROCESSING" if "PENDING" in states else "COMPLETE"
