"""How a request reached HubSpot: the one owner of "an answer was lost, HubSpot may have applied it".

``DeliveryRecord`` is what the rest of the provider reads: on an answer (``response.delivery``) and
on an error (``error.delivery``). ``Delivery`` is the client's retry state of one call, which
fills the record while it sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from .calls import PreparedCall

# Failures after which HubSpot may have received, and applied, the request: only a refused or
# never-opened connection proves that it did not (or a failed OAuth token request before it).
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Marks the OAuth token request (a request extension): an attempt that failed on it never sent the call.
TOKEN_REQUEST = "hubspot_prefs.token_request"


class TokenEndpointFailure(Exception):
    """The OAuth token endpoint answered 429 or 5xx, so the call itself was not sent: the client's
    retry policy decides on ``response`` as on any answer (it never reaches the caller)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code} from the OAuth token endpoint")


def never_sent(error: BaseException) -> bool:
    """Whether an attempt that failed with ``error`` certainly did not reach HubSpot with the call."""
    if isinstance(error, (*NOT_SENT, TokenEndpointFailure)):
        return True
    if not isinstance(error, httpx.RequestError):
        return False
    try:
        failed = error.request  # the request the error happened on: the call's, or the token's
    except RuntimeError:  # not known
        return False
    return bool(failed.extensions.get(TOKEN_REQUEST))


@dataclass
class DeliveryRecord:
    """One request's delivery, as far as the sender knows it.

    ``uncertain_since`` (epoch seconds) is when the first attempt whose answer was lost or
    unreadable went out: HubSpot may have applied it, so a status HubSpot then reports as
    unchanged, dated from that moment on, was changed by this very request. A sender that knows
    of earlier attempts (an earlier try of the task) moves it back with ``mark_uncertain``.
    """

    correlation_id: str | None = None  # the answer's X-HubSpot-Correlation-Id
    uncertain_since: float | None = None
    unreadable_answer: bool = False  # a write answered 2xx in a shape that could not be read

    @property
    def may_have_applied(self) -> bool:
        return self.uncertain_since is not None or self.unreadable_answer

    def mark_uncertain(self, since: float) -> None:
        self.uncertain_since = since


@dataclass
class Delivery:
    """One call's retry state: attempts, 429 waits, and its ``DeliveryRecord``."""

    call: PreparedCall
    failures: int = 0  # failed attempts other than 429s
    throttles: int = 0  # 429 answers
    throttled_for: float = 0.0  # seconds waited on 429s
    record: DeliveryRecord = field(default_factory=DeliveryRecord)

    def note_attempt(
        self, sent_at: float, response: httpx.Response | None, error: BaseException | None
    ) -> None:
        """A write whose attempt ended without a readable answer may have been applied from ``sent_at``."""
        if not self.call.is_write or self.record.uncertain_since is not None:
            return
        lost = error is not None and not never_sent(error)
        if lost or (response is not None and response.status_code >= 500):
            self.record.uncertain_since = sent_at
