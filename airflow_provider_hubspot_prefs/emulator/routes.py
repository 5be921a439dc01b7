"""The API's endpoints, per version: each turns a request into ``PortalBackend`` calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from .answers import batch_error, invalid_email_error, multi_status, operation, split_inputs
from .backend import CHANNELS, LEGAL_BASES, STATUS_STATES, PortalBackend, is_email, validation
from .faults import faulty_read, partial_answer, refused_by_fault
from .parsing import (
    batch_inputs,
    business_unit,
    email_value,
    enum_value,
    int_value,
    json_object,
    optional_str,
    path_subscriber,
    q_bool,
    q_channel,
    q_int,
)

VERSIONS = ("v4", "2026-03", "2026-09")
# 2026-09 adds /subscribe, /unsubscribe, /resubscribe and /status/email/{emailAddress}, with
# bodies in the style of the retired v3 API.
SIMPLE_ENDPOINT_VERSIONS = ("2026-09",)

Handler = Callable[[Request, PortalBackend], Awaitable[Any]]


def api_routes(version: str) -> list[tuple[str, str, str, Handler]]:
    """``(method, path, operation kind, handler)`` of every endpoint ``version`` serves."""
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
    if version in SIMPLE_ENDPOINT_VERSIONS:
        routes += [
            ("POST", "/subscribe", "write", simple_update("subscribe")),
            ("POST", "/unsubscribe", "write", simple_update("unsubscribe")),
            # The spec lists no scopes for /resubscribe; it is a write like its siblings.
            ("POST", "/resubscribe", "write", simple_update("resubscribe")),
            ("GET", "/status/email/{email:path}", "read", simple_email_status),
        ]
    return routes


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
        results, errors = faulty_read(request, results, errors, "statuses")
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
        results, errors = faulty_read(request, results, errors, "wideStatuses")
        return multi_status(version, results, errors, backend.read_status(valid))

    return handler


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


def simple_update(action: str) -> Handler:
    async def handler(request: Request, backend: PortalBackend) -> Any:
        body = await json_object(request)
        email = email_value(body.get("emailAddress"), "emailAddress")
        sub_id = int_value(body, "subscriptionId", from_string=True)
        legal = enum_value(body, "legalBasis", LEGAL_BASES, required=False)
        explanation = optional_str(body, "legalBasisExplanation")
        return backend.simple_update_status(action, email, sub_id, legal, explanation)

    return handler


async def simple_email_status(request: Request, backend: PortalBackend) -> Any:
    return backend.simple_statuses(email_value(request.path_params["email"], "emailAddress"))
