"""Benchmark 1: batch unsubscribe-all throughput against HubSpot's rate limit.

The emulator answers after 50 ms and allows 190 requests per rolling 10 s (HubSpot's
Professional private-app limit), so the ceiling is 190 requests x 100 addresses per 10 s.
``HubSpotBatchUnsubscribeAllOperator`` (4 requests in flight, client-side pacing) is measured
against that ceiling, and against two peers measured in the same run on the same emulator:

- a baseline: addresses sent one request at a time with no pacing, which is what a plain loop
  over our client does;
- HubSpot's generated SDK (``hubspot-sdk``, ``AsyncHubSpot``) in a naive loop of 4 requests in
  flight, with its default retries (2, honouring ``Retry-After``) and no pacing of its own, on
  ``--peer-addresses`` (60,000) addresses: its ratio to the same ceiling, its 429s, and the
  requests it gave up on.

    .venv/bin/python benchmarks/throughput.py            # 1,000,000 addresses (about 10 minutes)
    .venv/bin/python benchmarks/throughput.py --quick    # 60,000 addresses
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter

from _common import (
    INTERVAL,
    LATENCY_MS,
    LIMIT,
    RATE_LIMITED_EMULATOR,
    WORK,
    emulator,
    ideal_seconds,
    machine,
    requests_seen,
    task_context,
    use_connection,
    write_addresses,
)

BATCH = 100


def run_operator(url: str, addresses: int) -> tuple[float, dict, Counter, float, float]:
    """``(seconds, summary, statuses, first request after start, ledger complete after last request)``."""
    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    use_connection(url, rate_limit=LIMIT, rate_limit_interval=INTERVAL)
    source = write_addresses(WORK / f"throughput-{addresses}.txt", addresses, prefix=f"t{time.time_ns()}")
    context = task_context("throughput")
    # A ledger of this run's own: a ledger path keeps the task run that wrote it (checkpoint).
    ledger = WORK / f"throughput-{context['ti'].run_id}.csv"
    operator = HubSpotBatchUnsubscribeAllOperator(
        task_id="throughput", input_path=str(source), ledger_path=str(ledger), max_in_flight=4
    )
    started, started_at = time.monotonic(), time.time()
    summary = operator.execute(context)
    elapsed = time.monotonic() - started
    ledger_complete_at = ledger.stat().st_mtime  # renamed into place once whole
    for written in (ledger, ledger.with_name(f"{ledger.name}.checkpoint.json")):
        written.unlink(missing_ok=True)
    seen = requests_seen(url)
    arrivals = sorted(r["time"] for r in seen)  # wall clock at the emulator, same machine
    return (
        elapsed,
        summary,
        Counter(r["status"] for r in seen),
        arrivals[0] - started_at,
        ledger_complete_at - arrivals[-1],
    )


def run_baseline(url: str, requests: int) -> float:
    """A plain loop: one request at a time, no pacing; retries on 429 as the client does."""
    from airflow_provider_hubspot_prefs.client import AsyncHubSpotPreferencesClient, PrivateAppTokenAuth
    from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

    async def go() -> float:
        async with AsyncHubSpotPreferencesClient(
            PrivateAppTokenAuth(DEMO_TOKEN), base_url=url, rate_limit=None, max_retries=20
        ) as client:
            started = time.monotonic()
            for r in range(requests):
                chunk = [f"baseline.{r:06d}.{i:03d}@example.com" for i in range(BATCH)]
                await client.batch_unsubscribe_all(chunk, verbose=True)
            return time.monotonic() - started

    return asyncio.run(go())


def run_sdk(url: str, addresses: int) -> tuple[float, int, Counter]:
    """HubSpot's SDK, 4 requests in flight: ``(seconds, requests it gave up on, statuses seen)``."""
    from hubspot_sdk import APIStatusError, AsyncHubSpot

    from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

    chunks = iter(range(0, addresses, BATCH))
    gave_up = 0

    async def lane(sdk: AsyncHubSpot) -> None:
        nonlocal gave_up
        for start in chunks:
            inputs = [f"sdk.{n:07d}@example.com" for n in range(start, min(start + BATCH, addresses))]
            try:
                await sdk.communication_preferences.statuses.batch.unsubscribe_all(
                    channel="EMAIL", inputs=inputs, verbose=True
                )
            except APIStatusError:
                gave_up += 1

    async def go() -> float:
        async with AsyncHubSpot(access_token=DEMO_TOKEN, base_url=url) as sdk:
            started = time.monotonic()
            await asyncio.gather(*(lane(sdk) for _ in range(4)))
            return time.monotonic() - started

    elapsed = asyncio.run(go())
    return elapsed, gave_up, Counter(r["status"] for r in requests_seen(url))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="60,000 addresses instead of 1,000,000")
    parser.add_argument("--addresses", type=int)
    parser.add_argument("--peer-addresses", type=int, default=60_000, help="addresses hubspot-sdk sends")
    args = parser.parse_args()
    addresses = args.addresses or (60_000 if args.quick else 1_000_000)
    emu_args = RATE_LIMITED_EMULATOR

    with emulator(*emu_args) as url:
        elapsed, summary, statuses, first_request, ledger_done = run_operator(url, addresses)
    requests = statuses[200]
    ceiling = addresses / ideal_seconds(requests)
    achieved = addresses / elapsed
    failed_by_429 = summary["outcomes"].get("failed", 0)

    baseline_requests = min(requests, 3 * LIMIT)
    with emulator(*emu_args) as url:
        baseline_elapsed = run_baseline(url, baseline_requests)
    baseline_rate = baseline_requests * BATCH / baseline_elapsed

    with emulator(*emu_args) as url:
        sdk_elapsed, sdk_gave_up, sdk_statuses = run_sdk(url, args.peer_addresses)
    sdk_requests = -(-args.peer_addresses // BATCH)
    sdk_ratio = ideal_seconds(sdk_requests) / sdk_elapsed

    print(f"machine: {machine()}")
    print(f"addresses: {addresses:,} in {requests:,} requests; {statuses[429]} answered 429 and were retried")
    print(
        f"operator: {elapsed:.1f} s = {achieved:,.0f} addresses/s; ceiling {ceiling:,.0f}/s "
        f"({ideal_seconds(requests):.1f} s)"
    )
    print(f"outcomes: {summary['outcomes']}; failed inputs caused by 429: {failed_by_429}")
    print(
        f"first request {first_request:.2f} s after the task started; ledger complete "
        f"{ledger_done:.2f} s after the last request arrived (its answer takes {LATENCY_MS} ms)"
    )
    print(
        f"baseline (one request at a time, no pacing): {baseline_rate:,.0f} addresses/s over "
        f"{baseline_requests} requests"
    )
    print(
        f"hubspot-sdk (4 in flight, default retries): {args.peer_addresses:,} addresses in "
        f"{sdk_elapsed:.1f} s "
        f"(ceiling {ideal_seconds(sdk_requests):.1f} s); {sdk_statuses[429]} answered 429; "
        f"{sdk_gave_up} of {sdk_requests} requests given up"
    )
    print(f"RATIO achieved/ceiling = {achieved / ceiling:.3f} (target >= 0.98)")
    print(f"RATIO operator/baseline = {achieved / baseline_rate:.2f}")
    print(f"RATIO hubspot-sdk achieved/ceiling = {sdk_ratio:.3f}")


if __name__ == "__main__":
    main()
