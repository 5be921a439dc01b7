"""docs/client.md: the hook, from the connection hubspot_prefs_default (here an environment variable)."""

from __future__ import annotations

import json
import os
import pathlib
from unittest import mock


def run(base_url: str, folder: pathlib.Path) -> None:
    connection = {
        "conn_type": "hubspot_prefs",
        "password": "pat-emulator-demo-token",
        "extra": {"base_url": base_url},
    }
    with mock.patch.dict(os.environ, {"AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT": json.dumps(connection)}):
        # [START client_hook]
        import asyncio

        from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

        hook = HubSpotPreferencesHook("hubspot_prefs_default", api_version="2026-03")  # overrides the extra
        client = hook.get_conn()  # one pooled client per hook, paced by the connection's budget
        client.set_status(
            "jane@example.com",
            status_state="UNSUBSCRIBED",
            subscription_id=1001,
            legal_basis="LEGITIMATE_INTEREST_CLIENT",
            legal_basis_explanation="Withdrawal by email, ticket 4711",
        )

        async def read_back() -> object:
            async_client = await hook.get_async_conn()  # a new one per event loop
            try:
                return await async_client.batch_read_statuses(["jane@example.com"])
            finally:
                await async_client.aclose()

        answer = asyncio.run(read_back())
        hook.close()
        # [END client_hook]
    (contact,) = answer.results  # type: ignore[attr-defined]
    assert {s.subscription_id: s.status.value for s in contact.statuses}[1001] == "UNSUBSCRIBED"
