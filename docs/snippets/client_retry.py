"""docs/client.md: tuning retries and pacing; a 503 burst retried to success."""

from __future__ import annotations

import pathlib

import httpx


def run(base_url: str, folder: pathlib.Path) -> None:
    # The emulator answers the next two requests 503 (not part of the page).
    httpx.post(f"{base_url}/_emulator/faults", json={"status": 503, "count": 2})
    # [START client_retry]
    from airflow_provider_hubspot_prefs.client import (
        HubSpotPreferencesClient,
        PrivateAppTokenAuth,
        RetryPolicy,
    )

    policy = RetryPolicy(
        max_retries=3,  # 5xx and lost connections (429s have their own limits below)
        initial_delay=0.2,  # backoff 0.2, 0.4, 0.8 s ... capped at max_delay, less up to 25% jitter
        rate_limit_patience=60,  # seconds a request may spend waiting out 429s
        unreachable_timeout=10,  # no answer at all for this long: HubSpotUnreachableError
    )
    with HubSpotPreferencesClient(
        PrivateAppTokenAuth("pat-emulator-demo-token"),
        base_url=base_url,
        retry_policy=policy,
        rate_limit=100,  # requests per rate_limit_interval (10 s) this client allows itself
        timeout=15,
    ) as client:
        definitions = client.get_definitions()  # two 503s, retried, then the answer
    # [END client_retry]
    assert definitions.results
    log = httpx.get(f"{base_url}/_emulator/requests").json()["requests"]
    assert [r["status"] for r in log[-3:]] == [503, 503, 200]
