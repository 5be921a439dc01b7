"""docs/connections.md: an OAuth connection (the emulator's demo public app) in the JSON form."""

from __future__ import annotations

import pathlib
from unittest import mock


def run(base_url: str, folder: pathlib.Path) -> None:
    with mock.patch.dict("os.environ"):  # the example sets a variable: undone after it
        # [START connection_oauth]
        import json
        import os

        from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

        os.environ["AIRFLOW_CONN_HUBSPOT_PREFS_OAUTH"] = json.dumps(
            {
                "conn_type": "hubspot_prefs",
                "extra": {
                    "client_id": "emulator-client-id",
                    "client_secret": "emulator-client-secret",
                    "refresh_token": "emulator-refresh-token",
                    "base_url": base_url,
                },
            }
        )
        hook = HubSpotPreferencesHook("hubspot_prefs_oauth")
        print(hook.settings)  # ConnectionSettings(conn_id='hubspot_prefs_oauth', ..., auth=oauth): no secret
        ok, message = hook.test_connection()
        # [END connection_oauth]
    assert "auth=oauth" in repr(hook.settings) and "emulator-client-secret" not in repr(hook.settings)
    assert ok, message
