"""docs/client.md: the synchronous client with a private app's token: one status, a batch, a read."""

from __future__ import annotations

import pathlib


def run(base_url: str, folder: pathlib.Path) -> None:
    # [START client_quickstart]
    from airflow_provider_hubspot_prefs.client import HubSpotPreferencesClient, PrivateAppTokenAuth

    with HubSpotPreferencesClient(
        PrivateAppTokenAuth("pat-emulator-demo-token"),  # a private app's access token
        base_url=base_url,  # default https://api.hubapi.com
        api_version="2026-03",  # default v4
    ) as client:
        answer = client.set_status(
            "jane@example.com",
            status_state="SUBSCRIBED",
            subscription_id=1001,
            legal_basis="CONSENT_WITH_NOTICE",
            legal_basis_explanation="Web form, 2026-11-24",
        )
        (status,) = answer.results
        print(answer.status.value, status.set_status_success_reason, answer.correlation_id)

        opted_out = client.batch_unsubscribe_all(["a@example.com", "b@example.com"], verbose=True)
        for contact in opted_out.results:
            print(contact.subscriber_id_string, [s.status.value for s in contact.statuses])

        read = client.batch_read_statuses(["jane@example.com", "nobody@example.com"])
        for contact in read.results:
            print(contact.subscriber_id_string, {s.subscription_id: s.status.value for s in contact.statuses})
        for error in read.errors:  # contacts HubSpot does not know (HTTP 207)
            print(error.category, error.context)

        print(client.last_rate_limit)  # X-HubSpot-RateLimit-* of the latest answer
    # [END client_quickstart]
    assert answer.status.value == "COMPLETE" and status.status.value == "SUBSCRIBED"
    assert status.legal_basis is not None and status.legal_basis.value == "CONSENT_WITH_NOTICE"
    assert {c.subscriber_id_string for c in opted_out.results} == {"a@example.com", "b@example.com"}
    assert read.errors and read.errors[0].category == "OBJECT_NOT_FOUND"
    assert client.last_rate_limit is not None
