"""The Airflow hook: connection parsing, clients it builds, test_connection, secret masking."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_hubspot_prefs.client import ApiVersion, OAuthRefreshAuth, PrivateAppTokenAuth
from airflow_provider_hubspot_prefs.emulator import (
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_TOKEN,
)
from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import (
    HubSpotConnectionError,
    HubSpotPreferencesHook,
    parse_connection,
)


def set_connection(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "hubspot_prefs", **fields})
    )


@pytest.mark.parametrize(
    ("password", "extras", "message"),
    [
        (None, {}, "no credentials"),
        ("", {"client_id": "x"}, "lacks client_secret, refresh_token"),
        ("tok", {"api_version": "v3"}, "v4, 2026-03, 2026-09"),
        ("tok", {"base_url": "http://hubspot.internal"}, "https"),
        ("tok", {"timeout": "soon"}, "malformed extra"),
    ],
)
def test_bad_connections_are_explained(password, extras, message):
    with pytest.raises(HubSpotConnectionError, match=message):
        parse_connection("c", password, None, extras)


def test_connection_fields_and_prefixed_extras():
    s = parse_connection(
        "c",
        None,
        None,
        {
            "extra__hubspot_prefs__client_id": "id",
            "client_secret": "sec",
            "refresh_token": "ref",
            "api_version": "2026-03",
            "business_unit_id": "7",
            "timeout": "12.5",
            "max_retries": 2,
            "base_url": "https://proxy.example.com/",
        },
    )
    assert (s.client_id, s.api_version, s.business_unit_id, s.timeout, s.max_retries) == (
        "id",
        ApiVersion.V2026_03,
        7,
        12.5,
        2,
    )
    assert isinstance(s.auth(), OAuthRefreshAuth)
    assert "sec" not in repr(s) and "ref" not in repr(s)
    token = parse_connection("c", "pat-1", None, {})
    assert isinstance(token.auth(), PrivateAppTokenAuth)
    assert token.base_url == "https://api.hubapi.com" and token.api_version is ApiVersion.V4


def test_test_connection_succeeds_against_the_emulator(monkeypatch, emulator):
    set_connection(
        monkeypatch, "hubspot_prefs_default", password=DEMO_TOKEN, extra={"base_url": emulator.url}
    )
    ok, message = HubSpotPreferencesHook().test_connection()
    assert ok, message
    assert "6 subscription definitions" in message


def test_test_connection_reports_a_bad_token(monkeypatch, emulator):
    set_connection(monkeypatch, "hs_bad", password="pat-wrong", extra={"base_url": emulator.url})
    ok, message = HubSpotPreferencesHook("hs_bad").test_connection()
    assert not ok
    assert "HubSpotAuthenticationError" in message and "INVALID_AUTHENTICATION" in message
    assert "pat-wrong" not in message


def test_hook_builds_clients_from_the_connection(monkeypatch, emulator):
    set_connection(
        monkeypatch,
        "hs_oauth",
        extra={
            "base_url": emulator.url,
            "client_id": DEMO_OAUTH_CLIENT_ID,
            "client_secret": DEMO_OAUTH_CLIENT_SECRET,
            "refresh_token": DEMO_REFRESH_TOKEN,
            "api_version": "2026-03",
            "business_unit_id": 1,
        },
    )
    hook = HubSpotPreferencesHook("hs_oauth")
    client = hook.get_conn()
    assert client is hook.get_conn()  # pooled once per hook
    assert client.api_version is ApiVersion.V2026_03 and hook.business_unit_id == 1
    assert client.get_definitions(business_unit_id=hook.business_unit_id).results[0].id == "2001"
    assert emulator.control("GET", "requests")["requests"][-1]["path"].startswith(
        "/communication-preferences/2026-03/"
    )

    override = HubSpotPreferencesHook("hs_oauth", api_version="2026-09")
    assert override.get_conn().api_version is ApiVersion.V2026_09
    hook.close()
    override.close()


def test_async_conn(monkeypatch, emulator):
    set_connection(monkeypatch, "hs_async", password=DEMO_TOKEN, extra={"base_url": emulator.url})

    async def go():
        client = await HubSpotPreferencesHook("hs_async").get_async_conn()
        try:
            return await client.get_status("alice@example.com")
        finally:
            await client.aclose()

    assert asyncio.run(go()).results


def test_every_client_of_a_hook_shares_one_token_state(monkeypatch, emulator):
    """Review of issue 23, 6: a task sends with ``get_async_conn()`` and reads back with
    ``get_conn()``. Under strict rotation the connection's refresh token works once: a second
    client with a token state of its own failed with BAD_REFRESH_TOKEN after the writes went out."""
    set_connection(
        monkeypatch,
        "hs_rotating",
        extra={
            "base_url": emulator.url,
            "client_id": DEMO_OAUTH_CLIENT_ID,
            "client_secret": DEMO_OAUTH_CLIENT_SECRET,
            "refresh_token": DEMO_REFRESH_TOKEN,
        },
    )
    emulator.control("PATCH", "config", json={"refresh_token_rotation": "strict"})
    hook = HubSpotPreferencesHook("hs_rotating")

    async def send() -> None:  # what the batch operator sends with
        async with await hook.get_async_conn() as client:
            await client.get_definitions()

    asyncio.run(send())
    assert hook.get_conn().get_definitions().results  # what its wait / confirm_ledger reads with
    assert emulator.control("GET", "requests")["tokenRequests"] == 1  # the access token is shared too
    # A refresh after the token was revoked uses the rotated refresh token the first client got.
    emulator.control("POST", "revoke", json={"token": hook.get_conn()._http.auth._access_token})
    assert asyncio.run(hook_definitions(hook)).results
    hook.close()


async def hook_definitions(hook: HubSpotPreferencesHook):
    async with await hook.get_async_conn() as client:
        return await client.get_definitions()


def test_secrets_are_registered_with_the_masker(monkeypatch, emulator):
    from airflow.sdk._shared.secrets_masker import _secrets_masker  # the same module in Airflow 3.2 and 3.3

    set_connection(
        monkeypatch,
        "hs_mask",
        password="pat-mask-me-0123456789",
        extra={"base_url": emulator.url, "client_id": "", "client_secret": ""},
    )
    HubSpotPreferencesHook("hs_mask").settings  # noqa: B018 - parsing the connection registers the secrets
    assert "pat-mask-me-0123456789" not in _secrets_masker().redact("token is pat-mask-me-0123456789")


def test_rate_limit_extras(monkeypatch, emulator):
    set_connection(
        monkeypatch,
        "hs_paced",
        password=DEMO_TOKEN,
        extra={"base_url": emulator.url, "rate_limit": 50, "rate_limit_interval": 5},
    )
    hook = HubSpotPreferencesHook("hs_paced")
    limiter = hook.get_conn()._core.limiter
    assert (limiter.max_requests, limiter.interval) == (50, 5.0)

    async def shared():
        client = await hook.get_async_conn()
        await client.aclose()
        return client._core.limiter

    assert asyncio.run(shared()) is limiter  # one budget for the hook's sync and async clients
    set_connection(
        monkeypatch, "hs_unpaced", password=DEMO_TOKEN, extra={"base_url": emulator.url, "rate_limit": 0}
    )
    assert HubSpotPreferencesHook("hs_unpaced").get_conn()._core.limiter is None
    default = parse_connection("c", "tok", None, {})
    assert (default.rate_limit, default.rate_limit_interval) == (190, 10.0)


@pytest.mark.parametrize(
    "form",
    [
        "uri",  # what the README shows for AIRFLOW_CONN_... in URI form
        "json",
    ],
)
def test_environment_variable_forms(monkeypatch, emulator, form):
    from urllib.parse import quote

    if form == "uri":
        value = f"hubspot-prefs://:{DEMO_TOKEN}@/?api_version=2026-03&base_url={quote(emulator.url, safe='')}"
    else:
        value = json.dumps(
            {
                "conn_type": "hubspot_prefs",
                "password": DEMO_TOKEN,
                "extra": {"api_version": "2026-03", "base_url": emulator.url},
            }
        )
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT", value)
    hook = HubSpotPreferencesHook()
    assert hook.api_version is ApiVersion.V2026_03
    assert hook.get_conn().get_definitions().results
    assert emulator.control("GET", "requests")["requests"][-1]["path"].startswith(
        "/communication-preferences/2026-03/"
    )
