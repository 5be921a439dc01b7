"""docs/client.md: OAuth for a public app (the emulator's demo client and refresh token)."""

from __future__ import annotations

import pathlib


def run(base_url: str, folder: pathlib.Path) -> None:
    # [START client_oauth]
    from airflow_provider_hubspot_prefs.client import HubSpotPreferencesClient, OAuthRefreshAuth, token_url

    auth = OAuthRefreshAuth(
        client_id="emulator-client-id",
        client_secret="emulator-client-secret",
        refresh_token="emulator-refresh-token",
        token_url=token_url(base_url),  # <base_url>/oauth/v1/token
    )
    with HubSpotPreferencesClient(auth, base_url=base_url) as client:
        definitions = client.get_definitions()  # the first request fetches an access token
        print([d.name for d in definitions.results], auth.refresh_count)  # [...] 1
    # [END client_oauth]
    assert definitions.results and auth.refresh_count == 1
