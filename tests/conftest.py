"""Fixtures: one emulator per test session on a free port, reset before every test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import pytest

# Airflow reads its home at import time: give the whole session a throwaway one.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="hubspot-prefs-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_hubspot_prefs.client import (
    AsyncHubSpotPreferencesClient,
    HubSpotPreferencesClient,
    PrivateAppTokenAuth,
    RetryPolicy,
)
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, EmulatorConfig, EmulatorServer

# Generous by default so that ordinary tests never meet the limiter; rate-limit tests lower it.
TEST_CONFIG = EmulatorConfig(rate_limit_max=100_000)
# Fast retries for tests that do not check the timing itself.
FAST_RETRY = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(**asdict(TEST_CONFIG))) as server:
        yield server


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
        return AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(token), base_url=emulator.url, api_version=api_version, **kwargs
        )

    return factory


def api_requests(server: EmulatorServer) -> list[dict[str, Any]]:
    """Requests the emulator received on its API (control calls excluded)."""
    return list(server.control("GET", "requests")["requests"])
