"""Client-side pacing: the limiter's arithmetic, and two clients sharing one HubSpot budget."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from airflow_provider_hubspot_prefs.client import (
    AsyncHubSpotPreferencesClient,
    PrivateAppTokenAuth,
    RateLimiter,
    RateLimitInfo,
    RetryPolicy,
)
from airflow_provider_hubspot_prefs.client.batching import send_pending
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN
from airflow_provider_hubspot_prefs.ledger import Outcome
from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
from airflow_provider_hubspot_prefs.ledger.store import WorkStore

from .conftest import api_requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_spaces_requests_to_the_budget():
    clock = FakeClock()
    limiter = RateLimiter(3, 10.0, slack=0, clock=clock)
    assert [limiter.reserve() for _ in range(3)] == [0, 0, 0]
    assert limiter.reserve() == 10.0  # the 4th waits until the 1st leaves the window
    clock.now += 4
    assert limiter.reserve() == 6.0  # the 5th can go when the 2nd leaves (t+10)


def test_share_shrinks_when_headers_show_other_clients():
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, slack=0, clock=clock)
    limiter.reserve()
    clock.now += 0.1
    # HubSpot counts 41 requests in its window, one of them ours: 40 came from someone else.
    limiter.observe(RateLimitInfo(max=100, remaining=59, interval_ms=10_000))
    assert limiter.allowed == 60
    # The others went quiet and the app's budget is smaller than configured: HubSpot's word wins.
    limiter.observe(RateLimitInfo(max=50, remaining=49, interval_ms=10_000))
    assert limiter.allowed == 50
    for _ in range(49):
        limiter.reserve()
    assert limiter.reserve() == pytest.approx(
        9.9
    )  # the 51st request in the window waits for the 1st to leave


def test_429_holds_every_sender_back():
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, clock=clock)
    limiter.block_for(2.5)
    assert limiter.reserve() == 2.5 and limiter.reserve() == 2.5


def test_two_clients_sharing_one_budget_finish_without_failures(emulator, tmp_path):
    # The app's budget is 20 requests a second; each client believes it may use all of it.
    emulator.control("PATCH", "config", json={"rate_limit_max": 20, "rate_limit_interval_ms": 1000})
    people = {name: [f"{name}{i:04d}@example.com" for i in range(600)] for name in ("a", "b")}

    async def worker(name: str) -> dict[str, int]:
        store = WorkStore(tmp_path / f"{name}.sqlite")
        store.ingest(records_from_values(people[name]))
        client = AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(DEMO_TOKEN),
            base_url=emulator.url,
            rate_limit=20,
            rate_limit_interval=1.0,
            retry_policy=RetryPolicy(max_retries=8, initial_delay=0.2, max_delay=2.0),
        )
        async with client:
            await send_pending(
                store,
                lambda chunk: client.batch_unsubscribe_all(chunk, verbose=True),
                batch_size=10,
                max_in_flight=4,
                applied=Outcome.UNSUBSCRIBED,
                unchanged=Outcome.ALREADY_UNSUBSCRIBED,
            )
        return store.counts()

    async def both():
        return await asyncio.gather(worker("a"), worker("b"))

    counts_a, counts_b = asyncio.run(both())
    assert counts_a == {"unsubscribed": 600} and counts_b == {"unsubscribed": 600}
    statuses = Counter(r["status"] for r in api_requests(emulator))
    print(f"two clients, one budget: {dict(statuses)}")
    assert statuses[200] == 120  # every chunk landed exactly once
    assert statuses[429] > 0  # the budget really was contended...
    assert statuses[429] < statuses[200]  # ...and the clients slowed down instead of hammering it
    assert all((p, 0) in emulator.backend.wide for group in people.values() for p in group)


def test_answered_requests_count_from_their_answer():
    clock = FakeClock()
    limiter = RateLimiter(2, 10.0, slack=0, clock=clock)
    _, first = limiter.reserve_slot()
    limiter.reserve()
    clock.now += 0.3
    limiter.answered(first)  # the answer took 0.3 s: HubSpot may have timed the request that late
    clock.now -= 0.3
    assert limiter.reserve() == pytest.approx(10.0)  # bound by the second request, still at its slot
    assert limiter.reserve() == pytest.approx(10.3)  # then by the first, counted from its answer
