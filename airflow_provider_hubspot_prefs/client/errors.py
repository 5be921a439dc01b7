"""One exception hierarchy for everything the client raises.

Every API error keeps HubSpot's ``category``, ``subCategory``, ``message`` and ``correlationId`` (what
HubSpot support asks for). None of them ever holds the access token, and their string forms redact
email addresses unless redaction is switched off on the client.
"""

from __future__ import annotations

from typing import Any

from .delivery import DeliveryRecord
from .redaction import redact_text


class HubSpotError(Exception):
    """Base class of every error raised by this provider's client."""

    # How the failed request reached HubSpot, when it was sent at all (set by the client).
    delivery: DeliveryRecord | None = None

    @property
    def may_have_applied(self) -> bool:
        """The request was a write whose answer was lost or unreadable: HubSpot may have applied it."""
        return self.delivery is not None and self.delivery.may_have_applied


class HubSpotInputError(HubSpotError, ValueError):
    """A value was rejected locally, before any request was sent."""

    def __init__(self, field: str, value: Any, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        shown = repr(redact_text(value)) if isinstance(value, str) else repr(value)
        super().__init__(f"{field}: {shown} {problem}")


class HubSpotUnsupportedEndpointError(HubSpotInputError):
    """The endpoint does not exist in the requested API version."""

    def __init__(self, endpoint: str, version: str) -> None:
        super().__init__("api_version", version, f"has no endpoint {endpoint!r}; use 2026-09 for it")


class HubSpotTransportError(HubSpotError):
    """No usable HTTP response: connection refused or dropped, timeout, TLS failure."""

    def __init__(self, message: str, *, method: str, endpoint: str) -> None:
        self.method = method
        self.endpoint = endpoint
        super().__init__(f"{method} {endpoint}: {message}")


class HubSpotTimeoutError(HubSpotTransportError):
    """The request did not finish within the client's timeout."""


class HubSpotUnreachableError(HubSpotTransportError):
    """No request of this client has been answered for ``unreachable_timeout`` seconds: stop trying."""


class HubSpotAPIError(HubSpotError):
    """HubSpot answered with an error status.

    ``endpoint`` is the path template (``/statuses/{subscriberIdString}``), never the concrete path,
    so that an address does not travel inside the exception.
    """

    def __init__(
        self,
        *,
        status_code: int,
        method: str,
        endpoint: str,
        category: str | None = None,
        sub_category: str | None = None,
        message: str = "",
        correlation_id: str | None = None,
        context: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        links: dict[str, str] | None = None,
        body: Any = None,
        redact: bool = True,
        retry_after: float | None = None,
        daily_remaining: int | None = None,
        note: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.note = note  # why the client gave up, beyond HubSpot's answer (e.g. too many 429s)
        self.retry_after = retry_after  # seconds HubSpot asked to wait (Retry-After), if it did
        self.daily_remaining = daily_remaining  # X-HubSpot-RateLimit-Daily-Remaining, if sent
        self.method = method
        self.endpoint = endpoint
        self.category = category
        self.sub_category = sub_category
        self.message = message
        self.correlation_id = correlation_id
        self.context = context or {}
        self.errors = errors or []
        self.links = links or {}
        self.body = body
        self.redact = redact
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = [f"HTTP {self.status_code}"]
        if self.category:
            parts.append(self.category + (f"/{self.sub_category}" if self.sub_category else ""))
        text = f"{' '.join(parts)} from {self.method} {self.endpoint}: {self.message or 'no message'}"
        if self.correlation_id:
            text += f" (correlationId={self.correlation_id})"
        if self.retry_after is not None:
            text += f"; HubSpot asked to retry after {self.retry_after:g} s"
        if self.note:
            text += f"; {self.note}"
        return redact_text(text) if self.redact else text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only __init__: rebuild from attributes so the error survives pickling to a parent.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[HubSpotAPIError], state: dict[str, Any]) -> HubSpotAPIError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._summary())
    return err


class HubSpotValidationError(HubSpotAPIError):
    """400: HubSpot rejected the request (VALIDATION_ERROR and friends)."""


class HubSpotAuthenticationError(HubSpotAPIError):
    """401: the token is missing, expired or revoked."""


class HubSpotPermissionError(HubSpotAPIError):
    """403: the token lacks a permission; ``missing_scopes`` names the scopes when HubSpot does."""

    @property
    def missing_scopes(self) -> list[str]:
        found: list[str] = []
        sources: list[dict[str, Any]] = [self.context, *(e.get("context") or {} for e in self.errors)]
        for ctx in sources:
            if not isinstance(ctx, dict):
                continue
            for key in ("missingScopes", "requiredGranularScopes", "requiredScopes"):
                for scope in ctx.get(key) or []:
                    if scope not in found:
                        found.append(scope)
        return found

    def _summary(self) -> str:
        text = super()._summary()
        scopes = self.missing_scopes
        return f"{text}; missing scopes: {', '.join(scopes)}" if scopes else text


class HubSpotNotFoundError(HubSpotAPIError):
    """404: the object (subscription, contact, path) does not exist."""


class HubSpotRateLimitError(HubSpotAPIError):
    """429: over a rate limit. ``policy_name`` is HubSpot's (e.g. TEN_SECONDLY_ROLLING, DAILY)."""

    @property
    def policy_name(self) -> str | None:
        if isinstance(self.body, dict):
            value = self.body.get("policyName")
            return str(value) if value else None
        return None

    @property
    def is_daily(self) -> bool:
        """The daily cap, by either of HubSpot's signals: ``policyName`` DAILY or no daily requests left."""
        return is_daily_limit(self.body, self.daily_remaining)


class HubSpotServerError(HubSpotAPIError):
    """5xx: HubSpot failed; retried by the client before this is raised."""


class HubSpotResponseError(HubSpotError):
    """A 2xx response whose body is not what the API contract promises (malformed JSON, wrong shape)."""

    def __init__(
        self, message: str, *, method: str, endpoint: str, status_code: int, truncated: bool = False
    ) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status_code = status_code
        self.truncated = truncated  # not JSON at all (cut off in transit), as opposed to a wrong shape
        super().__init__(f"HTTP {status_code} from {method} {endpoint}: {message}")


def is_daily_limit(body: Any, daily_remaining: int | None) -> bool:
    """Whether a 429 is the daily cap (retrying before the day rolls over is pointless)."""
    if isinstance(body, dict) and str(body.get("policyName", "")).upper() == "DAILY":
        return True
    return daily_remaining == 0


def error_class_for(status_code: int) -> type[HubSpotAPIError]:
    """The exception class for an HTTP error status."""
    if status_code == 400:
        return HubSpotValidationError
    if status_code == 401:
        return HubSpotAuthenticationError
    if status_code == 403:
        return HubSpotPermissionError
    if status_code == 404:
        return HubSpotNotFoundError
    if status_code == 429:
        return HubSpotRateLimitError
    if status_code >= 500:
        return HubSpotServerError
    return HubSpotAPIError
