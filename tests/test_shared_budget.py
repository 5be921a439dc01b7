"""One HubSpot rate budget shared by several clients through a real redis-server, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter

import pytest
import redis

from airflow_provider_hubspot_prefs.client import (
    AsyncHubSpotPreferencesClient,
    PrivateAppTokenAuth,
    RateLimiter,
    RetryPolicy,
)
from airflow_provider_hubspot_prefs.client.policy import RateLimitInfo
from airflow_provider_hubspot_prefs.client.shared_budget import RedisBudget
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

from .batch_try import context
from .conftest import api_requests
from .redis_service import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> str:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def budget(redis_client, limit: int, interval: float, key: str = "app") -> RedisBudget:
    return RedisBudget(redis_client, key, limit, interval)


def test_three_clients_sharing_a_budget_meet_no_429(emulator, redis_client):
    """Each believes it may use the whole budget; the shared window keeps them under it together."""
    emulator.control(
        "PATCH", "config", json={"rate_limit_max": 20, "rate_limit_interval_ms": 1000, "latency_ms": 20}
    )

    async def worker(name: str) -> int:
        limiter = RateLimiter(20, 1.0, shared=budget(redis_client, 20, 1.0))
        client = AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(DEMO_TOKEN), base_url=emulator.url, rate_limiter=limiter
        )
        async with client:
            for i in range(0, 400, 10):
                chunk = [f"{name}{i + j:04d}@example.com" for j in range(10)]
                await client.batch_unsubscribe_all(chunk, verbose=True)
        return 40

    async def all_three() -> list[int]:
        return await asyncio.gather(*(worker(name) for name in "abc"))

    started = time.monotonic()
    asyncio.run(all_three())
    elapsed = time.monotonic() - started
    statuses = Counter(r["status"] for r in api_requests(emulator))
    assert statuses == {200: 120}  # not one 429
    assert elapsed >= (120 - 20) / 20  # and not faster than the shared budget allows


def test_bookings_of_a_dead_worker_free_themselves(redis_client):
    dead = budget(redis_client, 5, 0.5)
    for _ in range(5):
        dead.reserve()  # booked, never answered: the worker died
    survivor = budget(redis_client, 5, 0.5)
    wait, _ = survivor.reserve()
    assert 0.3 < wait <= 0.55  # the dead bookings leave the window; nothing is held forever
    time.sleep(wait)
    assert survivor.reserve()[0] < 0.05  # the window holds only the survivor's own booking now


def test_a_429_holds_back_every_worker(redis_client):
    one, other = budget(redis_client, 100, 10.0), budget(redis_client, 100, 10.0)
    assert other.reserve()[0] < 0.05
    one.block_for(1.5)  # HubSpot answered 429 with Retry-After 1.5 to the first worker
    wait, _ = other.reserve()
    assert 1.3 < wait <= 1.5


def test_hubspots_headers_count_callers_outside_this_redis(redis_client):
    shared = budget(redis_client, 100, 10.0)
    shared.reserve()
    # HubSpot says 91 of 100 are spent, but only one was booked here: 90 went elsewhere, of which
    # 87 count (3 requests of jitter are allowed for at a window's edge). 13 remain for us.
    shared.observe(RateLimitInfo(max=100, remaining=9, interval_ms=10_000))
    for _ in range(12):
        assert shared.reserve()[0] < 0.05
    assert shared.reserve()[0] > 9  # the 14th waits for the window


def test_redis_down_means_pacing_alone_not_failing(emulator, caplog):
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = RateLimiter(100, 1.0, shared=RedisBudget(dead, "app", 100, 1.0))

    async def send() -> None:
        client = AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(DEMO_TOKEN),
            base_url=emulator.url,
            rate_limiter=limiter,
            retry_policy=RetryPolicy(),
        )
        async with client:
            await client.batch_unsubscribe_all([f"alone{i}@example.com" for i in range(5)], verbose=True)

    with caplog.at_level(logging.WARNING):
        asyncio.run(send())
    assert "Shared rate budget unavailable" in caplog.text and "pacing this client alone" in caplog.text


def test_connection_extra_selects_the_redis_budget(
    emulator, redis_url, redis_client, airflow_db, monkeypatch, tmp_path
):
    """Through Airflow's Redis provider: a batch task books its requests in the named Redis."""
    from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook
    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    monkeypatch.setenv("AIRFLOW_CONN_BUDGET_REDIS", redis_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT",
        json.dumps(
            {
                "conn_type": "hubspot_prefs",
                "password": DEMO_TOKEN,
                "extra": {
                    "base_url": emulator.url,
                    "rate_limit_redis_conn_id": "budget_redis",
                    "rate_limit_key": "k1",
                },
            }
        ),
    )
    limiter = HubSpotPreferencesHook()._rate_limiter(HubSpotPreferencesHook().settings)
    assert isinstance(limiter.shared, RedisBudget)
    source = tmp_path / "in.txt"
    source.write_text("".join(f"shared{i:04d}@example.com\n" for i in range(300)))
    summary = HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe", input_path=str(source), ledger_path=str(tmp_path / "ledger.csv")
    ).execute(context("manual__shared", 1))
    assert summary["outcomes"] == {"unsubscribed": 300}
    assert redis_client.zcard("hubspot_prefs:budget:k1:window") == 3  # the three requests, booked
