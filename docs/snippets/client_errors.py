"""docs/client.md: what the client raises, and what an error carries."""

from __future__ import annotations

import pathlib

import httpx


def run(base_url: str, folder: pathlib.Path) -> None:
    # The emulator's way to make a token that lacks the batch scopes (not part of the page).
    scopes = ["communication_preferences.read_write"]
    httpx.post(f"{base_url}/_emulator/tokens", json={"token": "pat-no-batch-scopes", "scopes": scopes})
    seen: list[str] = []
    # [START client_errors]
    from airflow_provider_hubspot_prefs.client import (
        HubSpotAPIError,
        HubSpotInputError,
        HubSpotPermissionError,
        HubSpotPreferencesClient,
        PrivateAppTokenAuth,
    )

    client = HubSpotPreferencesClient(PrivateAppTokenAuth("pat-emulator-demo-token"), base_url=base_url)
    try:
        client.set_status("jane@example.com", status_state="SUBSCRIBE", subscription_id=1001)
    except HubSpotInputError as exc:  # refused before any request
        print(exc)  # status_state: 'SUBSCRIBE' is not one of SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED
        seen.append(exc.field)

    try:
        client.set_status("jane@example.com", status_state="SUBSCRIBED", subscription_id=9999)
    except HubSpotAPIError as exc:  # HubSpot's answer: HubSpotValidationError, a 400
        print(exc.status_code, exc.category, exc.sub_category, exc.message, exc.correlation_id)
        seen.append(type(exc).__name__)

    limited = HubSpotPreferencesClient(PrivateAppTokenAuth("pat-no-batch-scopes"), base_url=base_url)
    try:
        limited.batch_read_statuses(["jane@example.com"])
    except HubSpotPermissionError as exc:  # 403 MISSING_SCOPES
        print(exc.missing_scopes)  # ['communication_preferences.statuses.batch.read']
        seen.extend(exc.missing_scopes)
    # [END client_errors]
    client.close()
    limited.close()
    assert seen == ["status_state", "HubSpotValidationError", "communication_preferences.statuses.batch.read"]
