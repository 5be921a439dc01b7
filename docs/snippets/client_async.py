"""docs/client.md: the asynchronous client, several batches in flight at once."""

from __future__ import annotations

import pathlib


def run(base_url: str, folder: pathlib.Path) -> None:
    # [START client_async]
    import asyncio

    from airflow_provider_hubspot_prefs.client import AsyncHubSpotPreferencesClient, PrivateAppTokenAuth

    addresses = [f"withdrawal.{n}@example.com" for n in range(250)]
    chunks = [addresses[start : start + 100] for start in range(0, len(addresses), 100)]

    async def unsubscribe_all() -> list:
        async with AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth("pat-emulator-demo-token"), base_url=base_url
        ) as client:
            return await asyncio.gather(*(client.batch_unsubscribe_all(chunk) for chunk in chunks))

    answers = asyncio.run(unsubscribe_all())
    print([len(answer.results) for answer in answers])  # [100, 100, 50]
    # [END client_async]
    assert [len(answer.results) for answer in answers] == [100, 100, 50]
