"""docs/connections.md: the connection as an environment variable (JSON form), tested by the hook."""

from __future__ import annotations

import pathlib
from unittest import mock


def run(base_url: str, folder: pathlib.Path) -> None:
    with mock.patch.dict("os.environ"):  # the example sets a variable: undone after it
        # [START connection_json]
        import json
        import os

        from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

        os.environ["AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT"] = json.dumps(
            {
                "conn_type": "hubspot_prefs",
                "password": "pat-emulator-demo-token",
                "extra": {"base_url": base_url, "api_version": "2026-03", "rate_limit": 100},
            }
        )
        ok, message = HubSpotPreferencesHook("hubspot_prefs_default").test_connection()
        print(ok, message)
        # True Connected to HubSpot Communication Preferences 2026-03 at http://...: 6 subscription ...
        # [END connection_json]
    assert ok, message
    assert "2026-03" in message and "subscription definitions" in message
