"""OAuth 2.0 refresh-token flow against the emulator's /oauth/v1/token."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from airflow_provider_hubspot_prefs.client import (
    AsyncHubSpotPreferencesClient,
    HubSpotAuthenticationError,
    HubSpotPreferencesClient,
    OAuthRefreshAuth,
    token_url,
)
from airflow_provider_hubspot_prefs.emulator import (
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
)

from ..conftest import FAST_RETRY


def oauth(emulator, refresh_token=DEMO_REFRESH_TOKEN, secret=DEMO_OAUTH_CLIENT_SECRET):
    return OAuthRefreshAuth(
        client_id=DEMO_OAUTH_CLIENT_ID,
        client_secret=secret,
        refresh_token=refresh_token,
        token_url=token_url(emulator.url),
    )


def token_requests(emulator) -> int:
    return int(emulator.control("GET", "requests")["tokenRequests"])


def test_access_token_is_fetched_once_and_cached(emulator):
    auth = oauth(emulator)
    with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
        for _ in range(5):
            client.get_definitions()
    assert token_requests(emulator) == 1 and auth.refresh_count == 1


def test_refreshes_shortly_before_expiry(emulator):
    emulator.control("PATCH", "config", json={"access_token_ttl": 2})
    auth = oauth(emulator)
    with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
        client.get_definitions()
        time.sleep(1.0)
        client.get_definitions()  # 1.0 s into a 2 s token: still valid, margin is 0.2 s
        assert token_requests(emulator) == 1
        time.sleep(0.9)  # 1.9 s: inside the margin, refreshed before HubSpot would say 401
        client.get_definitions()
    assert token_requests(emulator) == 2
    assert all(r["status"] == 200 for r in emulator.control("GET", "requests")["requests"])


def test_revoked_access_token_is_refreshed_once_on_401(emulator):
    auth = oauth(emulator)
    with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
        client.get_definitions()
        emulator.control("POST", "revoke", json={"token": auth._access_token})
        assert client.get_status("alice@example.com").results
    statuses = [
        (r["path"].split("/")[1], r["status"]) for r in emulator.control("GET", "requests")["requests"]
    ]
    cp = "communication-preferences"
    assert statuses == [("oauth", 200), (cp, 200), (cp, 401), ("oauth", 200), (cp, 200)]
    assert token_requests(emulator) == 2


def test_bad_refresh_token_fails_clearly_without_leaking(emulator):
    auth = oauth(emulator, refresh_token="stale-refresh-token")
    client = HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY)
    with client, pytest.raises(HubSpotAuthenticationError) as err:
        client.get_definitions()
    assert err.value.category == "BAD_REFRESH_TOKEN"
    text = str(err.value) + repr(err.value) + repr(auth)
    assert "stale-refresh-token" not in text and DEMO_OAUTH_CLIENT_SECRET not in text


def test_bad_client_secret_is_rejected(emulator):
    client = HubSpotPreferencesClient(oauth(emulator, secret="wrong"), base_url=emulator.url)
    with client, pytest.raises(HubSpotAuthenticationError, match="BAD_CLIENT_ID"):
        client.get_definitions()


def test_async_client_uses_the_same_flow(emulator):
    auth = oauth(emulator)

    async def go():
        async with AsyncHubSpotPreferencesClient(
            auth, base_url=emulator.url, retry_policy=FAST_RETRY
        ) as client:
            await client.get_definitions()
            emulator.control("POST", "revoke", json={"token": auth._access_token})
            return await client.get_definitions()

    assert asyncio.run(go()).results
    assert token_requests(emulator) == 2


def test_oauth_refresh_is_single_flight_across_threads(emulator):
    """Item 14, sync client: eight threads make their first call at once."""
    emulator.control("PATCH", "config", json={"latency_ms": 100})  # the token request takes a while
    with HubSpotPreferencesClient(oauth(emulator), base_url=emulator.url, rate_limit=None) as client:
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def call() -> None:
            barrier.wait()
            try:
                client.get_definitions()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors and token_requests(emulator) == 1


def test_oauth_refresh_is_single_flight_across_tasks(emulator):
    """Item 14, async client: eight tasks make their first call at once."""
    emulator.control("PATCH", "config", json={"latency_ms": 100})

    async def calls() -> None:
        async with AsyncHubSpotPreferencesClient(
            oauth(emulator), base_url=emulator.url, rate_limit=None
        ) as client:
            await asyncio.gather(*(client.get_definitions() for _ in range(8)))

    asyncio.run(calls())
    assert token_requests(emulator) == 1
