"""TLS: certificates are always verified, a private CA can be trusted, plain HTTP only on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_hubspot_prefs.client import (
    HubSpotPreferencesClient,
    HubSpotTransportError,
    PrivateAppTokenAuth,
)
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, EmulatorServer
from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotConnectionError, HubSpotPreferencesHook

from ..tls_support import make_certificates


@pytest.fixture(scope="module")
def https_emulator(tmp_path_factory):
    ca, cert, key = make_certificates(tmp_path_factory.mktemp("tls"))
    with EmulatorServer(ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_ca=str(ca)) as server:
        server.ca = str(ca)
        yield server


def use_connection(monkeypatch, **extra):
    connection = {"conn_type": "hubspot_prefs", "password": DEMO_TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT", json.dumps(connection))


def test_unknown_certificate_is_refused_before_any_request(https_emulator, monkeypatch):
    use_connection(monkeypatch, base_url=https_emulator.url, max_retries=0)
    with pytest.raises(HubSpotTransportError, match="CERTIFICATE_VERIFY_FAILED"):
        HubSpotPreferencesHook().get_conn().get_definitions()
    assert https_emulator.control("GET", "requests")["requests"] == []  # the token never left


def test_private_ca_bundle_is_trusted(https_emulator, monkeypatch):
    use_connection(monkeypatch, base_url=https_emulator.url, ca_bundle=https_emulator.ca)
    assert HubSpotPreferencesHook().get_conn().get_definitions().results
    assert HubSpotPreferencesHook().test_connection()[0]


def test_async_client_verifies_too(https_emulator, monkeypatch):
    use_connection(monkeypatch, base_url=https_emulator.url, max_retries=0)

    async def call() -> None:
        client = await HubSpotPreferencesHook().get_async_conn()
        await client.get_definitions()

    with pytest.raises(HubSpotTransportError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(call())


@pytest.mark.parametrize("name", ["verify", "verify_ssl", "insecure"])
def test_verification_cannot_be_turned_off(monkeypatch, name):
    use_connection(monkeypatch, **{name: False})
    with pytest.raises(HubSpotConnectionError, match="TLS certificate verification cannot be turned off"):
        HubSpotPreferencesHook().get_conn()


def test_unreadable_ca_bundle_is_a_clear_error(monkeypatch, tmp_path):
    use_connection(monkeypatch, ca_bundle=str(tmp_path / "missing.pem"))
    with pytest.raises(HubSpotConnectionError, match="ca_bundle"):
        HubSpotPreferencesHook().get_conn()


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("https://api.hubapi.com", True),
        ("http://api.hubapi.com", False),
        ("http://10.0.0.5:8080", False),
        ("ftp://api.hubapi.com", False),
    ],
)
def test_plain_http_only_on_loopback(url, accepted):
    if accepted:
        HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), base_url=url).close()
    else:
        with pytest.raises(ValueError, match="base_url"):
            HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), base_url=url)
