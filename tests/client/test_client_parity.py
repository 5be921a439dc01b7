"""The synchronous and asynchronous clients are twins: same methods, same signatures, same docs."""

from __future__ import annotations

import inspect

from airflow_provider_hubspot_prefs.client import AsyncHubSpotPreferencesClient, HubSpotPreferencesClient

# The only methods that differ by name: closing, and the context-manager protocol.
OWN = {"close", "aclose"}


def public(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and callable(member) and name not in OWN
    }


def test_both_clients_have_the_same_public_methods():
    assert set(public(HubSpotPreferencesClient)) == set(public(AsyncHubSpotPreferencesClient))
    assert len(public(HubSpotPreferencesClient)) >= 15


def test_every_twin_takes_the_same_parameters_and_returns_the_same_type():
    sync_methods, async_methods = public(HubSpotPreferencesClient), public(AsyncHubSpotPreferencesClient)
    for name, method in sync_methods.items():
        twin = async_methods[name]
        assert inspect.signature(method) == inspect.signature(twin), name
        assert inspect.iscoroutinefunction(twin) and not inspect.iscoroutinefunction(method), name


def test_every_method_is_documented_and_the_twins_say_the_same():
    for name, method in public(HubSpotPreferencesClient).items():
        twin = public(AsyncHubSpotPreferencesClient)[name]
        assert method.__doc__, name
        assert twin.__doc__ == method.__doc__, name


def test_the_constructors_take_the_same_settings_but_the_transport():
    sync = dict(inspect.signature(HubSpotPreferencesClient.__init__).parameters)
    asynchronous = dict(inspect.signature(AsyncHubSpotPreferencesClient.__init__).parameters)
    assert sync.pop("transport").annotation != asynchronous.pop("transport").annotation
    assert sync == asynchronous
