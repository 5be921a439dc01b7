"""Sync and async clients of the Communication Preferences API.

``HubSpotPreferencesClient`` (httpx.Client) and ``AsyncHubSpotPreferencesClient``
(httpx.AsyncClient) expose the same methods. Requests are built and validated by one
``_Calls`` object and every retry decision comes from one ``RetryPolicy``; only the I/O differs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload
from urllib.parse import urlsplit

import certifi
import httpx
import msgspec

from .. import __version__
from .errors import (
    HubSpotError,
    HubSpotInputError,
    HubSpotResponseError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    HubSpotUnreachableError,
)
from .models import (
    BatchStatusesResponse,
    BatchUnsubscribeAllResponse,
    BatchWideStatusesResponse,
    BatchWriteResponse,
    Channel,
    DefinitionsResponse,
    LegalBasis,
    LinkGenerationRequest,
    LinkGenerationResponse,
    OperationResponse,
    PartialPublicStatusRequest,
    PublicStatusRequest,
    PublicSubscriptionStatus,
    PublicSubscriptionStatusesResponse,
    PublicUpdateSubscriptionStatusRequest,
    StatusesResponse,
    StatusState,
    WideStatusesResponse,
    answer_decoder,
    answer_name,
    coerce_enum,
)
from .policy import RateLimitInfo, RetryPolicy, parse_error
from .ratelimit import DEFAULT_INTERVAL, DEFAULT_MAX_REQUESTS, RateLimiter
from .validation import (
    DEFAULT_MAX_BATCH_SIZE,
    check_business_unit_id,
    check_positive_int,
    check_subscriber_id,
    check_subscriber_ids,
)
from .versions import OAUTH_TOKEN_PATH, ApiVersion, Endpoint, parse_version, render_path, route

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


@dataclass(frozen=True)
class PreparedCall:
    """A validated request: what to send and how to read the answer."""

    endpoint: Endpoint
    method: str
    template: str
    path: str
    response_model: Any  # a HubSpotAnswer struct type, or OperationResponse[...] of one
    params: dict[str, Any] | None = None
    json: Any = None

    @property
    def is_write(self) -> bool:
        return self.endpoint in WRITES


WRITES = frozenset(
    {
        Endpoint.SET_STATUS,
        Endpoint.UNSUBSCRIBE_ALL,
        Endpoint.BATCH_WRITE,
        Endpoint.BATCH_UNSUBSCRIBE_ALL,
        Endpoint.SUBSCRIBE,
        Endpoint.UNSUBSCRIBE,
        Endpoint.RESUBSCRIBE,
    }
)
# Failures after which HubSpot may have received, and applied, the request: only a refused or
# never-opened connection proves that it did not.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class _Attempts:
    """One call's retry state: attempt number and when an answer that may hide a write was lost."""

    call: PreparedCall
    failures: int = 0  # failed attempts other than 429s
    throttles: int = 0  # 429 answers
    throttled_for: float = 0.0  # seconds waited on 429s
    uncertain_since: float | None = None

    def note(self, sent_at: float, response: httpx.Response | None, error: BaseException | None) -> None:
        if not self.call.is_write or self.uncertain_since is not None:
            return
        lost = error is not None and not isinstance(error, _NOT_SENT)
        if lost or (response is not None and response.status_code >= 500):
            self.uncertain_since = sent_at


class _Calls:
    """Builds and validates every request of the API; shared by both clients."""

    def __init__(self, version: ApiVersion, max_batch_size: int) -> None:
        self.version = version
        self.max_batch_size = max_batch_size

    def _prepare(
        self,
        endpoint: Endpoint,
        model: Any,
        *,
        path_params: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> PreparedCall:
        method, template = route(self.version, endpoint)
        path = render_path(template, **(path_params or {}))
        clean = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        return PreparedCall(endpoint, method, template, path, model, clean or None, json)

    @staticmethod
    def _channel_params(channel: Channel | str, business_unit_id: int | None) -> dict[str, Any]:
        return {
            "channel": coerce_enum(Channel, channel, "channel").value,
            "businessUnitId": check_business_unit_id(business_unit_id),
        }

    def definitions(self, business_unit_id: int | None, include_translations: bool | None) -> PreparedCall:
        return self._prepare(
            Endpoint.DEFINITIONS,
            DefinitionsResponse,
            params={
                "businessUnitId": check_business_unit_id(business_unit_id),
                "includeTranslations": include_translations,
            },
        )

    def generate_links(
        self,
        subscriber_id: str,
        subscription_id: int | None,
        language: str | None,
        channel: Channel | str,
        business_unit_id: int | None,
    ) -> PreparedCall:
        body = LinkGenerationRequest(
            subscriber_id_string=check_subscriber_id(subscriber_id),
            subscription_id=None
            if subscription_id is None
            else check_positive_int(subscription_id, "subscription_id"),
            language=language,
        )
        return self._prepare(
            Endpoint.GENERATE_LINKS,
            LinkGenerationResponse,
            params=self._channel_params(channel, business_unit_id),
            json=body.to_api(),
        )

    def get_status(
        self, subscriber_id: str, channel: Channel | str, business_unit_id: int | None
    ) -> PreparedCall:
        return self._prepare(
            Endpoint.GET_STATUS,
            StatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            params=self._channel_params(channel, business_unit_id),
        )

    def set_status(self, subscriber_id: str, request: PartialPublicStatusRequest) -> PreparedCall:
        return self._prepare(
            Endpoint.SET_STATUS,
            StatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            json=request.to_api(),
        )

    def get_unsubscribe_all(
        self, subscriber_id: str, channel: Channel | str, business_unit_id: int | None, verbose: bool | None
    ) -> PreparedCall:
        return self._prepare(
            Endpoint.GET_UNSUBSCRIBE_ALL,
            WideStatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            params={**self._channel_params(channel, business_unit_id), "verbose": verbose},
        )

    def unsubscribe_all(
        self, subscriber_id: str, channel: Channel | str, business_unit_id: int | None, verbose: bool | None
    ) -> PreparedCall:
        return self._prepare(
            Endpoint.UNSUBSCRIBE_ALL,
            StatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            params={**self._channel_params(channel, business_unit_id), "verbose": verbose},
        )

    def batch_read(
        self, subscriber_ids: Sequence[str], channel: Channel | str, business_unit_id: int | None
    ) -> PreparedCall:
        inputs = check_subscriber_ids(subscriber_ids, self.max_batch_size)
        return self._prepare(
            Endpoint.BATCH_READ,
            BatchStatusesResponse,
            params=self._channel_params(channel, business_unit_id),
            json={"inputs": inputs},
        )

    def batch_write(self, requests: Sequence[PublicStatusRequest]) -> PreparedCall:
        if not requests:
            raise HubSpotInputError("inputs", [], "must not be empty")
        if len(requests) > self.max_batch_size:
            raise HubSpotInputError(
                "inputs", f"{len(requests)} inputs", f"exceeds the batch maximum of {self.max_batch_size}"
            )
        for i, req in enumerate(requests):
            check_subscriber_id(req.subscriber_id_string, f"inputs[{i}].subscriber_id_string")
        return self._prepare(
            Endpoint.BATCH_WRITE, BatchWriteResponse, json={"inputs": [r.to_api() for r in requests]}
        )

    def batch_unsubscribe_all(
        self,
        subscriber_ids: Sequence[str],
        channel: Channel | str,
        business_unit_id: int | None,
        verbose: bool | None,
    ) -> PreparedCall:
        inputs = check_subscriber_ids(subscriber_ids, self.max_batch_size)
        return self._prepare(
            Endpoint.BATCH_UNSUBSCRIBE_ALL,
            BatchUnsubscribeAllResponse,
            params={**self._channel_params(channel, business_unit_id), "verbose": verbose},
            json={"inputs": inputs},
        )

    def batch_read_unsubscribe_all(
        self, subscriber_ids: Sequence[str], channel: Channel | str, business_unit_id: int | None
    ) -> PreparedCall:
        inputs = check_subscriber_ids(subscriber_ids, self.max_batch_size)
        return self._prepare(
            Endpoint.BATCH_READ_UNSUBSCRIBE_ALL,
            BatchWideStatusesResponse,
            params=self._channel_params(channel, business_unit_id),
            json={"inputs": inputs},
        )

    def update_subscription(
        self,
        endpoint: Endpoint,
        email_address: str,
        subscription_id: int | str,
        legal_basis: LegalBasis | str | None,
        legal_basis_explanation: str | None,
    ) -> PreparedCall:
        if isinstance(subscription_id, str) and subscription_id.isdigit():
            subscription_id = int(subscription_id)
        body = PublicUpdateSubscriptionStatusRequest(
            email_address=check_subscriber_id(email_address, "email_address"),
            subscription_id=str(check_positive_int(subscription_id, "subscription_id")),
            legal_basis=None if legal_basis is None else coerce_enum(LegalBasis, legal_basis, "legal_basis"),
            legal_basis_explanation=legal_basis_explanation,
        )
        return self._prepare(endpoint, PublicSubscriptionStatus, json=body.to_api())

    def email_status(self, email_address: str) -> PreparedCall:
        return self._prepare(
            Endpoint.GET_EMAIL_STATUS,
            PublicSubscriptionStatusesResponse,
            path_params={"emailAddress": check_subscriber_id(email_address, "email_address")},
        )


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@overload
def status_request(
    subscriber_id: None,
    *,
    status_state: StatusState | str,
    subscription_id: int,
    legal_basis: LegalBasis | str | None = None,
    legal_basis_explanation: str | None = None,
    channel: Channel | str = Channel.EMAIL,
) -> PartialPublicStatusRequest: ...


@overload
def status_request(
    subscriber_id: str,
    *,
    status_state: StatusState | str,
    subscription_id: int,
    legal_basis: LegalBasis | str | None = None,
    legal_basis_explanation: str | None = None,
    channel: Channel | str = Channel.EMAIL,
) -> PublicStatusRequest: ...


def status_request(
    subscriber_id: str | None,
    *,
    status_state: StatusState | str,
    subscription_id: int,
    legal_basis: LegalBasis | str | None = None,
    legal_basis_explanation: str | None = None,
    channel: Channel | str = Channel.EMAIL,
) -> PartialPublicStatusRequest:
    """Validate the fields of a status change; with ``subscriber_id`` it is a batch-write input."""
    fields: dict[str, Any] = {
        "channel": coerce_enum(Channel, channel, "channel"),
        "status_state": coerce_enum(StatusState, status_state, "status_state"),
        "subscription_id": check_positive_int(subscription_id, "subscription_id"),
        "legal_basis": None if legal_basis is None else coerce_enum(LegalBasis, legal_basis, "legal_basis"),
        "legal_basis_explanation": legal_basis_explanation,
    }
    if subscriber_id is None:
        return PartialPublicStatusRequest(**fields)
    return PublicStatusRequest(subscriber_id_string=check_subscriber_id(subscriber_id), **fields)


class _ClientCore:
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
        self.calls = _Calls(self.api_version, max_batch_size)
        self.rate_limit: RateLimitInfo | None = None
        # Since when every attempt ended without an answer (None while HubSpot answers).
        self._silent_since: float | None = None

    def next_wait(
        self, attempts: _Attempts, response: httpx.Response | None, error: BaseException | None
    ) -> float | None:
        """None when ``response`` is a success to parse; seconds to wait before retrying; or raise."""
        call = attempts.call
        if response is None and isinstance(error, httpx.TransportError):
            self._check_reachable(call, error)
        if response is not None:
            self._silent_since = None
            if response.is_success:
                return None
        throttled = response is not None and response.status_code == 429
        retry = self.policy.should_retry(
            attempts.failures, response=response, error=error, throttled_for=attempts.throttled_for
        )
        if not retry:
            if isinstance(error, HubSpotError):
                raise error
            if error is not None:
                kind = (
                    HubSpotTimeoutError
                    if isinstance(error, httpx.TimeoutException)
                    else HubSpotTransportError
                )
                raise kind(
                    f"{type(error).__name__}: {error}", method=call.method, endpoint=call.template
                ) from error
            assert response is not None
            raise parse_error(response, method=call.method, endpoint=call.template, redact=self.redact_emails)
        wait = self.policy.delay(attempts.throttles if throttled else attempts.failures, response)
        reason = f"HTTP {response.status_code}" if response is not None else type(error).__name__
        if throttled:
            attempts.throttles += 1
            attempts.throttled_for += wait
            if self.limiter is not None:
                self.limiter.block_for(wait)  # every sender of this client waits, not only this one
            log.warning("HubSpot %s %s: rate limited, retry in %.2fs", call.method, call.template, wait)
            return wait
        attempts.failures += 1
        log.warning(
            "HubSpot %s %s failed with %s; retry %d/%d in %.2fs",
            call.method,
            call.template,
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

    def conclude(
        self,
        attempts: _Attempts,
        sent_at: float,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> tuple[Any, float | None]:
        """``(parsed model, None)`` when the call is done, ``(None, seconds)`` to retry; or raise."""
        attempts.note(sent_at, response, error)
        try:
            wait = self.next_wait(attempts, response, error)
            if wait is not None:
                return None, wait
            assert response is not None
            try:
                model = self.parse(attempts.call, response)
            except HubSpotResponseError as exc:
                # A body cut off in transit is answered like a lost connection: sent again.
                attempts.note(sent_at, None, exc)
                wait = self.next_wait(attempts, None, exc)
                assert wait is not None
                return None, wait
        except HubSpotError as exc:
            # A write answered 2xx in an unreadable shape was accepted, so probably applied too.
            unreadable_write = isinstance(exc, HubSpotResponseError) and attempts.call.is_write
            exc.may_have_applied = attempts.uncertain_since is not None or unreadable_write
            raise
        if isinstance(model, OperationResponse):
            model.correlation_id = response.headers.get("X-HubSpot-Correlation-Id")
            if attempts.uncertain_since is not None:
                model.mark_uncertain(attempts.uncertain_since)
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
        self.rate_limit = info or self.rate_limit
        if self.limiter is not None and ticket is not None:
            refused = response is not None and response.status_code == 429
            self.limiter.answered(ticket, info, refused=refused)

    @staticmethod
    def parse(call: PreparedCall, response: httpx.Response) -> Any:
        try:
            return answer_decoder(call.response_model).decode(response.content)
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


def _http_options(
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


class HubSpotPreferencesClient:
    """Synchronous client of the Communication Preferences API.

    :param auth: ``PrivateAppTokenAuth`` or ``OAuthRefreshAuth`` (see ``client.auth``).
    :param base_url: ``https://api.hubapi.com`` by default; an emulator or proxy URL otherwise
        (plain HTTP is accepted on loopback only).
    :param api_version: ``v4`` (default), ``2026-03`` or ``2026-09``.
    :param timeout: seconds per request (or an ``httpx.Timeout``).
    :param max_retries: retries of 429 / 5xx / connection errors; overrides ``retry_policy``'s.
    :param max_batch_size: largest batch sent in one call; bigger inputs are rejected before sending.
    :param redact_emails: redact addresses in exception messages and log lines (default True).
    :param rate_limit: requests per ``rate_limit_interval`` seconds this client allows itself
        (default 190 per 10 s, HubSpot's Professional private-app limit); None or 0 disables pacing.
        The share shrinks when HubSpot's headers show other clients using the same budget.
    :param rate_limiter: a ``RateLimiter`` to share between clients of one process instead.
    :param ca_bundle: PEM file of the certificate authorities to trust (a TLS-inspecting proxy);
        certificates are always verified, against certifi's bundle by default.
    :param transport: an httpx transport, for unit tests of the client itself.
    """

    def __init__(
        self,
        auth: httpx.Auth,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_version: ApiVersion | str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_connections: int = 20,
        redact_emails: bool = True,
        rate_limit: int | None = DEFAULT_MAX_REQUESTS,
        rate_limit_interval: float = DEFAULT_INTERVAL,
        rate_limiter: RateLimiter | None = None,
        ca_bundle: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = _ClientCore(
            base_url=base_url,
            api_version=api_version,
            retry_policy=retry_policy,
            max_retries=max_retries,
            max_batch_size=max_batch_size,
            redact_emails=redact_emails,
            rate_limiter=rate_limiter
            or (RateLimiter(rate_limit, rate_limit_interval) if rate_limit else None),
        )
        self._http = httpx.Client(
            base_url=self._core.base_url,
            auth=auth,
            transport=transport,
            **_http_options(timeout, max_connections, ca_bundle),
        )

    @property
    def api_version(self) -> ApiVersion:
        return self._core.api_version

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        """Rate-limit headers of the latest response that carried them."""
        return self._core.rate_limit

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubSpotPreferencesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        version = self.api_version.value
        return f"HubSpotPreferencesClient(base_url={self._core.base_url!r}, api_version={version!r})"

    def execute(self, call: PreparedCall) -> Any:
        """Send ``call`` with retries and return its parsed response model."""
        attempts = _Attempts(call)
        while True:
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            pause, slot = self._core.before_send()
            while slot is not None and not slot.booked:
                time.sleep(pause)
                pause, slot = self._core.before_send()
            if pause > 0:
                time.sleep(pause)
            self._core.sending(slot)
            sent_at = time.time()
            try:
                response = self._http.request(call.method, call.path, params=call.params, json=call.json)
            except httpx.TransportError as exc:
                error = exc
            finally:
                self._core.answered(slot, response)
            model, wait = self._core.conclude(attempts, sent_at, response, error)
            if wait is None:
                return model
            time.sleep(wait)

    def get_definitions(
        self, *, business_unit_id: int | None = None, include_translations: bool | None = None
    ) -> DefinitionsResponse:
        """GET /definitions: the portal's subscription types."""
        return self.execute(self._core.calls.definitions(business_unit_id, include_translations))

    def generate_links(
        self,
        subscriber_id: str,
        *,
        subscription_id: int | None = None,
        language: str | None = None,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> LinkGenerationResponse:
        """POST /links/generate: preference-centre and unsubscribe links for a contact."""
        return self.execute(
            self._core.calls.generate_links(
                subscriber_id, subscription_id, language, channel, business_unit_id
            )
        )

    def get_status(
        self,
        subscriber_id: str,
        *,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> StatusesResponse:
        """GET /statuses/{subscriberIdString}: the contact's status per subscription."""
        return self.execute(self._core.calls.get_status(subscriber_id, channel, business_unit_id))

    def set_status(
        self,
        subscriber_id: str,
        *,
        status_state: StatusState | str,
        subscription_id: int,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> StatusesResponse:
        """POST /statuses/{subscriberIdString}: set one subscription status, with its legal basis."""
        request = status_request(
            None,
            status_state=status_state,
            subscription_id=subscription_id,
            legal_basis=legal_basis,
            legal_basis_explanation=legal_basis_explanation,
            channel=channel,
        )
        return self.execute(self._core.calls.set_status(subscriber_id, request))

    def get_unsubscribe_all_status(
        self,
        subscriber_id: str,
        *,
        business_unit_id: int | None = None,
        verbose: bool | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> WideStatusesResponse:
        """GET /statuses/{subscriberIdString}/unsubscribe-all: portal/business-unit wide status."""
        return self.execute(
            self._core.calls.get_unsubscribe_all(subscriber_id, channel, business_unit_id, verbose)
        )

    def unsubscribe_all(
        self,
        subscriber_id: str,
        *,
        business_unit_id: int | None = None,
        verbose: bool | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> StatusesResponse:
        """POST /statuses/{subscriberIdString}/unsubscribe-all: opt one contact out of all email."""
        return self.execute(
            self._core.calls.unsubscribe_all(subscriber_id, channel, business_unit_id, verbose)
        )

    def batch_read_statuses(
        self,
        subscriber_ids: Sequence[str],
        *,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> BatchStatusesResponse:
        """POST /statuses/batch/read (207 with ``errors`` for unknown contacts)."""
        return self.execute(self._core.calls.batch_read(subscriber_ids, channel, business_unit_id))

    def batch_write_statuses(self, inputs: Sequence[PublicStatusRequest]) -> BatchWriteResponse:
        """POST /statuses/batch/write; build inputs with ``status_request(subscriber_id, ...)``."""
        return self.execute(self._core.calls.batch_write(inputs))

    def batch_unsubscribe_all(
        self,
        subscriber_ids: Sequence[str],
        *,
        business_unit_id: int | None = None,
        verbose: bool | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> BatchUnsubscribeAllResponse:
        """POST /statuses/batch/unsubscribe-all: opt many contacts out of all email."""
        return self.execute(
            self._core.calls.batch_unsubscribe_all(subscriber_ids, channel, business_unit_id, verbose)
        )

    def batch_read_unsubscribe_all(
        self,
        subscriber_ids: Sequence[str],
        *,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> BatchWideStatusesResponse:
        """POST /statuses/batch/unsubscribe-all/read (207 with ``errors`` for unknown contacts)."""
        return self.execute(
            self._core.calls.batch_read_unsubscribe_all(subscriber_ids, channel, business_unit_id)
        )

    def subscribe(
        self,
        email_address: str,
        *,
        subscription_id: int | str,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
    ) -> PublicSubscriptionStatus:
        """POST /subscribe (2026-09 only)."""
        return self.execute(
            self._core.calls.update_subscription(
                Endpoint.SUBSCRIBE, email_address, subscription_id, legal_basis, legal_basis_explanation
            )
        )

    def unsubscribe(
        self,
        email_address: str,
        *,
        subscription_id: int | str,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
    ) -> PublicSubscriptionStatus:
        """POST /unsubscribe (2026-09 only)."""
        return self.execute(
            self._core.calls.update_subscription(
                Endpoint.UNSUBSCRIBE, email_address, subscription_id, legal_basis, legal_basis_explanation
            )
        )

    def resubscribe(
        self,
        email_address: str,
        *,
        subscription_id: int | str,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
    ) -> PublicSubscriptionStatus:
        """POST /resubscribe (2026-09 only): undo an opt-out, which needs a legal basis."""
        return self.execute(
            self._core.calls.update_subscription(
                Endpoint.RESUBSCRIBE, email_address, subscription_id, legal_basis, legal_basis_explanation
            )
        )

    def get_email_status(self, email_address: str) -> PublicSubscriptionStatusesResponse:
        """GET /status/email/{emailAddress} (2026-09 only)."""
        return self.execute(self._core.calls.email_status(email_address))


class AsyncHubSpotPreferencesClient:
    """Asynchronous twin of ``HubSpotPreferencesClient`` (same parameters, same methods, awaited)."""

    def __init__(
        self,
        auth: httpx.Auth,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_version: ApiVersion | str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_connections: int = 20,
        redact_emails: bool = True,
        rate_limit: int | None = DEFAULT_MAX_REQUESTS,
        rate_limit_interval: float = DEFAULT_INTERVAL,
        rate_limiter: RateLimiter | None = None,
        ca_bundle: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = _ClientCore(
            base_url=base_url,
            api_version=api_version,
            retry_policy=retry_policy,
            max_retries=max_retries,
            max_batch_size=max_batch_size,
            redact_emails=redact_emails,
            rate_limiter=rate_limiter
            or (RateLimiter(rate_limit, rate_limit_interval) if rate_limit else None),
        )
        self._http = httpx.AsyncClient(
            base_url=self._core.base_url,
            auth=auth,
            transport=transport,
            **_http_options(timeout, max_connections, ca_bundle),
        )

    @property
    def api_version(self) -> ApiVersion:
        return self._core.api_version

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        return self._core.rate_limit

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncHubSpotPreferencesClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"AsyncHubSpotPreferencesClient(base_url={self._core.base_url!r}, "
            f"api_version={self.api_version.value!r})"
        )

    async def execute(self, call: PreparedCall) -> Any:
        attempts = _Attempts(call)
        while True:
            response: httpx.Response | None = None
            error: httpx.TransportError | None = None
            pause, slot = self._core.before_send()
            while slot is not None and not slot.booked:
                await asyncio.sleep(pause)
                pause, slot = self._core.before_send()
            if pause > 0:
                await asyncio.sleep(pause)
            self._core.sending(slot)
            sent_at = time.time()
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json
                )
            except httpx.TransportError as exc:
                error = exc
            finally:
                self._core.answered(slot, response)
            model, wait = self._core.conclude(attempts, sent_at, response, error)
            if wait is None:
                return model
            await asyncio.sleep(wait)

    async def get_definitions(
        self, *, business_unit_id: int | None = None, include_translations: bool | None = None
    ) -> DefinitionsResponse:
        return await self.execute(self._core.calls.definitions(business_unit_id, include_translations))

    async def generate_links(
        self,
        subscriber_id: str,
        *,
        subscription_id: int | None = None,
        language: str | None = None,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> LinkGenerationResponse:
        return await self.execute(
            self._core.calls.generate_links(
                subscriber_id, subscription_id, language, channel, business_unit_id
            )
        )

    async def get_status(
        self,
        subscriber_id: str,
        *,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> StatusesResponse:
        return await self.execute(self._core.calls.get_status(subscriber_id, channel, business_unit_id))

    async def set_status(
        self,
        subscriber_id: str,
        *,
        status_state: StatusState | str,
        subscription_id: int,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> StatusesResponse:
        request = status_request(
            None,
            status_state=status_state,
            subscription_id=subscription_id,
            legal_basis=legal_basis,
            legal_basis_explanation=legal_basis_explanation,
            channel=channel,
        )
        return await self.execute(self._core.calls.set_status(subscriber_id, request))

    async def get_unsubscribe_all_status(
        self,
        subscriber_id: str,
        *,
        business_unit_id: int | None = None,
        verbose: bool | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> WideStatusesResponse:
        return await self.execute(
            self._core.calls.get_unsubscribe_all(subscriber_id, channel, business_unit_id, verbose)
        )

    async def unsubscribe_all(
        self,
        subscriber_id: str,
        *,
        business_unit_id: int | None = None,
        verbose: bool | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> StatusesResponse:
        return await self.execute(
            self._core.calls.unsubscribe_all(subscriber_id, channel, business_unit_id, verbose)
        )

    async def batch_read_statuses(
        self,
        subscriber_ids: Sequence[str],
        *,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> BatchStatusesResponse:
        return await self.execute(self._core.calls.batch_read(subscriber_ids, channel, business_unit_id))

    async def batch_write_statuses(self, inputs: Sequence[PublicStatusRequest]) -> BatchWriteResponse:
        return await self.execute(self._core.calls.batch_write(inputs))

    async def batch_unsubscribe_all(
        self,
        subscriber_ids: Sequence[str],
        *,
        business_unit_id: int | None = None,
        verbose: bool | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> BatchUnsubscribeAllResponse:
        return await self.execute(
            self._core.calls.batch_unsubscribe_all(subscriber_ids, channel, business_unit_id, verbose)
        )

    async def batch_read_unsubscribe_all(
        self,
        subscriber_ids: Sequence[str],
        *,
        business_unit_id: int | None = None,
        channel: Channel | str = Channel.EMAIL,
    ) -> BatchWideStatusesResponse:
        return await self.execute(
            self._core.calls.batch_read_unsubscribe_all(subscriber_ids, channel, business_unit_id)
        )

    async def subscribe(
        self,
        email_address: str,
        *,
        subscription_id: int | str,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
    ) -> PublicSubscriptionStatus:
        return await self.execute(
            self._core.calls.update_subscription(
                Endpoint.SUBSCRIBE, email_address, subscription_id, legal_basis, legal_basis_explanation
            )
        )

    async def unsubscribe(
        self,
        email_address: str,
        *,
        subscription_id: int | str,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
    ) -> PublicSubscriptionStatus:
        return await self.execute(
            self._core.calls.update_subscription(
                Endpoint.UNSUBSCRIBE, email_address, subscription_id, legal_basis, legal_basis_explanation
            )
        )

    async def resubscribe(
        self,
        email_address: str,
        *,
        subscription_id: int | str,
        legal_basis: LegalBasis | str | None = None,
        legal_basis_explanation: str | None = None,
    ) -> PublicSubscriptionStatus:
        return await self.execute(
            self._core.calls.update_subscription(
                Endpoint.RESUBSCRIBE, email_address, subscription_id, legal_basis, legal_basis_explanation
            )
        )

    async def get_email_status(self, email_address: str) -> PublicSubscriptionStatusesResponse:
        return await self.execute(self._core.calls.email_status(email_address))
