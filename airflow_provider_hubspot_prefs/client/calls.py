"""Every request of the API, built and validated before anything is sent (shared by both clients)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from .errors import (
    HubSpotInputError,
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
    PartialPublicStatusRequest,
    PublicStatusRequest,
    PublicSubscriptionStatus,
    PublicSubscriptionStatusesResponse,
    PublicUpdateSubscriptionStatusRequest,
    StatusesResponse,
    StatusState,
    WideStatusesResponse,
    coerce_enum,
)
from .validation import (
    check_business_unit_id,
    check_positive_int,
    check_subscriber_id,
    check_subscriber_ids,
)
from .versions import ApiVersion, Endpoint, render_path, route

T = TypeVar("T")


@dataclass(frozen=True)
class PreparedCall(Generic[T]):
    """A validated request: what to send and how to read the answer."""

    endpoint: Endpoint
    method: str
    template: str
    path: str
    response_model: type[T]  # a HubSpotAnswer struct type, or OperationResponse[...] of one
    params: dict[str, Any] | None = None
    json: Any = None

    @property
    def is_write(self) -> bool:
        return self.endpoint in WRITE_ENDPOINTS


WRITE_ENDPOINTS = frozenset(
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


class RequestBuilder:
    """Builds and validates every request of the API; shared by both clients."""

    def __init__(self, version: ApiVersion, max_batch_size: int) -> None:
        self.version = version
        self.max_batch_size = max_batch_size

    def _prepare(
        self,
        endpoint: Endpoint,
        model: type[T],
        *,
        path_params: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> PreparedCall[T]:
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

    def definitions(
        self, business_unit_id: int | None, include_translations: bool | None
    ) -> PreparedCall[DefinitionsResponse]:
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
    ) -> PreparedCall[LinkGenerationResponse]:
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
    ) -> PreparedCall[StatusesResponse]:
        return self._prepare(
            Endpoint.GET_STATUS,
            StatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            params=self._channel_params(channel, business_unit_id),
        )

    def set_status(
        self, subscriber_id: str, request: PartialPublicStatusRequest
    ) -> PreparedCall[StatusesResponse]:
        return self._prepare(
            Endpoint.SET_STATUS,
            StatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            json=request.to_api(),
        )

    def get_unsubscribe_all(
        self, subscriber_id: str, channel: Channel | str, business_unit_id: int | None, verbose: bool | None
    ) -> PreparedCall[WideStatusesResponse]:
        return self._prepare(
            Endpoint.GET_UNSUBSCRIBE_ALL,
            WideStatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            params={**self._channel_params(channel, business_unit_id), "verbose": verbose},
        )

    def unsubscribe_all(
        self, subscriber_id: str, channel: Channel | str, business_unit_id: int | None, verbose: bool | None
    ) -> PreparedCall[StatusesResponse]:
        return self._prepare(
            Endpoint.UNSUBSCRIBE_ALL,
            StatusesResponse,
            path_params={"subscriberIdString": check_subscriber_id(subscriber_id)},
            params={**self._channel_params(channel, business_unit_id), "verbose": verbose},
        )

    def batch_read(
        self, subscriber_ids: Sequence[str], channel: Channel | str, business_unit_id: int | None
    ) -> PreparedCall[BatchStatusesResponse]:
        inputs = check_subscriber_ids(subscriber_ids, self.max_batch_size)
        return self._prepare(
            Endpoint.BATCH_READ,
            BatchStatusesResponse,
            params=self._channel_params(channel, business_unit_id),
            json={"inputs": inputs},
        )

    def batch_write(self, requests: Sequence[PublicStatusRequest]) -> PreparedCall[BatchWriteResponse]:
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
    ) -> PreparedCall[BatchUnsubscribeAllResponse]:
        inputs = check_subscriber_ids(subscriber_ids, self.max_batch_size)
        return self._prepare(
            Endpoint.BATCH_UNSUBSCRIBE_ALL,
            BatchUnsubscribeAllResponse,
            params={**self._channel_params(channel, business_unit_id), "verbose": verbose},
            json={"inputs": inputs},
        )

    def batch_read_unsubscribe_all(
        self, subscriber_ids: Sequence[str], channel: Channel | str, business_unit_id: int | None
    ) -> PreparedCall[BatchWideStatusesResponse]:
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
    ) -> PreparedCall[PublicSubscriptionStatus]:
        if isinstance(subscription_id, str) and subscription_id.isdigit():
            subscription_id = int(subscription_id)
        body = PublicUpdateSubscriptionStatusRequest(
            email_address=check_subscriber_id(email_address, "email_address"),
            subscription_id=str(check_positive_int(subscription_id, "subscription_id")),
            legal_basis=None if legal_basis is None else coerce_enum(LegalBasis, legal_basis, "legal_basis"),
            legal_basis_explanation=legal_basis_explanation,
        )
        return self._prepare(endpoint, PublicSubscriptionStatus, json=body.to_api())

    def email_status(self, email_address: str) -> PreparedCall[PublicSubscriptionStatusesResponse]:
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
