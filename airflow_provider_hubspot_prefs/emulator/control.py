"""The control surface under ``/_emulator``: what tests and users drive (reset, settings, tokens,
contacts, faults, the request log)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .backend import ApiProblem, PortalBackend
from .faults import Fault


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

    @app.post("/_emulator/choices", include_in_schema=False)
    async def person_choice(request: Request) -> Response:
        """A person changes a status themselves (``{"email", "subscription_id", "status"}``, optional
        ``at`` and ``source``): dated now unless ``at`` says otherwise, under a non-API source."""
        body = await request.json()
        try:
            extra = {k: body[k] for k in ("at", "source") if body.get(k)}
            stamp = backend.person_choice(
                body["email"], int(body["subscription_id"]), body["status"], **extra
            )
        except ApiProblem as problem:
            return JSONResponse(problem.body(), status_code=problem.status)
        return JSONResponse({"timestamp": stamp})

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
