"""The plugin inside Airflow's real api-server app, served by uvicorn on loopback, with real users.

The app is ``airflow.api_fastapi.app.create_app()``: it loads the provider's plugin through the
``airflow.plugins`` entry point and mounts it as the api-server does. Users log in through the
auth manager's own ``/auth/token``; their tokens are checked, and revoked on logout, by Airflow.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from airflow_provider_hubspot_prefs.emulator.server import free_port
from airflow_provider_hubspot_prefs.ledger.outcomes import LEDGER_COLUMNS

PASSWORDS = {"admin": "admin-pw", "auditor": "auditor-pw", "analyst": "analyst-pw", "viewer": "viewer-pw"}
INDEX_KEY = "plugin-tests-index-key"


class ApiServer:
    """Airflow's api-server app on a background uvicorn, and a way to log users in."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="info", lifespan="on")
        )
        self._thread = threading.Thread(target=self._server.run, name="airflow-api-server", daemon=True)

    def start(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Airflow's api-server app did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def token(self, user: str) -> str:
        answer = httpx.post(f"{self.url}/auth/token", json={"username": user, "password": PASSWORDS[user]})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["access_token"])

    def browser(self, user: str | None) -> httpx.Client:
        """A client that sends what the UI's iframe sends: the ``_token`` cookie (none for ``None``)."""
        client = httpx.Client(base_url=self.url, timeout=60)
        if user is not None:
            client.cookies.set("_token", self.token(user))
        return client


@pytest.fixture(scope="session")
def api_server(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__AUTH_MANAGER", "tests.plugins.restricted_auth.RestrictedAuthManager")
        patch.setenv(
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
            "admin:admin,auditor:viewer,analyst:viewer,viewer:viewer",
        )
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "plugin-tests-jwt-secret-" + "0123456789abcdef" * 4)
        from airflow.api_fastapi.app import create_app, purge_cached_app

        server = ApiServer(create_app()).start()
        try:
            yield server
        finally:
            server.stop()
            purge_cached_app()


@pytest.fixture
def index_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own index (the api-server reads the configuration at each request)."""
    root = tmp_path / "index"
    monkeypatch.setenv("AIRFLOW__HUBSPOT_PREFS__INDEX_PATH", str(root))
    monkeypatch.setenv("AIRFLOW__HUBSPOT_PREFS__INDEX_KEY", INDEX_KEY)
    return root


def write_ledger(path: Path, rows: list[Mapping[str, Any]]) -> Path:
    """A ledger file of this provider's format (the columns of this version, in order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(LEDGER_COLUMNS)
        for row in rows:
            writer.writerow(str(row.get(column, "")) for column in LEDGER_COLUMNS)
    return path


@pytest.fixture
def index_ledger(index_root: Path) -> Callable[..., Any]:
    """Index a ledger file as a task of a run would (``ledger.index.write_segment``)."""
    from airflow_provider_hubspot_prefs.ledger import index

    def make(ledger: Path, dag_id: str, run_id: str, task_id: str, map_index: int = -1, **extra: Any) -> Any:
        where = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
        entry = index.LedgerEntry(**where, ledger_path=str(ledger), **extra)
        return index.write_segment(entry, INDEX_KEY.encode(), root=str(index_root))

    return make
