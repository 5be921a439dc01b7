"""Reading a request's query, path and JSON body, refusing what HubSpot refuses in its error shape."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from .backend import CHANNELS, ApiProblem, PortalBackend, is_email, validation


def q_channel(request: Request) -> str:
    value = request.query_params.get("channel")
    if value is None:
        raise validation("Query parameter 'channel' is required.", "channel", code="REQUIRED")
    if value not in CHANNELS:
        raise validation(
            f"channel must be one of {', '.join(CHANNELS)}.", "channel", value, code="INVALID_ENUM"
        )
    return value


def q_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"{name} must be an integer.", name, raw) from None
    if value < 0 or value > 2**63 - 1:
        raise validation(f"{name} must be a non-negative 64-bit integer.", name, raw)
    return value


def q_bool(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise validation(f"{name} must be true or false.", name, raw)
    return raw.lower() == "true"


def business_unit(request: Request, backend: PortalBackend) -> int:
    bu = q_int(request, "businessUnitId")
    return backend.check_business_unit(0 if bu is None else bu)


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise validation("Invalid input JSON: the request body is not valid JSON.", "body") from None
    if not isinstance(body, dict):
        raise validation("The request body must be a JSON object.", "body")
    return body


def email_value(value: Any, field_name: str) -> str:
    if not is_email(value):
        raise ApiProblem(
            400,
            "VALIDATION_ERROR",
            f"{field_name} is not a valid email address.",
            sub_category="INVALID_EMAIL",
            errors=[
                {
                    "message": "Invalid subscriber identifier.",
                    "in": field_name,
                    "subCategory": "INVALID_EMAIL",
                }
            ],
        )
    return str(value).lower()


def enum_value(body: dict[str, Any], name: str, allowed: tuple[str, ...], *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise validation(f"{name} is required.", name, code="REQUIRED")
        return None
    if value not in allowed:
        raise validation(f"{name} must be one of {', '.join(allowed)}.", name, value, code="INVALID_ENUM")
    return str(value)


def int_value(body: dict[str, Any], name: str, *, from_string: bool = False) -> int:
    value = body.get(name)
    if from_string and isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation(f"{name} is required and must be an integer.", name, value, code="REQUIRED")
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise validation(f"{name} must be a string.", name, value)
    return value


def batch_inputs(body: dict[str, Any], backend: PortalBackend) -> list[Any]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation("inputs is required and must be an array.", "inputs", code="REQUIRED")
    if not inputs:
        raise validation("inputs must contain at least one item.", "inputs", code="TOO_FEW")
    limit = backend.config.max_batch_size
    if len(inputs) > limit:
        raise validation(
            f"Too many inputs: {len(inputs)} given, at most {limit} allowed.",
            "inputs",
            len(inputs),
            code="TOO_MANY",
        )
    return inputs


def path_subscriber(request: Request) -> str:
    return email_value(request.path_params["subscriber"], "subscriberIdString")
