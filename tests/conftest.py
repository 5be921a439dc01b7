"""Fixtures: one emulator per test session on a free port, reset before every test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

# Airflow reads its configuration at import time: give the whole session a throwaway home whose
# DAGs folder holds the example DAGs and the test DAGs (dag.test() runs DAGs from that folder).
_HOME = tempfile.mkdtemp(prefix="hubspot-prefs-airflow-")
_DAGS = Path(_HOME) / "dags"
_DAGS.mkdir()
_ROOT = Path(__file__).resolve().parent.parent
for _dag_file in [*(_ROOT / "example_dags").glob("*.py"), *(Path(__file__).parent / "dags").glob("*.py")]:
    (_DAGS / _dag_file.name).symlink_to(_dag_file)
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

from airflow_provider_hubspot_prefs.client import (  # noqa: E402 - after the environment is set
    AsyncHubSpotPreferencesClient,
    HubSpotPreferencesClient,
    PrivateAppTokenAuth,
    RetryPolicy,
)
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, EmulatorConfig, EmulatorServer  # noqa: E402

# Generous by default so that ordinary tests never meet the limiter; rate-limit tests lower it.
TEST_CONFIG = EmulatorConfig(rate_limit_max=100_000)
# Fast retries for tests that do not check the timing itself.
FAST_RETRY = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(**asdict(TEST_CONFIG))) as server:
        yield server


@pytest.fixture(autouse=True)
def own_work_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own work folder: the work stores, and the rate budget the processes of one
    machine share (a test's requests must not hold back the next test's)."""
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path_factory.mktemp("work")))


@pytest.fixture(autouse=True)
def fresh_portal(request: pytest.FixtureRequest) -> None:
    if "emulator" not in request.fixturenames:
        return
    server: EmulatorServer = request.getfixturevalue("emulator")
    server.backend.config.update(asdict(TEST_CONFIG))
    server.backend.reset()


@pytest.fixture
def make_client(emulator: EmulatorServer) -> Iterator[Callable[..., HubSpotPreferencesClient]]:
    made: list[HubSpotPreferencesClient] = []

    def factory(api_version: str = "v4", token: str = DEMO_TOKEN, **kwargs: Any) -> HubSpotPreferencesClient:
        kwargs.setdefault("retry_policy", FAST_RETRY)
        kwargs.setdefault("rate_limit", None)  # pacing off: these tests look at the server's answers
        client = HubSpotPreferencesClient(
            PrivateAppTokenAuth(token), base_url=emulator.url, api_version=api_version, **kwargs
        )
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def make_async_client(emulator: EmulatorServer) -> Callable[..., AsyncHubSpotPreferencesClient]:
    def factory(
        api_version: str = "v4", token: str = DEMO_TOKEN, **kwargs: Any
    ) -> AsyncHubSpotPreferencesClient:
        kwargs.setdefault("retry_policy", FAST_RETRY)
        kwargs.setdefault("rate_limit", None)
        return AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(token), base_url=emulator.url, api_version=api_version, **kwargs
        )

    return factory


def api_requests(server: EmulatorServer) -> list[dict[str, Any]]:
    """Requests the emulator received on its API (control calls excluded)."""
    return list(server.control("GET", "requests")["requests"])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium (``tests.browser``), saving downloads in ``tmp_path / "downloads"``; fails
    when it is not installed."""
    from .browser import chromium

    with chromium(tmp_path / "chromium-profile", tmp_path / "downloads") as driver:
        yield driver


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """The session's Airflow metadata database, migrated once (dag.test() needs it)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300
    )
    return _HOME


def connect_to_emulator(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, **extra: Any) -> str:
    """Point ``hubspot_prefs_default`` at the emulator (Airflow's environment-variable form), with
    ``extra`` added to or replacing the connection's extras; return the connection id."""
    import json

    # The session's emulator allows 100,000 per 10 s; the limiter stays on at that budget.
    extra = {"base_url": emulator.url, "rate_limit": 100_000, **extra}
    connection = {"conn_type": "hubspot_prefs", "password": DEMO_TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT", json.dumps(connection))
    return "hubspot_prefs_default"


@pytest.fixture
def hubspot_connection(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``hubspot_prefs_default`` pointing at the emulator."""
    return connect_to_emulator(monkeypatch, emulator)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``-n 2`` (./scripts/test): the real deployments on one worker, one after another (each
    is several Airflow processes, and two at once would crowd 2 cores), every other test spread
    over both. The deployments are the largest unit, so xdist hands them out first: the other
    worker runs the rest meanwhile. (``--dist loadgroup`` would do this from ``xdist_group``
    marks, but pytest-xdist 3.8 cannot rename node ids on pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class DeploymentsOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "deployments" if nodeid.startswith("tests/deployments/") else nodeid

    return DeploymentsOnOneWorker(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test has a node id of its own: pytest-xdist (./scripts/test) schedules by node id and
    runs one test of those sharing one, silently dropping the others."""
    repeated = sorted(nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1)
    if repeated:
        raise pytest.UsageError(f"tests sharing a node id (xdist would run one of each): {repeated}")
