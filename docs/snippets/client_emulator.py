"""docs/emulator.md: the emulator from Python, on a thread of its own, driven by its control surface.

It starts an emulator of its own (``base_url``, the test session's emulator, is not used)."""

from __future__ import annotations

import pathlib


def run(base_url: str, folder: pathlib.Path) -> None:
    # [START client_emulator]
    from airflow_provider_hubspot_prefs.client import HubSpotPreferencesClient, PrivateAppTokenAuth
    from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(processing_delay_ms=500)) as emu:  # a free port on 127.0.0.1
        # A contact who opted out of all email before, and one 429 on the next batch call.
        emu.control(
            "POST",
            "contacts",
            json={"emails": ["gone@example.com"], "unsubscribed_at": "2026-11-01T00:00:00Z"},
        )
        emu.control("POST", "faults", json={"status": 429, "retry_after": 1, "path_contains": "/batch/"})

        with HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), base_url=emu.url) as client:
            answer = client.batch_unsubscribe_all(["jane@example.com", "gone@example.com"])
        print(answer.status.value)  # PENDING: the emulator applies the write 0.5 s later

        statuses = [r["status"] for r in emu.control("GET", "requests")["requests"]]
        print(statuses)  # [429, 200]: the client waited out the Retry-After
        print(emu.control("GET", "changes"))  # {'total': ..., 'repeated': []}: nothing changed twice
    # [END client_emulator]
    assert answer.status.value == "PENDING"
    assert statuses == [429, 200], statuses
