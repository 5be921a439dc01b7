"""The request pipeline every API call goes through: latency, injected faults, authentication,
rate limit, scopes, queued writes, the handler, and the answer (or the fault's way of losing it).
The OAuth token endpoint goes through the same faults."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from .answers import problem_response
from .backend import AccessToken, ApiProblem, PortalBackend
from .faults import WRONG_SHAPE, Fault, drop_connection, injected

Handler = Callable[[Request, PortalBackend], Awaitable[Any]]


async def serve(backend: PortalBackend, request: Request, operation_kind: str, handler: Handler) -> Response:
    """Answer ``request`` with ``handler`` as HubSpot would, through every step of the pipeline."""
    if backend.config.latency_ms:
        await asyncio.sleep(backend.config.latency_ms / 1000)
    headers: dict[str, str] = {}

    async def run() -> Any:
        fault = request.state.fault
        if fault is not None and fault.kind == "choice" and fault.subscription_id is not None:
            # The person acts as the request arrives: before it is served.
            backend.person_choice(fault.email, fault.subscription_id, fault.state)
        token: AccessToken = backend.authenticate(request.headers.get("authorization"))
        headers.update(backend.consume_rate_limit(token.app))
        backend.authorize(token, operation_kind)
        backend.settle()  # queued writes whose time has come apply before anything is read
        return await handler(request, backend)

    return await with_faults(request, backend.take_fault(request.url.path), run, headers)


async def serve_token(backend: PortalBackend, request: Request) -> Response:
    """The OAuth token endpoint, with the faults whose path filter names it."""

    async def run() -> Any:
        form = await request.form()
        return backend.oauth_token({k: str(v) for k, v in form.items()})

    fault = backend.take_fault(request.url.path, named_only=True)
    return await with_faults(request, fault, run, {}, correlate=False)


async def with_faults(
    request: Request,
    fault: Fault | None,
    run: Callable[[], Awaitable[Any]],
    headers: dict[str, str],
    *,
    correlate: bool = True,
) -> Response:
    """``run()``'s answer, or what ``fault`` makes of it; ``headers`` (filled by ``run``) go on it."""
    request.state.fault = fault
    try:
        if fault is not None and fault.kind == "error":
            raise injected(fault)
        if fault is not None and fault.kind == "drop_before":
            return drop_connection(request)
        if fault is not None and fault.kind == "wrong_shape":
            return JSONResponse(WRONG_SHAPE, status_code=200)
        result = await run()
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
    if fault is not None and fault.kind == "undecodable":
        mangled = {"Content-Encoding": "gzip"}
        return Response(json.dumps(result), status_code=200, media_type="application/json", headers=mangled)
    if correlate:
        # HubSpot names every answer with a correlation id, not only its errors.
        headers["X-HubSpot-Correlation-Id"] = str(uuid.uuid4())
    return JSONResponse(result, status_code=status, headers=headers)


def endpoint(
    backend: PortalBackend, operation_kind: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """The route function of one API endpoint."""

    async def route(request: Request) -> Response:
        return await serve(backend, request, operation_kind, handler)

    return route
