"""Path templates of every endpoint in every supported API version: the one place URLs are spelt."""

from __future__ import annotations

from enum import Enum
from urllib.parse import quote

from .errors import HubSpotInputError, HubSpotUnsupportedEndpointError


class ApiVersion(str, Enum):
    """Versions of the Communication Preferences API this provider speaks."""

    V4 = "v4"
    V2026_03 = "2026-03"
    V2026_09 = "2026-09"


DEFAULT_API_VERSION = ApiVersion.V4


class Endpoint(str, Enum):
    """Logical endpoints; their paths depend on the version."""

    DEFINITIONS = "definitions"
    GENERATE_LINKS = "links/generate"
    GET_STATUS = "get statuses/{subscriberIdString}"
    SET_STATUS = "post statuses/{subscriberIdString}"
    GET_UNSUBSCRIBE_ALL = "get statuses/{subscriberIdString}/unsubscribe-all"
    UNSUBSCRIBE_ALL = "post statuses/{subscriberIdString}/unsubscribe-all"
    BATCH_READ = "statuses/batch/read"
    BATCH_WRITE = "statuses/batch/write"
    BATCH_UNSUBSCRIBE_ALL = "statuses/batch/unsubscribe-all"
    BATCH_READ_UNSUBSCRIBE_ALL = "statuses/batch/unsubscribe-all/read"
    # Added in 2026-09 (v3-style bodies).
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    RESUBSCRIBE = "resubscribe"
    GET_EMAIL_STATUS = "status/email/{emailAddress}"


# (method, path relative to /communication-preferences/{version})
_COMMON: dict[Endpoint, tuple[str, str]] = {
    Endpoint.DEFINITIONS: ("GET", "/definitions"),
    Endpoint.GENERATE_LINKS: ("POST", "/links/generate"),
    Endpoint.GET_STATUS: ("GET", "/statuses/{subscriberIdString}"),
    Endpoint.SET_STATUS: ("POST", "/statuses/{subscriberIdString}"),
    Endpoint.GET_UNSUBSCRIBE_ALL: ("GET", "/statuses/{subscriberIdString}/unsubscribe-all"),
    Endpoint.UNSUBSCRIBE_ALL: ("POST", "/statuses/{subscriberIdString}/unsubscribe-all"),
    Endpoint.BATCH_READ: ("POST", "/statuses/batch/read"),
    Endpoint.BATCH_WRITE: ("POST", "/statuses/batch/write"),
    Endpoint.BATCH_UNSUBSCRIBE_ALL: ("POST", "/statuses/batch/unsubscribe-all"),
    Endpoint.BATCH_READ_UNSUBSCRIBE_ALL: ("POST", "/statuses/batch/unsubscribe-all/read"),
}
_ADDED_2026_09: dict[Endpoint, tuple[str, str]] = {
    Endpoint.SUBSCRIBE: ("POST", "/subscribe"),
    Endpoint.UNSUBSCRIBE: ("POST", "/unsubscribe"),
    Endpoint.RESUBSCRIBE: ("POST", "/resubscribe"),
    Endpoint.GET_EMAIL_STATUS: ("GET", "/status/email/{emailAddress}"),
}

ROUTES: dict[ApiVersion, dict[Endpoint, tuple[str, str]]] = {
    ApiVersion.V4: dict(_COMMON),
    ApiVersion.V2026_03: dict(_COMMON),
    ApiVersion.V2026_09: {**_COMMON, **_ADDED_2026_09},
}

PREFIX = "/communication-preferences"
OAUTH_TOKEN_PATH = "/oauth/v1/token"


def parse_version(value: ApiVersion | str | None) -> ApiVersion:
    """Return the ApiVersion for ``value`` (None means the default), or raise naming the choices."""
    if value is None or value == "":
        return DEFAULT_API_VERSION
    try:
        return ApiVersion(value)
    except ValueError:
        allowed = ", ".join(v.value for v in ApiVersion)
        raise HubSpotInputError("api_version", value, f"must be one of {allowed}") from None


def route(version: ApiVersion, endpoint: Endpoint) -> tuple[str, str]:
    """Return ``(method, path template)`` for ``endpoint`` in ``version``, with the version prefix."""
    try:
        method, template = ROUTES[version][endpoint]
    except KeyError:
        raise HubSpotUnsupportedEndpointError(endpoint.value, version.value) from None
    return method, f"{PREFIX}/{version.value}{template}"


def render_path(template: str, **path_params: str) -> str:
    """Fill a path template, URL-encoding every value (``+``, ``@``, ``/`` and ``%`` occur in emails)."""
    return template.format(**{name: quote(value, safe="") for name, value in path_params.items()})
