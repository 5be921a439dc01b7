"""Typed models of the Communication Preferences API, written from HubSpot's OpenAPI specs.

Field names follow Python style; aliases carry HubSpot's camelCase. Unknown fields from HubSpot
are kept (``extra="allow"``) so that a new response field never breaks a running DAG.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

from .errors import HubSpotInputError


class Channel(str, Enum):
    EMAIL = "EMAIL"


class StatusState(str, Enum):
    SUBSCRIBED = "SUBSCRIBED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    NOT_SPECIFIED = "NOT_SPECIFIED"


class LegalBasis(str, Enum):
    CONSENT_WITH_NOTICE = "CONSENT_WITH_NOTICE"
    LEGITIMATE_INTEREST_CLIENT = "LEGITIMATE_INTEREST_CLIENT"
    LEGITIMATE_INTEREST_OTHER = "LEGITIMATE_INTEREST_OTHER"
    LEGITIMATE_INTEREST_PQL = "LEGITIMATE_INTEREST_PQL"
    NON_GDPR = "NON_GDPR"
    PERFORMANCE_OF_CONTRACT = "PERFORMANCE_OF_CONTRACT"
    PROCESS_AND_STORE = "PROCESS_AND_STORE"


class OperationStatus(str, Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    CANCELED = "CANCELED"
    COMPLETE = "COMPLETE"


class SetStatusSuccessReason(str, Enum):
    NO_STATUS_CHANGE = "NO_STATUS_CHANGE"
    REQUESTED_CHANGE_OCCURRED = "REQUESTED_CHANGE_OCCURRED"
    RESUBSCRIBE_OCCURRED = "RESUBSCRIBE_OCCURRED"
    UNSUBSCRIBE_FROM_ALL_OCCURRED = "UNSUBSCRIBE_FROM_ALL_OCCURRED"


class WideStatusType(str, Enum):
    PORTAL_WIDE = "PORTAL_WIDE"
    BUSINESS_UNIT_WIDE = "BUSINESS_UNIT_WIDE"


class SubscriptionStatusValue(str, Enum):
    """Status in the 2026-09 v3-style responses."""

    SUBSCRIBED = "SUBSCRIBED"
    NOT_SUBSCRIBED = "NOT_SUBSCRIBED"


class SourceOfStatus(str, Enum):
    SUBSCRIPTION_STATUS = "SUBSCRIPTION_STATUS"
    PORTAL_WIDE_STATUS = "PORTAL_WIDE_STATUS"
    BRAND_WIDE_STATUS = "BRAND_WIDE_STATUS"


E = TypeVar("E", bound=Enum)


def coerce_enum(enum_cls: type[E], value: E | str, field: str) -> E:
    """Return ``value`` as a member of ``enum_cls`` or raise an error naming the field and choices."""
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum_cls)
        raise HubSpotInputError(field, value, f"is not one of {allowed}") from None


class HubSpotModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_api(self) -> dict[str, Any]:
        """The JSON body HubSpot expects: camelCase, no unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---- requests -------------------------------------------------------------------------------


class PartialPublicStatusRequest(HubSpotModel):
    channel: Channel = Channel.EMAIL
    status_state: StatusState
    subscription_id: int
    legal_basis: LegalBasis | None = None
    legal_basis_explanation: str | None = None


class PublicStatusRequest(PartialPublicStatusRequest):
    subscriber_id_string: str


class LinkGenerationRequest(HubSpotModel):
    subscriber_id_string: str
    subscription_id: int | None = None
    language: str | None = None


class PublicUpdateSubscriptionStatusRequest(HubSpotModel):
    """2026-09 body of /subscribe, /unsubscribe and /resubscribe (subscriptionId is a string there)."""

    email_address: str
    subscription_id: str
    legal_basis: LegalBasis | None = None
    legal_basis_explanation: str | None = None


# ---- responses ------------------------------------------------------------------------------


class ErrorDetail(HubSpotModel):
    message: str
    code: str | None = None
    in_: str | None = Field(default=None, alias="in")
    sub_category: str | None = None
    context: dict[str, Any] | None = None


class StandardError(HubSpotModel):
    """One failed input of a batch call (``errors[]`` in the operation envelope)."""

    status: str
    category: str
    message: str
    id: str | None = None
    sub_category: Any = None
    context: dict[str, list[str]] = Field(default_factory=dict)
    errors: list[ErrorDetail] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict)

    @property
    def subscriber_ids(self) -> list[str]:
        """The inputs this error is about, where HubSpot names them in ``context``."""
        for key in ("ids", "subscriberIdString", "subscriberIdStrings", "emailAddress"):
            if self.context.get(key):
                return list(self.context[key])
        return []


class PublicStatus(HubSpotModel):
    channel: Channel
    source: str
    status: StatusState
    subscriber_id_string: str
    subscription_id: int
    timestamp: datetime
    business_unit_id: int | None = None
    legal_basis: LegalBasis | None = None
    legal_basis_explanation: str | None = None
    set_status_success_reason: SetStatusSuccessReason | None = None
    subscription_name: str | None = None


class PublicWideStatus(HubSpotModel):
    channel: Channel
    status: StatusState
    subscriber_id_string: str
    timestamp: datetime
    wide_status_type: WideStatusType
    business_unit_id: int | None = None


class PublicStatusBulkResponse(HubSpotModel):
    subscriber_id_string: str
    statuses: list[PublicStatus] = Field(default_factory=list)


class PublicBulkOptOutFromAllResponse(HubSpotModel):
    subscriber_id_string: str
    statuses: list[PublicStatus] = Field(default_factory=list)


class PublicWideStatusBulkResponse(HubSpotModel):
    subscriber_id_string: str
    wide_statuses: list[PublicWideStatus] = Field(default_factory=list)


class PublicSubscriptionTranslation(HubSpotModel):
    created_at: int
    description: str
    language_code: str
    name: str
    subscription_id: int
    updated_at: int


class SubscriptionDefinition(HubSpotModel):
    id: str
    name: str
    description: str
    is_active: bool
    is_default: bool
    is_internal: bool
    created_at: datetime
    updated_at: datetime
    business_unit_id: int | None = None
    communication_method: str | None = None
    purpose: str | None = None
    subscription_translations: list[PublicSubscriptionTranslation] | None = None


class LinkGenerationResponse(HubSpotModel):
    subscriber_id_string: str
    manage_preferences_url: str
    unsubscribe_all_url: str
    unsubscribe_single_url: str | None = None


class PublicSubscriptionStatus(HubSpotModel):
    id: str
    name: str
    description: str
    status: SubscriptionStatusValue
    source_of_status: SourceOfStatus
    brand_id: int | None = None
    legal_basis: LegalBasis | None = None
    legal_basis_explanation: str | None = None
    preference_group_name: str | None = None


class PublicSubscriptionStatusesResponse(HubSpotModel):
    recipient: str
    subscription_statuses: list[PublicSubscriptionStatus] = Field(default_factory=list)


T = TypeVar("T")


class OperationResponse(HubSpotModel, Generic[T]):
    """HubSpot's operation envelope around ``results``.

    ``status`` is where HubSpot says whether the operation is PENDING, PROCESSING, CANCELED or
    COMPLETE; ``errors`` lists failed inputs of a batch call (HTTP 207 on batch reads).
    """

    status: OperationStatus
    results: list[T] = Field(default_factory=list)
    started_at: datetime
    completed_at: datetime
    requested_at: datetime | None = None
    errors: list[StandardError] = Field(default_factory=list)
    num_errors: int | None = None
    links: dict[str, str] | None = None

    _uncertain_since: float | None = PrivateAttr(default=None)
    # The request's ``X-HubSpot-Correlation-Id`` (what HubSpot support asks for), set by the client.
    correlation_id: str | None = Field(default=None, exclude=True)

    @property
    def is_complete(self) -> bool:
        return self.status is OperationStatus.COMPLETE

    @property
    def uncertain_since(self) -> float | None:
        """Epoch seconds of the first attempt of this write whose answer was lost, if any.

        HubSpot may have applied that attempt; what it then reports as unchanged, with a status
        timestamp from then on, was changed by this very request.
        """
        return self._uncertain_since

    def mark_uncertain(self, since: float) -> None:
        self._uncertain_since = since

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or bool(self.num_errors)


StatusesResponse = OperationResponse[PublicStatus]
WideStatusesResponse = OperationResponse[PublicWideStatus]
DefinitionsResponse = OperationResponse[SubscriptionDefinition]
BatchStatusesResponse = OperationResponse[PublicStatusBulkResponse]
BatchWriteResponse = OperationResponse[PublicStatus]
BatchUnsubscribeAllResponse = OperationResponse[PublicBulkOptOutFromAllResponse]
BatchWideStatusesResponse = OperationResponse[PublicWideStatusBulkResponse]
