"""What both clients share and decide without I/O: settings, retries, parsing, pacing, TLS."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
import msgspec

from .. import __version__
from .calls import PreparedCall, RequestBuilder, T
from .delivery import Delivery, TokenEndpointFailure
from .errors import (
    HubSpotError,
    HubSpotInputError,
    HubSpotResponseError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    HubSpotUnreachableError,
)
from .models import (
    OperationResponse,
    answer_decoder,
    answer_name,
)
from .policy import RateLimitInfo, RetryPolicy, parse_error
from .ratelimit import RateLimiter
from .versions import OAUTH_TOKEN_PATH, ApiVersion, parse_version

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.hubapi.com"


DEFAULT_TIMEOUT = 30.0


USER_AGENT = f"airflow-provider-hubspot-prefs/{__version__}"


def check_base_url(base_url: str) -> str:
    """Require HTTPS except on loopback, so a token never crosses a network in clear text."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HubSpotInputError("base_url", base_url, "must be an absolute http(s) URL")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise HubSpotInputError("base_url", base_url, "must use https unless it is a loopback address")
    return base_url.rstrip("/")


def token_url(base_url: str) -> str:
    return check_base_url(base_url) + OAUTH_TOKEN_PATH


# What a request of the execute loops may fail with, for ``finish_attempt`` to decide on: no
# answer, or one httpx cannot decode (``httpx.RequestError``: a TransportError, a DecodingError);
# the OAuth token endpoint's 429 or 5xx; a ``HubSpotError`` of the OAuth flow (a refresh refused,
# a token answer without a token). Each must still carry the delivery record.
ATTEMPT_FAILURES = (httpx.RequestError, TokenEndpointFailure, HubSpotError)


class ClientCore:
    """State and decisions common to both clients: settings, retry policy, parsing, rate-limit info."""

    def __init__(
        self,
        *,
        base_url: str,
        api_version: ApiVersion | str | None,
        retry_policy: RetryPolicy | None,
        max_retries: int | None,
        max_batch_size: int,
        redact_emails: bool,
        rate_limiter: RateLimiter | None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.limiter = rate_limiter
        self.api_version = parse_version(api_version)
        policy = retry_policy or RetryPolicy()
        if max_retries is not None:
            policy = dataclasses.replace(policy, max_retries=max_retries)
        self.policy = policy
        self.redact_emails = redact_emails
        self.calls = RequestBuilder(self.api_version, max_batch_size)
        self.last_rate_limit: RateLimitInfo | None = None
        # Since when every attempt ended without an answer (None while HubSpot answers).
        self._silent_since: float | None = None

    def retry_delay(
        self, attempts: Delivery, response: httpx.Response | None, error: BaseException | None
    ) -> float | None:
        """None when ``response`` is a success to parse; seconds to wait before retrying; or raise.

        A ``TokenEndpointFailure`` (the OAuth token endpoint's 429 or 5xx, the call not sent) is
        decided on the token endpoint's answer, by the same rule."""
        call = attempts.call
        method, endpoint = call.method, call.template
        if isinstance(error, TokenEndpointFailure):
            response, error = error.response, None
            method, endpoint = "POST", OAUTH_TOKEN_PATH
        if response is None and isinstance(error, httpx.TransportError):
            self._check_reachable(call, error)
        elif response is not None or isinstance(error, httpx.RequestError):
            self._silent_since = None  # HubSpot answered, if in a form httpx could not decode
        if response is not None and response.is_success:
            return None
        throttled = response is not None and response.status_code == 429
        wait, note = self.policy.retry_or_stop(
            failures=attempts.failures,
            throttles=attempts.throttles,
            throttled_for=attempts.throttled_for,
            response=response,
            error=error,
        )
        if wait is None:
            if isinstance(error, HubSpotError):
                raise error
            if error is not None:
                kind = (
                    HubSpotTimeoutError
                    if isinstance(error, httpx.TimeoutException)
                    else HubSpotTransportError
                )
                raise kind(f"{type(error).__name__}: {error}", method=method, endpoint=endpoint) from error
            assert response is not None
            redact = self.redact_emails
            raise parse_error(response, method=method, endpoint=endpoint, redact=redact, note=note)
        reason = f"HTTP {response.status_code}" if response is not None else type(error).__name__
        if throttled:
            attempts.throttles += 1
            attempts.throttled_for += wait
            if self.limiter is not None and endpoint == call.template:
                self.limiter.block_for(wait)  # every sender of this client waits, not only this one
            log.warning("HubSpot %s %s: rate limited, retry in %.2fs", method, endpoint, wait)
            return wait
        attempts.failures += 1
        log.warning(
            "HubSpot %s %s failed with %s; retry %d/%d in %.2fs",
            method,
            endpoint,
            reason,
            attempts.failures,
            self.policy.max_retries,
            wait,
        )
        return wait

    def _check_reachable(self, call: PreparedCall, error: httpx.TransportError) -> None:
        now = time.time()
        if self._silent_since is None:
            self._silent_since = now
        silent = now - self._silent_since
        if silent >= self.policy.unreachable_timeout:
            unreachable = HubSpotUnreachableError(
                f"no answer from HubSpot for {silent:.1f} s (unreachable_timeout "
                f"{self.policy.unreachable_timeout:g} s); last error {type(error).__name__}: {error}",
                method=call.method,
                endpoint=call.template,
            )
            raise unreachable from error

    def finish_attempt(
        self,
        attempts: Delivery,
        sent_at: float,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> tuple[Any, float | None]:
        """``(parsed model, None)`` when the call is done, ``(None, seconds)`` to retry; or raise.

        A ``HubSpotError`` as ``error`` came from the OAuth flow: this attempt's call was not sent
        (or was answered 401), yet an earlier attempt's lost answer still stands in the record."""
        from_auth = isinstance(error, HubSpotError)
        attempts.note_attempt(sent_at, response, None if from_auth else error)
        try:
            wait = self.retry_delay(attempts, response, error)
            if wait is not None:
                return None, wait
            assert response is not None
            try:
                model = self.parse(attempts.call, response)
            except HubSpotResponseError as exc:
                # A body cut off in transit is answered like a lost connection: sent again.
                attempts.note_attempt(sent_at, None, exc)
                wait = self.retry_delay(attempts, None, exc)
                assert wait is not None
                return None, wait
        except HubSpotError as exc:
            # A write answered 2xx in an unreadable shape was accepted, so probably applied too.
            # (Not the token endpoint's unreadable answer: the call itself was not sent then.)
            unreadable_write = (
                isinstance(exc, HubSpotResponseError) and attempts.call.is_write and not from_auth
            )
            attempts.record.unreadable_answer = unreadable_write
            exc.delivery = attempts.record
            raise
        if isinstance(model, OperationResponse):
            attempts.record.correlation_id = response.headers.get("X-HubSpot-Correlation-Id")
            model.delivery = attempts.record
        return model, None

    def before_send(self) -> tuple[float, Any]:
        """``(seconds to wait, ticket)`` so that this request stays within the rate limit."""
        return self.limiter.reserve_slot() if self.limiter is not None else (0.0, None)

    def sending(self, ticket: Any) -> None:
        if self.limiter is not None and ticket is not None:
            self.limiter.sending(ticket)

    def answered(self, ticket: Any, response: httpx.Response | None) -> None:
        """The request booked with ``ticket`` ended, with ``response`` or without an answer."""
        info = RateLimitInfo.from_headers(response.headers) if response is not None else None
        self.last_rate_limit = info or self.last_rate_limit
        if self.limiter is not None and ticket is not None:
            refused = response is not None and response.status_code == 429
            self.limiter.answered(ticket, info, refused=refused)

    @staticmethod
    def parse(call: PreparedCall[T], response: httpx.Response) -> T:
        model: Any = call.response_model  # a type, or a subscripted generic: hashable either way
        try:
            return answer_decoder(model).decode(response.content)
        except msgspec.DecodeError as exc:
            # A ValidationError is JSON of the wrong shape; any other DecodeError is not JSON at all
            # (cut off in transit, say), which a retry may mend.
            raise HubSpotResponseError(
                f"response does not match {answer_name(call.response_model)}: {exc}",
                method=call.method,
                endpoint=call.template,
                status_code=response.status_code,
                truncated=not isinstance(exc, msgspec.ValidationError),
            ) from None


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate-verifying TLS: certifi's CAs (httpx's default), or ``ca_bundle`` (PEM) instead.

    There is deliberately no way to turn verification off: the requests carry a bearer token.
    """
    try:
        return ssl.create_default_context(cafile=ca_bundle or certifi.where())
    except (OSError, ssl.SSLError) as exc:
        raise HubSpotInputError("ca_bundle", ca_bundle, f"cannot be loaded ({exc})") from None


def http_options(
    timeout: float | httpx.Timeout, max_connections: int, ca_bundle: str | None
) -> dict[str, Any]:
    return {
        "timeout": timeout
        if isinstance(timeout, httpx.Timeout)
        else httpx.Timeout(timeout, connect=min(10.0, timeout)),
        "limits": httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
        "verify": tls_context(ca_bundle),
        "follow_redirects": False,
    }
