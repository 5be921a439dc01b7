"""Client-side pacing: the limiter's arithmetic, and two clients sharing one HubSpot budget."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial

import httpx
import pytest

from airflow_provider_hubspot_prefs.client import (
    AsyncHubSpotPreferencesClient,
    PrivateAppTokenAuth,
    RateLimiter,
    RateLimitInfo,
    RetryPolicy,
)
from airflow_provider_hubspot_prefs.client.machine_budget import MachineBudget
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN
from airflow_provider_hubspot_prefs.ledger import Outcome
from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
from airflow_provider_hubspot_prefs.ledger.store import WorkStore
from airflow_provider_hubspot_prefs.runs.batching import send_pending
from airflow_provider_hubspot_prefs.runs.classify import classify

from ..conftest import api_requests


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


def test_share_follows_what_headers_show_of_other_clients():
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, slack=0, clock=clock)
    _, ticket = limiter.reserve_slot()
    clock.now += 0.1
    # HubSpot counted 41 requests in its window with ours: 40 came from someone else.
    limiter.answered(ticket, RateLimitInfo(max=100, remaining=59, interval_ms=10_000))
    assert limiter.allowed == 60
    # Their requests leaving the window are not room they gave up: for a window, their busiest count holds.
    clock.now += 5
    limiter.observe(RateLimitInfo(max=100, remaining=99, interval_ms=10_000))
    assert limiter.allowed == 60
    # Half a window more and they are quiet, and the app's budget is smaller than configured:
    # HubSpot's word wins.
    clock.now += 10.5
    limiter.observe(RateLimitInfo(max=50, remaining=50, interval_ms=10_000))
    assert limiter.allowed == 50
    assert [limiter.reserve() for _ in range(50)] == [0] * 50
    # The 51st waits for the 1st to leave, 10 s from now: HubSpot's own limit, not the others' use
    # (which may end sooner), holds it back, so its slot is booked at once.
    assert limiter.limit == 50
    wait, ticket = limiter.reserve_slot()
    assert ticket.booked and wait == pytest.approx(10.0)


def test_growth_stops_at_what_hubspot_says_is_free():
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, slack=0, clock=clock)
    _, first = limiter.reserve_slot()
    clock.now += 0.05
    # Others are filling the same window fast: 19 of theirs when our first request arrived...
    limiter.answered(first, RateLimitInfo(max=100, remaining=80, interval_ms=10_000))
    _, second = limiter.reserve_slot()
    clock.now += 0.05
    # ...and 38 one round trip later, with 60 left: about 19 more of theirs are on their way now.
    limiter.answered(second, RateLimitInfo(max=100, remaining=60, interval_ms=10_000))
    assert limiter.allowed == 62
    # So this client takes 60 - 19 = 41 more at once, not the 60 its share would allow.
    assert [limiter.reserve() for _ in range(41)] == [0] * 41
    wait, ticket = limiter.reserve_slot()
    assert not ticket.booked and wait == RateLimiter.RECHECK


def test_others_leaving_the_window_is_not_room_they_gave_up():
    """Requests HubSpot counted before ours was sent, and 429s, are told apart from our own."""
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, slack=0, clock=clock)
    tickets = [limiter.reserve_slot()[1] for _ in range(30)]
    clock.now += 0.1
    # The window was full when our 30 arrived: the others hold 70. One of ours was refused.
    limiter.answered(tickets[0], RateLimitInfo(max=100, remaining=0, interval_ms=10_000), refused=True)
    for ticket in tickets[1:]:
        limiter.answered(ticket, RateLimitInfo(max=100, remaining=0, interval_ms=10_000))
    assert limiter.allowed == 29  # the others hold 71: the refused one was not counted as ours
    # 10 s on, requests are leaving HubSpot's window faster than they are replaced:
    clock.now += 10.2
    limiter.observe(RateLimitInfo(max=100, remaining=60, interval_ms=10_000))
    assert limiter.allowed == 29  # their busiest count holds for the window in which they refill
    clock.now += 16
    limiter.observe(RateLimitInfo(max=100, remaining=100, interval_ms=10_000))
    assert limiter.allowed == 100  # a window and a half later they are gone: the room is ours


def test_429_holds_every_sender_back():
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, clock=clock)
    limiter.block_for(2.5)
    assert limiter.reserve() == 2.5 and limiter.reserve() == 2.5


def test_a_429_hold_is_at_most_two_windows():
    """Review of issue 23, 8b: one rule with the shared budgets (whatever Retry-After asked)."""
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, clock=clock)
    limiter.block_for(3600)
    assert limiter.reserve() == 20.0


@pytest.mark.parametrize("named", ["-1", "0"])
def test_a_rate_limit_max_below_one_is_unreadable(named, tmp_path):
    """Review of issue 23, 8a: X-HubSpot-RateLimit-Max -1 made every client send one request per
    window. No portal allows fewer than one: such a header says nothing."""
    info = RateLimitInfo.from_headers(
        httpx.Headers({"X-HubSpot-RateLimit-Max": named, "X-HubSpot-RateLimit-Remaining": "99"})
    )
    assert info is not None and info.max is None and info.remaining == 99
    limiter = RateLimiter(190, 10.0, clock=FakeClock())
    limiter.observe(info)
    assert limiter.limit == 190 and [limiter.reserve() for _ in range(3)] == [0, 0, 0]
    budget = MachineBudget(tmp_path / "b.sqlite", 190, 10.0, clock=lambda: 1e6)
    budget.observe(info)
    assert [budget.reserve()[0] for _ in range(3)] == [0, 0, 0]


def test_two_clients_sharing_one_budget_finish_without_failures(emulator, tmp_path):
    # The app's window holds 100 requests, as a HubSpot private app's does, but lasts 1 s instead
    # of 10 so that the test takes seconds; each client believes it may use all of it. (A window
    # of 20 made every request miscounted 5% of the budget, and the 429s a matter of luck.)
    emulator.control("PATCH", "config", json={"rate_limit_max": 100, "rate_limit_interval_ms": 1000})
    people = {name: [f"{name}{i:04d}@example.com" for i in range(3000)] for name in ("a", "b")}

    async def worker(name: str) -> dict[str, int]:
        store = WorkStore(tmp_path / f"{name}.sqlite")
        store.ingest(records_from_values(people[name]))
        client = AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(DEMO_TOKEN),
            base_url=emulator.url,
            rate_limit=100,
            rate_limit_interval=1.0,
            retry_policy=RetryPolicy(max_retries=8, initial_delay=0.2, max_delay=2.0),
        )
        async with client:
            await send_pending(
                store,
                lambda chunk: client.batch_unsubscribe_all([a for _, a in chunk], verbose=True),
                batch_size=10,
                max_in_flight=4,
                classify_answer=partial(
                    classify, applied=Outcome.UNSUBSCRIBED, unchanged=Outcome.ALREADY_UNSUBSCRIBED
                ),
            )
        return store.counts()

    async def both():
        return await asyncio.gather(worker("a"), worker("b"))

    counts_a, counts_b = asyncio.run(both())
    assert counts_a == {"unsubscribed": 3000} and counts_b == {"unsubscribed": 3000}
    seen = api_requests(emulator)
    statuses = Counter(r["status"] for r in seen)
    print(f"two clients, one budget: {dict(statuses)}")
    assert statuses[200] == 600  # every chunk landed exactly once
    # The budget really was contended: 600 requests at 100 a second take at least 5 s after the
    # first 100 (each client alone would have sent its 300 in 3 s)...
    ok = sorted(r["time"] for r in seen if r["status"] == 200)
    assert ok[-1] - ok[0] >= 5 - 0.5
    # ...and the clients kept to it from HubSpot's headers instead of hammering it.
    assert statuses[429] <= 0.05 * statuses[200]
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
