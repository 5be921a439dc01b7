"""Run the emulator with uvicorn: in the foreground (CLI) or on a background thread (tests, demos)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from .app import create_app
from .backend import PortalBackend
from .config import EmulatorConfig


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmulatorServer:
    """The emulator on a background thread, listening on ``host:port`` (a free port by default).

    Use it as a context manager; ``url`` is the base URL to give the client or the connection,
    ``backend`` the portal's state, and ``control`` talks to ``/_emulator/*`` over HTTP.
    With ``ssl_certfile``/``ssl_keyfile`` it serves HTTPS (``control`` then trusts ``ssl_ca``).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca: str | None = None,
    ) -> None:
        self.backend = PortalBackend(config)
        self.host = host
        self.port = port or free_port(host)
        self.scheme = "https" if ssl_certfile else "http"
        self._verify: Any = ssl.create_default_context(cafile=ssl_ca) if ssl_ca else True
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.backend),
                host=self.host,
                port=self.port,
                log_level="warning",
                lifespan="off",
                access_log=False,
                ssl_certfile=ssl_certfile,
                ssl_keyfile=ssl_keyfile,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, name=f"hubspot-emulator-{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HubSpot emulator did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the emulator's control surface, e.g. ``control("PATCH", "config", json={...})``."""
        url = f"{self.url}/_emulator/{path}"
        response = httpx.request(method, url, timeout=10, verify=self._verify, **kwargs)
        response.raise_for_status()
        return response.json()
