"""Retry, backoff, rate-limit and error-parsing rules shared by the sync and async clients.

Only the I/O differs between the two clients; every decision is made here, in one place.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import HubSpotAPIError, HubSpotRateLimitError, error_class_for, is_daily_limit

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# A Retry-After beyond this on a 5xx is not waited out inside one request: the request fails with
# HubSpot's figure instead (a 429's Retry-After is waited out within ``rate_limit_patience``).
MAX_HONOURED_RETRY_AFTER = 60.0
# A 429's hold on every sender, and a booking in a shared budget, lie at most this many rate-limit
# windows ahead: HubSpot's window empties within one. What lies further off in a shared budget was
# written by a clock that ran ahead (then stepped back), and is dropped; a request that cannot be
# booked within them is booked nothing and asks again later.
MAX_WINDOWS_AHEAD = 2


@dataclass(frozen=True)
class RateLimitInfo:
    """HubSpot's ``X-HubSpot-RateLimit-*`` headers of the latest response (None when absent)."""

    max: int | None = None
    remaining: int | None = None
    interval_ms: int | None = None
    daily: int | None = None
    daily_remaining: int | None = None

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimitInfo | None:
        def num(name: str, least: int = 0) -> int | None:
            """The header as a whole number of at least ``least``; None when absent or unreadable."""
            raw = headers.get(f"X-HubSpot-RateLimit-{name}")
            try:
                value = int(raw) if raw is not None else None
            except ValueError:
                return None
            return value if value is not None and value >= least else None

        # No portal allows fewer than one request per window, nor has a window shorter than 1 ms:
        # such a header says nothing (a Max of -1 would pace every client to one request a window).
        info = cls(
            num("Max", least=1),
            num("Remaining"),
            num("Interval-Milliseconds", least=1),
            num("Daily"),
            num("Daily-Remaining"),
        )
        return None if info == cls() else info


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait: the one rule of the sync and the async client.

    The wait is HubSpot's ``Retry-After`` when it names one (more than 0 s); otherwise (none, 0, a
    date already past: HubSpot did not say) capped exponential backoff with jitter. A 429 waits at
    least ``throttle_step`` times the number of 429s the request has met, whatever ``Retry-After``
    says, and is retried at most ``max_throttled_retries`` times.

    :param max_retries: retries after the first attempt (0 disables retrying).
    :param initial_delay: seconds before the first retry when no ``Retry-After`` is given.
    :param max_delay: cap of the exponential delay, and of the 429 floor.
    :param jitter: fraction (0..1) by which a computed delay is randomly shortened.
    :param rate_limit_patience: seconds a request may spend waiting out ten-secondly 429 answers
        before it fails; these retries do not count against ``max_retries``, so a burst of 429s
        delays a batch instead of failing it. A wait that would go past it fails the request at
        once, with HubSpot's figure.
    :param throttle_step: the floor of the n-th 429's wait grows by this (0.1, 0.2, 0.3 s, ...), so
        that a storm of short ``Retry-After`` answers slows down instead of hammering HubSpot.
    :param max_throttled_retries: 429 answers after which a request fails, however short the
        waits HubSpot asks for.
    :param unreachable_timeout: seconds without any answer from HubSpot (every attempt since ended
        in a transport error) after which the client stops retrying and raises
        ``HubSpotUnreachableError``; a batch then stops instead of spending every chunk's retries.
    """

    max_retries: int = 5
    initial_delay: float = 0.5
    max_delay: float = 16.0
    jitter: float = 0.25
    rate_limit_patience: float = 300.0
    throttle_step: float = 0.1
    max_throttled_retries: int = 30
    unreachable_timeout: float = 30.0

    def retry_or_stop(
        self,
        *,
        failures: int,
        throttles: int,
        throttled_for: float,
        response: httpx.Response | None = None,
        error: BaseException | None = None,
    ) -> tuple[float | None, str | None]:
        """``(seconds to wait before another attempt, None)``, or ``(None, why)`` when none may
        follow: ``why`` names this policy's limit that ended the retries, None when HubSpot's
        answer alone says it.

        ``failures`` counts the earlier failed attempts other than 429s, ``throttles`` the earlier
        429s and ``throttled_for`` the seconds already waited on them.
        """
        if self.max_retries <= 0:
            return None, None
        hinted = None if response is None else retry_after_seconds(response.headers)
        if response is not None and response.status_code == 429:
            if is_daily_limit_response(response):
                return None, None
            if throttles >= self.max_throttled_retries:
                return None, f"gave up after {throttles} throttled retries (max_throttled_retries)"
            floor = min(self.throttle_step * (throttles + 1), self.max_delay)
            wait = max(hinted or self.backoff(throttles), floor)
            if throttled_for + wait <= self.rate_limit_patience:
                return wait, None
            return None, (
                f"gave up after waiting {throttled_for:.1f} s on {throttles} throttled retries: "
                f"another {wait:.2f} s would pass rate_limit_patience ({self.rate_limit_patience:g} s)"
            )
        if failures >= self.max_retries:
            return None, None
        if hinted is not None and hinted > MAX_HONOURED_RETRY_AFTER:
            return None, None
        if error is not None:
            # Connection refused/reset/dropped, timeouts, a body cut off or mangled in transit: the
            # writes of this API set states, so sending one again cannot apply anything twice.
            in_transit = (httpx.TransportError, httpx.DecodingError)
            retryable = isinstance(error, in_transit) or getattr(error, "truncated", False)
        else:
            retryable = response is not None and response.status_code in RETRYABLE_STATUS
        return ((hinted or self.backoff(failures)) if retryable else None), None

    def backoff(self, attempt: int) -> float:
        """The policy's own wait before retry ``attempt + 1``, for when HubSpot names none."""
        backoff = min(self.initial_delay * 2**attempt, self.max_delay)
        return backoff * (1 - self.jitter * random.random())


def _finite(raw: str | None) -> float | None:
    """``raw`` as a number; None when absent or unreadable, ``nan`` and ``inf`` included (``float()``
    reads them, and no wait can be made of them)."""
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``retry-after-ms``, else ``Retry-After`` as seconds or an HTTP date; None if absent or unreadable,
    0 for 0 or a date already past."""
    value = _finite(headers.get("retry-after-ms"))
    if value is not None:
        value /= 1000
    else:
        raw = headers.get("retry-after")
        if raw is None:
            return None
        value = _finite(raw)
        if value is None:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is None:
                return None
            value = email.utils.mktime_tz(parsed) - time.time()
    return max(value, 0.0)


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


def _daily_remaining(response: httpx.Response) -> int | None:
    raw = response.headers.get("X-HubSpot-RateLimit-Daily-Remaining")
    try:
        return None if raw is None else int(raw)
    except ValueError:
        return None


def is_daily_limit_response(response: httpx.Response) -> bool:
    """A 429 caused by the daily cap (the rule itself is ``errors.is_daily_limit``)."""
    return is_daily_limit(json_or_none(response), _daily_remaining(response))


def parse_error(
    response: httpx.Response,
    *,
    method: str,
    endpoint: str,
    redact: bool,
    error_class: type[HubSpotAPIError] | None = None,
    note: str | None = None,
) -> HubSpotAPIError:
    """Build the exception for an error response from HubSpot's error body (or what there is of it).

    ``error_class`` overrides the class chosen from the status code; ``note`` says why the client
    stopped retrying, when that is not HubSpot's answer alone.
    """
    body = json_or_none(response)
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    message = fields.get("message") or (response.text[:200] if body is None else "")
    cls = error_class or error_class_for(response.status_code)
    if cls is HubSpotRateLimitError and not fields.get("category"):
        fields = {**fields, "category": "RATE_LIMITS"}
    context = fields.get("context")
    errors = fields.get("errors")
    links = fields.get("links")
    return cls(
        status_code=response.status_code,
        method=method,
        endpoint=endpoint,
        category=fields.get("category") or fields.get("errorType"),
        sub_category=fields.get("subCategory") if isinstance(fields.get("subCategory"), str) else None,
        message=str(message),
        correlation_id=fields.get("correlationId") or response.headers.get("X-HubSpot-Correlation-Id"),
        context=context if isinstance(context, dict) else None,
        errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else None,
        links=links if isinstance(links, dict) else None,
        body=body,
        redact=redact,
        retry_after=retry_after_seconds(response.headers),
        daily_remaining=_daily_remaining(response),
        note=note,
    )
