"""The plugin's FastAPI app, mounted by Airflow's api-server at ``/hubspot-prefs``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]


class NoStore:
    """ASGI middleware: every answer, errors and streamed downloads included, says not to cache it.

    The answers hold ledger rows and addresses; a browser or proxy cache would keep them after
    logout. Written at the ASGI level so that it needs no buffering of streamed bodies.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                kept = [(k, v) for k, v in headers if k.lower() not in (b"cache-control", b"pragma")]
                message = {**message, "headers": [*kept, *NO_STORE]}
            await send(message)

        await self.app(scope, receive, send_no_store)


def create_app() -> FastAPI:
    """The views' app: pages, their assets and the JSON API, every route behind Airflow's auth manager."""
    from fastapi import FastAPI

    from . import api, pages

    app = FastAPI(
        title="HubSpot Preferences ledgers",
        description="The ledgers of airflow-provider-hubspot-prefs: task-instance and run views, lookup.",
        # The API's own docs would be one more endpoint to guard; the routes' docstrings say it.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(pages.router)
    app.include_router(api.router)
    app.add_middleware(NoStore)
    return app


class LazyApp:
    """The ASGI app Airflow mounts: builds the FastAPI app on its first request.

    Every Airflow process loads plugins (schedulers and workers too); only the api-server ever
    calls this, so the others never import FastAPI routes, the auth manager's models or the hook.
    """

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_app()  # two first requests at once build two apps: harmless
        await self._app(scope, receive, send)
