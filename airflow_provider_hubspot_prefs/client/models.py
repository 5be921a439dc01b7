"""Typed models of the Communication Preferences API, written from HubSpot's OpenAPI specs.

Field names follow Python style; HubSpot's camelCase is their JSON name. Requests are pydantic
models (checked when built, errors name the field); answers are msgspec structs (decoded and
checked in one pass from the bytes HubSpot sent).
"""

from __future__ import annotations

import functools
import typing
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import msgspec
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .delivery import DeliveryRecord
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
#
# Answers are decoded straight from JSON into these structs (msgspec, which Airflow's Task SDK
# already depends on): typed and checked in one pass, for less CPU than ``json.loads`` gives
# untyped dicts (benchmarks/README.md, benchmark 2). Pydantic models of every status of a
# 100-address answer cost several times that.


@functools.cache
def answer_decoder(model: Any) -> msgspec.json.Decoder[Any]:
    """The decoder of one answer type (made once: making one compiles the type). Not strict:
    numbers sent as strings are read as numbers, as pydantic's models did."""
    return msgspec.json.Decoder(model, strict=False)


def answer_name(model: Any) -> str:
    """``OperationResponse[PublicStatus]`` for the type of that name (for error messages)."""
    args = ", ".join(answer_name(a) for a in typing.get_args(model))
    name = getattr(typing.get_origin(model) or model, "__name__", str(model))
    return f"{name}[{args}]" if args else name


class HubSpotAnswer(msgspec.Struct, rename="camel", kw_only=True):
    """Base of HubSpot's answers: Python field names, HubSpot's camelCase in JSON. Fields HubSpot
    adds later are ignored, so that a new response field never breaks a running DAG."""


class ErrorDetail(HubSpotAnswer, kw_only=True):
    message: str
    code: str | None = None
    in_: str | None = msgspec.field(default=None, name="in")
    sub_category: str | None = None
    context: dict[str, Any] | None = None


class StandardError(HubSpotAnswer, kw_only=True):
    """One failed input of a batch call (``errors[]`` in the operation envelope)."""

    status: str
    category: str
    message: str
    id: str | None = None
    sub_category: Any = None
    context: dict[str, list[str]] = msgspec.field(default_factory=dict)
    errors: list[ErrorDetail] = msgspec.field(default_factory=list)
    links: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def subscriber_ids(self) -> list[str]:
        """The inputs this error is about, where HubSpot names them in ``context``."""
        for key in ("ids", "subscriberIdString", "subscriberIdStrings", "emailAddress"):
            if self.context.get(key):
                return list(self.context[key])
        return []


class PublicStatus(HubSpotAnswer, kw_only=True):
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


class PublicWideStatus(HubSpotAnswer, kw_only=True):
    channel: Channel
    status: StatusState
    subscriber_id_string: str
    timestamp: datetime
    wide_status_type: WideStatusType
    business_unit_id: int | None = None


class PublicStatusBulkResponse(HubSpotAnswer, kw_only=True):
    subscriber_id_string: str
    statuses: list[PublicStatus] = msgspec.field(default_factory=list)


class PublicBulkOptOutFromAllResponse(HubSpotAnswer, kw_only=True):
    subscriber_id_string: str
    statuses: list[PublicStatus] = msgspec.field(default_factory=list)


class PublicWideStatusBulkResponse(HubSpotAnswer, kw_only=True):
    subscriber_id_string: str
    wide_statuses: list[PublicWideStatus] = msgspec.field(default_factory=list)


class PublicSubscriptionTranslation(HubSpotAnswer, kw_only=True):
    created_at: int
    description: str
    language_code: str
    name: str
    subscription_id: int
    updated_at: int


class SubscriptionDefinition(HubSpotAnswer, kw_only=True):
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


class LinkGenerationResponse(HubSpotAnswer, kw_only=True):
    subscriber_id_string: str
    manage_preferences_url: str
    unsubscribe_all_url: str
    unsubscribe_single_url: str | None = None


class PublicSubscriptionStatus(HubSpotAnswer, kw_only=True):
    id: str
    name: str
    description: str
    status: SubscriptionStatusValue
    source_of_status: SourceOfStatus
    brand_id: int | None = None
    legal_basis: LegalBasis | None = None
    legal_basis_explanation: str | None = None
    preference_group_name: str | None = None


class PublicSubscriptionStatusesResponse(HubSpotAnswer, kw_only=True):
    recipient: str
    subscription_statuses: list[PublicSubscriptionStatus] = msgspec.field(default_factory=list)


T = TypeVar("T")


class OperationResponse(HubSpotAnswer, Generic[T], dict=True, kw_only=True):
    """HubSpot's operation envelope around ``results``.

    ``status`` is where HubSpot says whether the operation is PENDING, PROCESSING, CANCELED or
    COMPLETE; ``errors`` lists failed inputs of a batch call (HTTP 207 on batch reads).
    """

    status: OperationStatus
    results: list[T] = msgspec.field(default_factory=list)
    started_at: datetime
    completed_at: datetime
    requested_at: datetime | None = None
    errors: list[StandardError] = msgspec.field(default_factory=list)
    num_errors: int | None = None
    links: dict[str, str] | None = None

    # Not HubSpot's fields, so not in the JSON: how the answer came, noted by the client.

    @property
    def delivery(self) -> DeliveryRecord:
        """How the request reached HubSpot (correlation id, lost answers before this one)."""
        record = self.__dict__.get("delivery")
        if record is None:
            record = self.__dict__["delivery"] = DeliveryRecord()
        return record

    @delivery.setter
    def delivery(self, record: DeliveryRecord) -> None:
        self.__dict__["delivery"] = record

    @property
    def correlation_id(self) -> str | None:
        """The request's ``X-HubSpot-Correlation-Id`` (what HubSpot support asks for)."""
        return self.delivery.correlation_id

    @property
    def uncertain_since(self) -> float | None:
        """See ``DeliveryRecord.uncertain_since``."""
        return self.delivery.uncertain_since

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
