"""One HubSpot rate budget shared by several clients: through a real redis-server (every machine)
and through a file (the processes of one machine), over real HTTP. Both budgets are held to the
same tests."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import stat
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from airflow_provider_hubspot_prefs.client import (
    AsyncHubSpotPreferencesClient,
    PrivateAppTokenAuth,
    RateLimiter,
    RetryPolicy,
)
from airflow_provider_hubspot_prefs.client.machine_budget import MachineBudget
from airflow_provider_hubspot_prefs.client.policy import RateLimitInfo
from airflow_provider_hubspot_prefs.client.ratelimit import SharedBudget
from airflow_provider_hubspot_prefs.client.shared_budget import RedisBudget
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

from ..batch_try import context
from ..conftest import api_requests
from ..redis_service import redis_server


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


def open_budget(where: str, limit: int, interval: float) -> SharedBudget:
    """A client's handle on the budget at ``where``: a Redis URL, or the path of a budget file."""
    if where.startswith("redis://"):
        return RedisBudget(redis.Redis.from_url(where), "app", limit, interval)
    return MachineBudget(Path(where), limit, interval)


@pytest.fixture(params=["redis", "machine"])
def where(request, tmp_path) -> str:
    """Where the workers of one app keep their budget: Redis (flushed), or a new budget file."""
    if request.param == "redis":
        request.getfixturevalue("redis_client")  # flushes the database
        return str(request.getfixturevalue("redis_url"))
    return str(tmp_path / "rate_budgets" / "app.sqlite")


@pytest.fixture
def budget(where) -> Callable[[int, float], SharedBudget]:
    return lambda limit, interval: open_budget(where, limit, interval)


def send_as_a_worker(url: str, where: str, name: str, limit: int, requests: int) -> None:
    """One worker process: its own client and limiter (``limit`` per second), ``requests`` requests
    of 10 addresses."""

    async def send() -> None:
        limiter = RateLimiter(limit, 1.0, shared=open_budget(where, limit, 1.0))
        async with AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(DEMO_TOKEN), base_url=url, rate_limiter=limiter
        ) as client:
            for i in range(0, requests * 10, 10):
                chunk = [f"{name}{i + j:04d}@example.com" for j in range(10)]
                await client.batch_unsubscribe_all(chunk, verbose=True)

    asyncio.run(send())


def three_workers(emulator: Any, where: str, limit: int, requests: int) -> list[dict[str, Any]]:
    """Three worker processes of one app, each believing ``limit`` a second is its own; the
    requests the emulator received."""
    spawn = multiprocessing.get_context("spawn")
    args = [(emulator.url, where, name, limit, requests) for name in "abc"]
    workers = [spawn.Process(target=send_as_a_worker, args=a) for a in args]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    return api_requests(emulator)


def test_workers_book_against_the_portals_own_limit_when_it_is_smaller(emulator, where):
    """Issue 23, item 2: the connection says 40 a second, HubSpot's X-HubSpot-RateLimit-Max says 20.
    The first answer's Max is stored with the bookings, and every process books against it."""
    emulator.control(
        "PATCH", "config", json={"rate_limit_max": 20, "rate_limit_interval_ms": 1000, "latency_ms": 20}
    )
    statuses = Counter(r["status"] for r in three_workers(emulator, where, limit=40, requests=30))
    assert statuses[200] == 90 and statuses[429] <= 1, statuses


def test_the_portals_limit_learned_by_one_process_binds_the_others(budget):
    learner = budget(100, 10.0)
    learner.reserve()
    learner.observe(RateLimitInfo(max=5, remaining=4, interval_ms=10_000))
    newcomer = budget(100, 10.0)  # another process: it has seen no answer yet
    for _ in range(4):
        assert newcomer.reserve()[0] < 0.05
    assert newcomer.reserve()[0] > 9  # the 6th of the window waits: HubSpot allows 5, not 100
    # HubSpot's word is the latest answer's: a larger Max (a portal upgraded) frees the room again,
    # up to the configured limit.
    learner.observe(RateLimitInfo(max=250, remaining=245, interval_ms=10_000))
    assert newcomer.reserve()[0] < 0.05


def test_three_worker_processes_sharing_a_budget_meet_no_429(emulator, where):
    """Each believes it may use the whole budget; the shared window keeps them under it together."""
    emulator.control(
        "PATCH", "config", json={"rate_limit_max": 20, "rate_limit_interval_ms": 1000, "latency_ms": 20}
    )
    requests = three_workers(emulator, where, limit=20, requests=40)
    assert Counter(r["status"] for r in requests) == {200: 120}  # not one 429
    # ...and not faster than the shared budget allows: 100 requests after the first window's 20.
    times = sorted(r["time"] for r in requests)
    assert times[-1] - times[0] >= (120 - 20) / 20 - 0.1


def test_bookings_of_a_dead_worker_free_themselves(budget):
    dead = budget(5, 0.5)
    booked = time.monotonic()
    for _ in range(5):
        dead.reserve()  # booked, never answered: the worker died
    survivor = budget(5, 0.5)
    wait, _ = survivor.reserve()
    # Until the dead bookings leave the window (0.5 s after they were made), not longer: nothing is
    # held forever. (Measured from the bookings: a busy machine may take a while to get here.)
    assert 0.5 - (time.monotonic() - booked) - 0.05 < wait <= 0.55
    time.sleep(wait)
    assert survivor.reserve()[0] < 0.05  # the window holds only the survivor's own booking now


def test_a_429_holds_back_every_worker(budget):
    one, other = budget(100, 10.0), budget(100, 10.0)
    assert other.reserve()[0] < 0.05
    blocked = time.monotonic()
    one.block_for(1.5)  # HubSpot answered 429 with Retry-After 1.5 to the first worker
    wait, _ = other.reserve()
    assert 1.5 - (time.monotonic() - blocked) - 0.05 < wait <= 1.5


def book_an_hour_ahead(where: str, limit: int, interval: float) -> None:
    """What a process whose clock ran an hour ahead left in the budget (the clock was then stepped
    back): a full window of bookings and a 429's hold, an hour in the future."""
    ahead = time.time() + 3600
    if where.startswith("redis://"):  # Redis's clock cannot be stepped from here: write what it would hold
        client = redis.Redis.from_url(where)
        client.zadd("hubspot_prefs:budget:app:window", {f"ahead{i}": int(ahead * 1000) for i in range(limit)})
        client.set("hubspot_prefs:budget:app:blocked", int((ahead + 1.5) * 1000))
        return
    from_the_future = MachineBudget(Path(where), limit, interval, clock=lambda: ahead)
    for _ in range(limit):
        from_the_future.reserve()
    from_the_future.block_for(1.5)


def test_bookings_in_the_future_are_dropped(where):
    """Issue 23, item 6: the clock stepping back one hour made every process wait 3,610 s."""
    book_an_hour_ahead(where, 5, 10.0)
    wait, _ = open_budget(where, 5, 10.0).reserve()
    assert wait < 0.05  # nothing legitimately booked now: no one waits for the bookings of the future


def test_no_wait_is_longer_than_two_windows(budget):
    shared = budget(5, 1.0)
    shared.block_for(3600)  # whatever asked for it, a hold of an hour is not the window's to keep
    wait, booking = shared.reserve()
    assert booking is not None and wait <= 2.0
    # Four windows' worth of requests at once: none is booked further off than two windows; those
    # that would be are told to ask again (booking None), not crammed into the second window.
    replies = [shared.reserve() for _ in range(20)]
    assert all(wait <= 2.0 for wait, booking in replies if booking is not None)
    assert sum(booking is not None for _, booking in replies) == 4  # the held window's other 4
    assert all(0 < wait <= 1.0 + 0.02 for wait, booking in replies if booking is None)


# ---- queueing is not a burst (review of issue 23, 4) ------------------------------------------------


def send_times(
    ask: Callable[[int], tuple[float, bool]],
    requests: int,
    clock: Callable[[], float],
    wait_until: Callable[[float], None],
) -> list[float]:
    """When each of ``requests`` requests that all want to go at once is sent: request ``i`` asks
    ``ask(i)`` for a slot, ``(seconds to wait, booked)``, and asks again after the wait when it
    was not booked, as the clients' execute loops do."""
    asking = [(clock(), i) for i in range(requests)]
    sent: list[float] = []
    while asking:
        asking.sort()
        at, i = asking.pop(0)
        wait_until(at)
        wait, booked = ask(i)
        if booked:
            sent.append(clock() + wait)
        else:
            asking.append((clock() + wait, i))
    return sorted(sent)


def busiest_window(sent: list[float], interval: float) -> int:
    return max(sum(1 for t in sent if start <= t < start + interval) for start in sent)


def real_time_until(at: float) -> None:
    time.sleep(max(0.0, at - time.time()))


@pytest.mark.parametrize("held", [0.0, 0.6], ids=["burst", "behind-a-429"])
def test_a_queue_longer_than_two_windows_is_never_a_burst(budget, held):
    """Four windows' worth of requests at once (or behind a 429's hold): each window holds no more
    than the limit; the requests that cannot be booked within two windows wait their turn. Capping
    their slots at two windows sent them all at that one instant."""
    shared = budget(5, 0.5)
    if held:
        shared.block_for(held)

    def ask(_: int) -> tuple[float, bool]:
        wait, booking = shared.reserve()
        return wait, booking is not None

    sent = send_times(ask, 20, time.time, real_time_until)
    assert len(sent) == 20
    # (Send times are read here, a moment after the budget's clock: windows 50 ms short allow for it.)
    assert busiest_window(sent, 0.5 - 0.05) <= 5
    assert sent[-1] - sent[0] >= 3 * 0.5  # four windows' worth, one after another


def test_four_limiters_on_one_machine_budget_keep_to_its_limit(tmp_path):
    """The review's case: four processes' limiters, 5 requests in flight each, a budget of 5 per
    10 s: 10 requests went out in one window."""
    now = [1_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    shared = MachineBudget(tmp_path / "b.sqlite", 5, 10.0, slack=0.0, clock=clock)
    limiters = [RateLimiter(5, 10.0, slack=0.0, clock=clock, shared=shared) for _ in range(4)]

    def ask(i: int) -> tuple[float, bool]:
        wait, ticket = limiters[i % 4].reserve_slot()
        return wait, ticket.booked

    def advance_to(at: float) -> None:
        now[0] = max(now[0], at)

    sent = send_times(ask, 20, clock, advance_to)
    assert len(sent) == 20 and busiest_window(sent, 10.0) <= 5


def test_hubspots_headers_count_callers_outside_the_budget(budget):
    shared = budget(100, 10.0)
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


def hook_with(monkeypatch, emulator, **extra: Any):
    from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

    connection = {
        "conn_type": "hubspot_prefs",
        "password": DEMO_TOKEN,
        "extra": {"base_url": emulator.url, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT", json.dumps(connection))
    return HubSpotPreferencesHook()


def test_by_default_the_processes_of_one_machine_share_a_private_budget_file(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "work"))
    hook = hook_with(monkeypatch, emulator)
    limiter = hook._rate_limiter(hook.settings)
    assert isinstance(limiter.shared, MachineBudget)
    path = limiter.shared.path
    assert path.parent == tmp_path / "work" / "rate_budgets"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [stat.S_IMODE(f.stat().st_mode) for f in (path.parent, path.parent.parent)] == [0o700, 0o700]
    # A second hook (another task process) of the same app and HubSpot books in the same file...
    other = hook_with(monkeypatch, emulator)
    assert other._rate_limiter(other.settings).shared.path == path
    # ...another HubSpot address (here: no emulator) is another budget, and the file names no secret.
    elsewhere = hook_with(monkeypatch, emulator, base_url="https://api.hubapi.com")
    assert elsewhere._rate_limiter(elsewhere.settings).shared.path != path
    assert DEMO_TOKEN not in path.name

    async def send() -> None:
        async with await hook.get_async_conn() as client:
            await client.batch_unsubscribe_all(["booked@example.com"], verbose=True)

    asyncio.run(send())
    assert MachineBudget(path, 1, 10.0).reserve()[0] > 9  # the request above holds the window's one slot


def test_a_connection_can_turn_the_machine_budget_off(emulator, monkeypatch):
    hook = hook_with(monkeypatch, emulator, rate_limit_machine_budget=False)
    assert hook._rate_limiter(hook.settings).shared is None
    hook = hook_with(monkeypatch, emulator, rate_limit_machine_budget="false")  # as the form sends it
    assert hook._rate_limiter(hook.settings).shared is None
    from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotConnectionError

    hook = hook_with(monkeypatch, emulator, rate_limit_machine_budget="sometimes")
    with pytest.raises(HubSpotConnectionError, match="rate_limit_machine_budget must be true or false"):
        _ = hook.settings


def test_an_unusable_work_folder_means_pacing_alone_not_failing(
    emulator, monkeypatch, tmp_path, caplog, capsys
):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(not_a_folder))
    hook = hook_with(monkeypatch, emulator)
    with caplog.at_level(logging.WARNING):
        limiter = hook._rate_limiter(hook.settings)
    assert limiter.shared is None
    said = caplog.text + capsys.readouterr().out  # the hook logs through Airflow's task logger
    assert "Rate budget file" in said and "Not a directory" in said and "pacing this client alone" in said
