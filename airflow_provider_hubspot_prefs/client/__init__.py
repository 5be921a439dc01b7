"""HubSpot Communication Preferences client: no Airflow import, usable on its own."""

from .async_client import AsyncHubSpotPreferencesClient
from .auth import OAuthRefreshAuth, PrivateAppTokenAuth
from .calls import PreparedCall, status_request
from .core import DEFAULT_BASE_URL, token_url
from .errors import (
    HubSpotAPIError,
    HubSpotAuthenticationError,
    HubSpotError,
    HubSpotInputError,
    HubSpotNotFoundError,
    HubSpotPermissionError,
    HubSpotRateLimitError,
    HubSpotResponseError,
    HubSpotServerError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    HubSpotUnreachableError,
    HubSpotUnsupportedEndpointError,
    HubSpotValidationError,
)
from .models import (
    Channel,
    LegalBasis,
    OperationStatus,
    PublicStatusRequest,
    SetStatusSuccessReason,
    StatusState,
    WideStatusType,
)
from .policy import RateLimitInfo, RetryPolicy
from .ratelimit import RateLimiter
from .sync_client import HubSpotPreferencesClient
from .versions import ApiVersion, Endpoint

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiVersion",
    "AsyncHubSpotPreferencesClient",
    "Channel",
    "Endpoint",
    "HubSpotAPIError",
    "HubSpotAuthenticationError",
    "HubSpotError",
    "HubSpotInputError",
    "HubSpotNotFoundError",
    "HubSpotPermissionError",
    "HubSpotPreferencesClient",
    "HubSpotRateLimitError",
    "HubSpotResponseError",
    "HubSpotServerError",
    "HubSpotTimeoutError",
    "HubSpotTransportError",
    "HubSpotUnreachableError",
    "HubSpotUnsupportedEndpointError",
    "HubSpotValidationError",
    "LegalBasis",
    "OAuthRefreshAuth",
    "OperationStatus",
    "PreparedCall",
    "PrivateAppTokenAuth",
    "PublicStatusRequest",
    "RateLimitInfo",
    "RateLimiter",
    "RetryPolicy",
    "SetStatusSuccessReason",
    "StatusState",
    "WideStatusType",
    "status_request",
    "token_url",
]
