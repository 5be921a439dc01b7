"""Demo: the real emulator process, an Airflow connection, and the hook's client calling it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN
from airflow_provider_hubspot_prefs.emulator.server import free_port


def main() -> int:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_hubspot_prefs.emulator", "--port", str(port)]
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/_emulator/config", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or emulator.poll() is not None:
                    raise SystemExit("the emulator did not start") from None
                time.sleep(0.1)

        # The same connection a user would create, in Airflow's environment-variable form.
        os.environ["AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT"] = json.dumps(
            {"conn_type": "hubspot_prefs", "password": DEMO_TOKEN, "extra": {"base_url": url}}
        )
        from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

        hook = HubSpotPreferencesHook()
        ok, message = hook.test_connection()
        print(f"test_connection: {ok} - {message}")
        client = hook.get_conn()
        contacts = ["alice@example.com", "bob@example.org", "someone.new@example.com"]
        result = client.batch_unsubscribe_all(contacts, verbose=True)
        print(f"POST batch/unsubscribe-all -> {result.status.value}")
        print(result.model_dump_json(by_alias=True, indent=2, exclude_none=True)[:1500])
        check = client.batch_read_unsubscribe_all(contacts)
        for row in check.results:
            wide = row.wide_statuses[0]
            print(f"  {row.subscriber_id_string}: {wide.wide_status_type.value} {wide.status.value}")
        hook.close()
        return (
            0 if ok and all(r.wide_statuses[0].status.value == "UNSUBSCRIBED" for r in check.results) else 1
        )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
