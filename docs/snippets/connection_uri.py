"""docs/connections.md: a URI for AIRFLOW_CONN_..., built by Airflow so that every part is encoded."""

from __future__ import annotations

import pathlib
from unittest import mock


def run(base_url: str, folder: pathlib.Path) -> None:
    with mock.patch.dict("os.environ"):  # the example sets a variable: undone after it
        # [START connection_uri]
        import json
        import os

        from airflow.sdk import Connection

        from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

        uri = Connection(
            conn_id="hubspot_prefs_default",
            conn_type="hubspot_prefs",
            password="pat-emulator-demo-token",
            extra=json.dumps({"base_url": base_url, "api_version": "2026-09", "business_unit_id": 0}),
        ).get_uri()
        print(uri)  # hubspot-prefs://:pat-emulator-demo-token@/?__extra__=%7B%22base_url%22...
        os.environ["AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT"] = uri

        ok, message = HubSpotPreferencesHook("hubspot_prefs_default").test_connection()
        # [END connection_uri]
    assert uri.startswith("hubspot-prefs://:pat-emulator-demo-token@/?")
    assert ok and "2026-09" in message, message
