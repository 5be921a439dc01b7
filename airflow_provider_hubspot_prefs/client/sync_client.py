"""The synchronous client: ``ClientCore`` decides, ``httpx.Client`` sends."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from .calls import PreparedCall, T, status_request
from .core import ATTEMPT_FAILURES, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, ClientCore, http_options
from .delivery import Delivery
from .models import (
    BatchStatusesResponse,
    BatchUnsubscribeAllResponse,
    BatchWideStatusesResponse,
    BatchWriteResponse,
    Channel,
    DefinitionsResponse,
    LegalBasis,
    LinkGenerationResponse,
    PublicStatusRequest,
    PublicSubscriptionStatus,
    PublicSubscriptionStatusesResponse,
    StatusesResponse,
    StatusState,
    WideStatusesResponse,
)
from .policy import RateLimitInfo, RetryPolicy
from .ratelimit import DEFAULT_INTERVAL, DEFAULT_MAX_REQUESTS, RateLimiter
from .validation import (
    DEFAULT_MAX_BATCH_SIZE,
)
from .versions import ApiVersion, Endpoint


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
        self._core = ClientCore(
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
            **http_options(timeout, max_connections, ca_bundle),
        )

    @property
    def api_version(self) -> ApiVersion:
        return self._core.api_version

    @property
    def last_rate_limit(self) -> RateLimitInfo | None:
        """Rate-limit headers of the latest response that carried them."""
        return self._core.last_rate_limit

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubSpotPreferencesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        version = self.api_version.value
        return f"HubSpotPreferencesClient(base_url={self._core.base_url!r}, api_version={version!r})"

    def execute(self, call: PreparedCall[T]) -> T:
        """Send ``call`` with retries and return its parsed response model."""
        attempts = Delivery(call)
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
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
            except ATTEMPT_FAILURES as exc:
                error = exc
            finally:
                self._core.answered(slot, response)
            model, wait = self._core.finish_attempt(attempts, sent_at, response, error)
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
