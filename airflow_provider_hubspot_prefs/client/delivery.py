"""One call's delivery: its attempts, and since when an answer that may hide a write was lost."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .calls import PreparedCall

# Failures after which HubSpot may have received, and applied, the request: only a refused or
# never-opened connection proves that it did not.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class Delivery:
    """One call's retry state: attempt number and when an answer that may hide a write was lost."""

    call: PreparedCall
    failures: int = 0  # failed attempts other than 429s
    throttles: int = 0  # 429 answers
    throttled_for: float = 0.0  # seconds waited on 429s
    uncertain_since: float | None = None

    def record(self, sent_at: float, response: httpx.Response | None, error: BaseException | None) -> None:
        if not self.call.is_write or self.uncertain_since is not None:
            return
        lost = error is not None and not isinstance(error, NOT_SENT)
        if lost or (response is not None and response.status_code >= 500):
            self.uncertain_since = sent_at
