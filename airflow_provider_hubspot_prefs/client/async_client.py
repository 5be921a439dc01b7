"""The asynchronous client: the same methods as ``HubSpotPreferencesClient``, awaited."""

from __future__ import annotations

import asyncio
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
        self._http = httpx.AsyncClient(
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
        return self._core.last_rate_limit

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

    async def execute(self, call: PreparedCall[T]) -> T:
        attempts = Delivery(call)
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
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
            except ATTEMPT_FAILURES as exc:
                error = exc
            finally:
                self._core.answered(slot, response)
            model, wait = self._core.finish_attempt(attempts, sent_at, response, error)
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


def _same_documentation() -> None:
    """The endpoint methods are documented once, on the synchronous client: the twins say the same."""
    from .sync_client import HubSpotPreferencesClient

    for name, method in vars(AsyncHubSpotPreferencesClient).items():
        twin = getattr(HubSpotPreferencesClient, name, None)
        if callable(method) and not name.startswith("_") and twin is not None and not method.__doc__:
            method.__doc__ = twin.__doc__


_same_documentation()
