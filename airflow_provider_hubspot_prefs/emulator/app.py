"""HTTP face of the emulator: FastAPI routes that translate requests to ``PortalBackend`` calls.

The API is served for every version (v4, 2026-03, 2026-09) under ``/communication-preferences``;
``/oauth/v1/token`` issues OAuth access tokens; ``/_emulator/*`` is the control surface that tests
and users drive (reset, settings, tokens, injected faults, request log).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .answers import problem_response
from .backend import ApiProblem, PortalBackend
from .control import add_control_routes
from .faults import ConnectionDropper
from .pipeline import endpoint, serve_token
from .routes import VERSIONS, api_routes


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
        started, generation = time.time(), backend.generation
        response = await call_next(request)
        if not request.url.path.startswith("/_emulator"):
            backend.log_request(
                request.method,
                request.url.path,
                response.status_code,
                started,
                response.headers.get("X-HubSpot-Correlation-Id"),
                request.url.query,
                generation,
            )
        return response

    for version in VERSIONS:
        base = f"/communication-preferences/{version}"
        for method, path, kind, handler in api_routes(version):
            app.add_api_route(
                base + path, endpoint(backend, kind, handler), methods=[method], include_in_schema=False
            )

    @app.post("/oauth/v1/token", include_in_schema=False)
    async def oauth_token(request: Request) -> Response:
        return await serve_token(backend, request)

    add_control_routes(app, backend)
    return ConnectionDropper(app)
