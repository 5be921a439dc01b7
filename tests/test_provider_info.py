"""The provider is discoverable by Airflow: metadata valid, hook and connection type listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_hubspot_prefs import __version__, get_provider_info


def test_provider_info_matches_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-hubspot-prefs"
    assert info["versions"] == [__version__]
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "hubspot_prefs"
    fields = conn["conn-fields"]
    assert fields["client_secret"]["schema"]["format"] == "password"
    assert fields["api_version"]["schema"]["enum"] == ["v4", "2026-03", "2026-09"]
    assert conn["ui-field-behaviour"]["relabeling"]["password"] == "Private app access token"


def test_every_listed_module_imports():
    import importlib

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(kind, []):
            for module in entry["python-modules"]:
                importlib.import_module(module)
    module, _, cls = info["connection-types"][0]["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), cls).conn_type == "hubspot_prefs"


def airflow_cli(*args: str) -> str:
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=True,
    )
    return done.stdout


def test_airflow_cli_lists_the_provider_and_its_hook():
    providers = json.loads(airflow_cli("providers", "list", "-o", "json"))
    assert {"package_name": "airflow-provider-hubspot-prefs", "version": __version__}.items() <= next(
        p for p in providers if p["package_name"] == "airflow-provider-hubspot-prefs"
    ).items()
    hooks = json.loads(airflow_cli("providers", "hooks", "-o", "json"))
    ours = next(h for h in hooks if h["connection_type"] == "hubspot_prefs")
    assert ours["class"] == "airflow_provider_hubspot_prefs.hooks.hubspot_prefs.HubSpotPreferencesHook"
    assert ours["conn_id_attribute_name"] == "hubspot_conn_id"


def test_airflow_cli_shows_provider_metadata():
    short = json.loads(airflow_cli("providers", "get", "airflow-provider-hubspot-prefs", "-o", "json"))
    assert short == [{"Provider": "airflow-provider-hubspot-prefs", "Version": __version__}]
    (full,) = json.loads(
        airflow_cli("providers", "get", "airflow-provider-hubspot-prefs", "-f", "-o", "json")
    )
    assert full["name"] == "HubSpot Communication Preferences"
    assert full["connection-types"][0]["connection-type"] == "hubspot_prefs"


def _connections_test(conn_json: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT": conn_json,
    }
    return subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", "hubspot_prefs_default"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def test_airflow_connections_test_succeeds_and_fails_clearly(emulator):
    from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

    good = _connections_test(
        json.dumps(
            {"conn_type": "hubspot_prefs", "password": DEMO_TOKEN, "extra": {"base_url": emulator.url}}
        )
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Connection success!" in good.stdout
    (call,) = emulator.control("GET", "requests")["requests"]  # it really asked HubSpot (the emulator)
    assert (call["method"], call["path"], call["status"]) == (
        "GET",
        "/communication-preferences/v4/definitions",
        200,
    )

    bad = _connections_test(
        json.dumps(
            {"conn_type": "hubspot_prefs", "password": "pat-revoked", "extra": {"base_url": emulator.url}}
        )
    )
    output = bad.stdout + bad.stderr
    assert "Connection failed" in output and "INVALID_AUTHENTICATION" in output
    assert "pat-revoked" not in output
