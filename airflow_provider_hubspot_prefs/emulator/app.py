"""HTTP face of the emulator: FastAPI routes that translate requests to ``PortalBackend`` calls.

The API is served for every version (v4, 2026-03, 2026-09) under ``/communication-preferences``;
``/oauth/v1/token`` issues OAuth access tokens; ``/_emulator/*`` is the control surface that tests
and users drive (reset, settings, tokens, injected faults, request log).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .backend import (
    CHANNELS,
    LEGAL_BASES,
    STATUS_STATES,
    AccessToken,
    ApiProblem,
    Fault,
    PortalBackend,
    is_email,
    iso,
    now_iso,
    validation,
)

VERSIONS = ("v4", "2026-03", "2026-09")
V3_STYLE_VERSIONS = ("2026-09",)
# Versions whose spec answers 207 on batch reads with failed inputs (2026-09 dropped it).
MULTI_STATUS_VERSIONS = ("v4", "2026-03")

Handler = Callable[[Request, PortalBackend], Awaitable[Any]]


def problem_response(problem: ApiProblem) -> JSONResponse:
    body = problem.body()
    headers = {**problem.headers, "X-HubSpot-Correlation-Id": body["correlationId"]}
    return JSONResponse(body, status_code=problem.status, headers=headers)


# ---- request parsing: every rejection in HubSpot's error shape ---------------------------------


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


def operation(
    results: list[Any],
    errors: list[dict[str, Any]] | None = None,
    status: str = "COMPLETE",
    completed_at: float | None = None,
) -> dict[str, Any]:
    stamp = now_iso()
    done = stamp if completed_at is None else iso(completed_at)
    body: dict[str, Any] = {
        "status": status,
        "results": results,
        "requestedAt": stamp,
        "startedAt": stamp,
        "completedAt": done,
    }
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return body


def batch_error(
    status: str, category: str, message: str, ids: list[str], *, sub_category: str | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": message, "code": status, "in": "inputs", "context": {"ids": ids}}
    if sub_category:
        detail["subCategory"] = sub_category
    return {
        "status": status,
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "errors": [detail],
        "links": {},
        "id": f"{category}:{len(ids)}",
    }


def invalid_email_error(ids: list[str]) -> dict[str, Any]:
    return batch_error(
        "400", "VALIDATION_ERROR", "Invalid subscriber identifier.", ids, sub_category="INVALID_EMAIL"
    )


def split_inputs(
    inputs: list[Any], backend: PortalBackend, *, must_be_known: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    """Valid (lower-cased, de-duplicated) inputs, and one StandardError per kind of bad input."""
    valid: list[str] = []
    invalid: list[str] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for item in inputs:
        if not is_email(item):
            invalid.append(str(item))
            continue
        email = str(item).lower()
        if email in seen:
            continue
        seen.add(email)
        if must_be_known and not backend.is_known(email):
            unknown.append(str(item))
        else:
            valid.append(email)
    errors = []
    if invalid:
        errors.append(invalid_email_error(invalid))
    if unknown:
        errors.append(
            batch_error("404", "OBJECT_NOT_FOUND", "Could not find a subscriber for some inputs.", unknown)
        )
    return valid, errors


# ---- the API -------------------------------------------------------------------------------------


def create_app(backend: PortalBackend | None = None) -> ConnectionDropper:
    """Build the emulator's ASGI app around ``backend`` (a fresh seeded portal by default)."""
    backend = backend or PortalBackend()
    app = FastAPI(
        title="HubSpot Communication Preferences emulator", openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.backend = backend

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        category = "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR"
        return problem_response(ApiProblem(exc.status_code, category, str(exc.detail)))

    @app.middleware("http")
    async def _record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.time()
        response = await call_next(request)
        if not request.url.path.startswith("/_emulator"):
            backend.log_request(
                request.method,
                request.url.path,
                response.status_code,
                started,
                response.headers.get("X-HubSpot-Correlation-Id"),
            )
        return response

    def api(operation_kind: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if backend.config.latency_ms:
                await asyncio.sleep(backend.config.latency_ms / 1000)
            headers: dict[str, str] = {}
            fault = backend.take_fault(request.url.path)
            request.state.fault = fault
            try:
                if fault is not None and fault.kind == "error":
                    raise injected(fault)
                if fault is not None and fault.kind == "drop_before":
                    return drop_connection(request)
                token: AccessToken = backend.authenticate(request.headers.get("authorization"))
                headers = backend.consume_rate_limit(token.app)
                backend.authorize(token, operation_kind)
                backend.settle()  # queued writes whose time has come apply before anything is read
                result = await handler(request, backend)
            except ApiProblem as problem:
                if problem.status != 429:
                    problem.headers = {**headers, **problem.headers}
                return problem_response(problem)
            status = 200
            if isinstance(result, tuple):
                status, result = result
            if fault is not None and fault.kind == "drop_after":
                return drop_connection(request)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.kind == "malformed":
                body = json.dumps(result)
                return Response(body[: len(body) // 2], status_code=200, media_type="application/json")
            # HubSpot names every answer with a correlation id, not only its errors.
            headers["X-HubSpot-Correlation-Id"] = str(uuid.uuid4())
            return JSONResponse(result, status_code=status, headers=headers)

        return endpoint

    for version in VERSIONS:
        base = f"/communication-preferences/{version}"
        routes: list[tuple[str, str, str, Handler]] = [
            ("GET", "/definitions", "read", get_definitions),
            ("POST", "/links/generate", "links", generate_links),
            ("POST", "/statuses/batch/read", "batch_read", batch_read(version)),
            ("POST", "/statuses/batch/write", "batch_write", batch_write),
            ("POST", "/statuses/batch/unsubscribe-all", "batch_write", batch_unsubscribe_all),
            ("POST", "/statuses/batch/unsubscribe-all/read", "batch_read", batch_read_wide(version)),
            ("GET", "/statuses/{subscriber:path}/unsubscribe-all", "read", get_wide_status),
            ("POST", "/statuses/{subscriber:path}/unsubscribe-all", "write", unsubscribe_all),
            ("GET", "/statuses/{subscriber:path}", "read", get_status),
            ("POST", "/statuses/{subscriber:path}", "write", set_status),
        ]
        if version in V3_STYLE_VERSIONS:
            routes += [
                ("POST", "/subscribe", "write", v3_update("subscribe")),
                ("POST", "/unsubscribe", "write", v3_update("unsubscribe")),
                # The spec lists no scopes for /resubscribe; it is a write like its siblings.
                ("POST", "/resubscribe", "write", v3_update("resubscribe")),
                ("GET", "/status/email/{email:path}", "read", v3_email_status),
            ]
        for method, path, kind, handler in routes:
            app.add_api_route(base + path, api(kind, handler), methods=[method], include_in_schema=False)

    @app.post("/oauth/v1/token", include_in_schema=False)
    async def oauth_token(request: Request) -> Response:
        form = await request.form()
        return JSONResponse(backend.oauth_token({k: str(v) for k, v in form.items()}))

    add_control_routes(app, backend)
    return ConnectionDropper(app)


DROPPED = 444  # nginx's "no response": what the request log records for a dropped connection


def drop_connection(request: Request) -> Response:
    request.scope["emulator.drop"] = True
    return Response(status_code=DROPPED)


class ConnectionDropper:
    """Outermost ASGI layer: closes the TCP connection of a request marked ``emulator.drop``.

    The client then sees the connection go away without any answer, as on a network failure or a
    crashed load balancer. uvicorn's ``send`` belongs to the request cycle that owns the socket.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: MutableMapping[str, Any]) -> None:
            if scope.get("emulator.drop"):
                transport = getattr(getattr(send, "__self__", None), "transport", None)
                if transport is not None:
                    transport.abort()
                    return
                raise ConnectionAbortedError("emulator: dropped connection")  # other servers
            await send(message)

        await self.app(scope, receive, guarded_send)


def injected(fault: Fault) -> ApiProblem:
    if fault.status == 429:
        daily = fault.daily_remaining
        headers = {} if daily is None else {"X-HubSpot-RateLimit-Daily-Remaining": str(daily)}
        policy = fault.policy_name or "TEN_SECONDLY_ROLLING"
        return PortalBackend.rate_limited(policy, headers, fault.retry_after)
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    category = fault.category or ("INTERNAL_ERROR" if fault.status >= 500 else "VALIDATION_ERROR")
    return ApiProblem(fault.status, category, f"Injected fault: HTTP {fault.status}", headers=headers)


async def get_definitions(request: Request, backend: PortalBackend) -> Any:
    bu = q_int(request, "businessUnitId")
    if bu is not None:
        backend.check_business_unit(bu)
    return operation(backend.list_definitions(bu, q_bool(request, "includeTranslations")))


async def generate_links(request: Request, backend: PortalBackend) -> Any:
    q_channel(request)
    bu = business_unit(request, backend)
    body = await json_object(request)
    email = email_value(body.get("subscriberIdString"), "subscriberIdString")
    sub_id = body.get("subscriptionId")
    if sub_id is not None and (not isinstance(sub_id, int) or backend.definition(sub_id) is None):
        raise validation(f"Subscription {sub_id} does not exist in this portal.", "subscriptionId", sub_id)
    language = optional_str(body, "language") or "en"
    token = email.encode().hex()
    root = "https://preferences.emulator.invalid"
    links = {
        "subscriberIdString": email,
        "managePreferencesUrl": f"{root}/manage?d={token}&bu={bu}&lang={language}",
        "unsubscribeAllUrl": f"{root}/unsubscribe-all?d={token}&bu={bu}&lang={language}",
    }
    if sub_id is not None:
        links["unsubscribeSingleUrl"] = f"{root}/unsubscribe?d={token}&s={sub_id}&lang={language}"
    return links


def path_subscriber(request: Request) -> str:
    return email_value(request.path_params["subscriber"], "subscriberIdString")


async def get_status(request: Request, backend: PortalBackend) -> Any:
    email = path_subscriber(request)
    q_channel(request)
    bu = business_unit(request, backend)
    backend.require_known(email)
    return operation(backend.statuses_of(email, bu), status=backend.read_status([email]))


async def set_status(request: Request, backend: PortalBackend) -> Any:
    email = path_subscriber(request)
    body = await json_object(request)
    enum_value(body, "channel", CHANNELS, required=True)
    state = enum_value(body, "statusState", STATUS_STATES, required=True)
    sub_id = int_value(body, "subscriptionId")
    legal = enum_value(body, "legalBasis", LEGAL_BASES, required=False)
    explanation = optional_str(body, "legalBasisExplanation")
    assert state is not None
    backend.require_definition(sub_id)
    status, results, done = backend.run_write(
        [email], lambda: [backend.set_status(email, state, sub_id, legal, explanation)]
    )
    return operation(results, status=status, completed_at=done)


async def get_wide_status(request: Request, backend: PortalBackend) -> Any:
    email = path_subscriber(request)
    q_channel(request)
    bu = business_unit(request, backend)
    verbose = q_bool(request, "verbose")
    backend.require_known(email)
    return operation(
        backend.wide_statuses_of(email, bu, all_units=verbose), status=backend.read_status([email])
    )


async def unsubscribe_all(request: Request, backend: PortalBackend) -> Any:
    email = path_subscriber(request)
    q_channel(request)
    bu = business_unit(request, backend)
    verbose = q_bool(request, "verbose")
    status, results, done = backend.run_write([email], lambda: backend.unsubscribe_all(email, bu, verbose))
    return operation(results, status=status, completed_at=done)


def batch_read(version: str) -> Handler:
    async def handler(request: Request, backend: PortalBackend) -> Any:
        q_channel(request)
        bu = business_unit(request, backend)
        inputs = batch_inputs(await json_object(request), backend)
        valid, errors = split_inputs(inputs, backend, must_be_known=True)
        results = [{"subscriberIdString": e, "statuses": backend.statuses_of(e, bu)} for e in valid]
        return multi_status(version, results, errors, backend.read_status(valid))

    return handler


def batch_read_wide(version: str) -> Handler:
    async def handler(request: Request, backend: PortalBackend) -> Any:
        q_channel(request)
        bu = business_unit(request, backend)
        inputs = batch_inputs(await json_object(request), backend)
        valid, errors = split_inputs(inputs, backend, must_be_known=True)
        results = [
            {"subscriberIdString": e, "wideStatuses": backend.wide_statuses_of(e, bu, all_units=False)}
            for e in valid
        ]
        return multi_status(version, results, errors, backend.read_status(valid))

    return handler


def multi_status(
    version: str, results: list[Any], errors: list[dict[str, Any]], operation_status: str
) -> tuple[int, Any]:
    status = 207 if errors and version in MULTI_STATUS_VERSIONS else 200
    return status, operation(results, errors, status=operation_status)


async def batch_write(request: Request, backend: PortalBackend) -> Any:
    inputs = batch_inputs(await json_object(request), backend)
    checked = []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise validation(f"inputs[{i}] must be an object.", f"inputs[{i}]")
        enum_value(item, "channel", CHANNELS, required=True)
        checked.append(
            (
                item.get("subscriberIdString"),
                enum_value(item, "statusState", STATUS_STATES, required=True),
                int_value(item, "subscriptionId"),
                enum_value(item, "legalBasis", LEGAL_BASES, required=False),
                optional_str(item, "legalBasisExplanation"),
            )
        )
    accepted, invalid, missing_subs = [], [], []
    refused = refused_by_fault(request, [str(s) for s, *_ in checked if is_email(s)])
    for subscriber, state, sub_id, legal, explanation in checked:
        if subscriber in refused:
            continue
        if not is_email(subscriber):
            invalid.append(str(subscriber))
        elif backend.definition(sub_id) is None:
            missing_subs.append(str(subscriber))
        else:
            accepted.append((str(subscriber).lower(), str(state), sub_id, legal, explanation))

    def apply() -> list[dict[str, Any]]:
        return [backend.set_status(*change) for change in accepted]

    status, results, done = backend.run_write([change[0] for change in accepted], apply)
    errors = []
    if invalid:
        errors.append(invalid_email_error(invalid))
    if missing_subs:
        errors.append(
            batch_error(
                "400",
                "VALIDATION_ERROR",
                "Subscription does not exist in this portal.",
                missing_subs,
                sub_category="INVALID_SUBSCRIPTION_ID",
            )
        )
    return partial_answer(request, results, errors, refused, status, done)


async def batch_unsubscribe_all(request: Request, backend: PortalBackend) -> Any:
    q_channel(request)
    bu = business_unit(request, backend)
    verbose = q_bool(request, "verbose")
    inputs = batch_inputs(await json_object(request), backend)
    valid, errors = split_inputs(inputs, backend, must_be_known=False)
    refused = refused_by_fault(request, valid)
    valid = [e for e in valid if e not in refused]

    def apply() -> list[dict[str, Any]]:
        return [{"subscriberIdString": e, "statuses": backend.unsubscribe_all(e, bu, verbose)} for e in valid]

    status, results, done = backend.run_write(valid, apply)
    return partial_answer(request, results, errors, refused, status, done)


def refused_by_fault(request: Request, addresses: list[str]) -> list[str]:
    """The addresses an injected ``partial`` fault refuses (none without one)."""
    fault = request.state.fault
    if fault is None or fault.kind != "partial":
        return []
    return [a for a in addresses if fault.reject_contains in a]


def partial_answer(
    request: Request,
    results: list[Any],
    errors: list[dict[str, Any]],
    refused: list[str],
    status: str,
    done: float,
) -> Any:
    """The write's envelope; an injected ``partial`` fault adds its refused inputs, HTTP 207."""
    fault = request.state.fault
    if fault is None or fault.kind != "partial" or not refused:
        return operation(results, errors, status=status, completed_at=done)
    message = fault.message or "The subscriber's preferences cannot be changed."
    errors = [*errors, batch_error("400", fault.category or "VALIDATION_ERROR", message, refused)]
    return 207, operation(results, errors, status=status, completed_at=done)


def v3_update(action: str) -> Handler:
    async def handler(request: Request, backend: PortalBackend) -> Any:
        body = await json_object(request)
        email = email_value(body.get("emailAddress"), "emailAddress")
        sub_id = int_value(body, "subscriptionId", from_string=True)
        legal = enum_value(body, "legalBasis", LEGAL_BASES, required=False)
        return backend.v3_update(action, email, sub_id, legal, optional_str(body, "legalBasisExplanation"))

    return handler


async def v3_email_status(request: Request, backend: PortalBackend) -> Any:
    return backend.v3_statuses(email_value(request.path_params["email"], "emailAddress"))


# ---- control surface -----------------------------------------------------------------------------


def add_control_routes(app: FastAPI, backend: PortalBackend) -> None:
    @app.post("/_emulator/reset", include_in_schema=False)
    async def reset() -> dict[str, Any]:
        backend.reset()
        return {"reset": True}

    @app.get("/_emulator/config", include_in_schema=False)
    async def get_config() -> dict[str, Any]:
        return backend.config.as_dict()

    @app.patch("/_emulator/config", include_in_schema=False)
    async def patch_config(request: Request) -> Response:
        try:
            backend.config.update(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(backend.config.as_dict())

    @app.post("/_emulator/tokens", include_in_schema=False)
    async def add_token(request: Request) -> dict[str, Any]:
        body = await request.json()
        backend.add_token(body["token"], body.get("scopes"))
        return {"added": True}

    @app.post("/_emulator/revoke", include_in_schema=False)
    async def revoke(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"revoked": backend.revoke(body["token"])}

    @app.post("/_emulator/contacts", include_in_schema=False)
    async def add_contacts(request: Request) -> dict[str, Any]:
        body = await request.json()
        backend.add_contacts(body["emails"], body.get("unsubscribed_at"))
        return {"contacts": len(backend.contacts)}

    @app.get("/_emulator/changes", include_in_schema=False)
    async def changes() -> dict[str, Any]:
        """State changes applied: their total and any (contact, subscription) changed twice or more."""
        with backend.lock:
            repeated = [[e, s, n] for (e, s), n in backend.changes.items() if n > 1]
            return {"total": sum(backend.changes.values()), "repeated": repeated}

    @app.post("/_emulator/faults", include_in_schema=False)
    async def add_fault(request: Request) -> dict[str, Any]:
        backend.add_fault(Fault(**(await request.json())))
        return {"faults": len(backend.faults)}

    @app.get("/_emulator/requests", include_in_schema=False)
    async def requests_log() -> dict[str, Any]:
        return {"requests": list(backend.request_log), "tokenRequests": backend.token_requests}

    @app.delete("/_emulator/requests", include_in_schema=False)
    async def clear_log() -> dict[str, Any]:
        backend.request_log.clear()
        backend.token_requests = 0
        return {"cleared": True}
