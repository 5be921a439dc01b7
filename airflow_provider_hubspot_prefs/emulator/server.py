"""Run the emulator with uvicorn: in the foreground (CLI) or on a background thread (tests, demos)."""

from __future__ import annotations

import socket
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
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.backend = PortalBackend(config)
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.backend),
                host=self.host,
                port=self.port,
                log_level="warning",
                lifespan="off",
                access_log=False,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, name=f"hubspot-emulator-{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
        response = httpx.request(method, f"{self.url}/_emulator/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()
