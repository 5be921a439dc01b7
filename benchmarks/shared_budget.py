"""Benchmark: N worker processes spending one HubSpot app's rate budget, three ways.

The emulator allows 190 requests per rolling 10 s and answers after 50 ms (HubSpot Professional,
one app; ``--portal-limit 100`` for a Free or Starter portal). N processes (1, 2, 4, 8), each an
async client from the hook with 4 requests in flight and the connection's default pacing (190 per
10 s, each believing the whole budget is its own), together send six windows' worth of batch
unsubscribe-all requests of 100 addresses. For each N it prints the ratio of the rolling-window
ceiling achieved (fastest possible time / measured time, as in throughput.py) and the share of
requests HubSpot answered 429, for three connections:

- ``redis``: the shared budget in Redis (``rate_limit_redis_conn_id``), as across machines;
- ``defaults``: nothing set: the processes of one machine share a budget file in the work folder;
- ``headers``: ``rate_limit_machine_budget`` false: each paces itself from HubSpot's headers
  alone, as processes on different machines without Redis do.

    .venv/bin/python benchmarks/shared_budget.py            # 1,140 requests per run (~14 minutes)
    .venv/bin/python benchmarks/shared_budget.py --quick    # 570 requests per run
    .venv/bin/python benchmarks/shared_budget.py --mode headers --workers 4   # one line
    # the defaults against a portal whose X-HubSpot-RateLimit-Max is 100 (600 requests, ~1 minute)
    .venv/bin/python benchmarks/shared_budget.py --mode defaults --workers 4 --portal-limit 100

Needs redis-server (scripts/install-services); it starts its own on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    LATENCY_MS,
    LIMIT,
    RATE_LIMITED_EMULATOR,
    emulator,
    ideal_seconds,
    machine,
    requests_seen,
    use_connection,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.redis_service import redis_server

BATCH, IN_FLIGHT = 100, 4


MODES = {
    "redis": "shared budget (Redis)",
    "defaults": "defaults (machine budget)",
    "headers": "headers only",
}


def connection_extras(mode: str, redis_url: str) -> dict[str, Any]:
    if mode == "redis":
        os.environ["AIRFLOW_CONN_BENCH_REDIS"] = redis_url
        return {"rate_limit_redis_conn_id": "bench_redis"}
    return {"rate_limit_machine_budget": False} if mode == "headers" else {}


def worker(url: str, mode: str, redis_url: str, name: str, requests: int, ready: Any) -> None:
    from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

    logging.getLogger("airflow_provider_hubspot_prefs").setLevel(logging.ERROR)  # each 429 says so
    use_connection(url, **connection_extras(mode, redis_url))  # the connection's default pacing

    async def go() -> None:
        async with await HubSpotPreferencesHook().get_async_conn() as client:
            # Every process has imported and built its client: start together.
            await asyncio.to_thread(ready.wait)
            left = iter(range(requests))

            async def lane() -> None:
                for n in left:
                    chunk = [f"{name}.{n:05d}.{i:03d}@example.com" for i in range(BATCH)]
                    await client.batch_unsubscribe_all(chunk, verbose=True)

            await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))

    asyncio.run(go())


def run(
    workers: int, total: int, mode: str, redis_url: str, portal_limit: int, trace: Path | None = None
) -> tuple[float, Counter[int]]:
    # The later --rate-limit wins over RATE_LIMITED_EMULATOR's 190.
    with emulator(*RATE_LIMITED_EMULATOR, "--rate-limit", str(portal_limit)) as url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        share = [total // workers + (1 if i < total % workers else 0) for i in range(workers)]
        context = multiprocessing.get_context("spawn")
        ready = context.Barrier(workers + 1)
        processes = [
            context.Process(target=worker, args=(url, mode, redis_url, f"w{i}", share[i], ready))
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        ready.wait()
        start_at = time.time()
        for process in processes:
            process.join()
        if any(process.exitcode for process in processes):
            raise RuntimeError(f"a worker failed: exit codes {[p.exitcode for p in processes]}")
        seen = requests_seen(url)
    writes = [r for r in seen if r["path"].endswith("batch/unsubscribe-all")]
    if trace is not None:  # every write's arrival time (from the start) and status, for a timeline
        trace.write_text("".join(f"{r['time'] - start_at:.3f} {r['status']}\n" for r in writes))
    ok = [r for r in writes if r["status"] == 200]
    elapsed = max(r["time"] for r in ok) - start_at + LATENCY_MS / 1000
    return elapsed, Counter(r["status"] for r in writes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="three windows' worth per run instead of six")
    parser.add_argument(
        "--portal-limit", type=int, default=LIMIT, help="the emulated portal's requests per 10 s (190)"
    )
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--mode", choices=["all", *MODES], default="all")
    parser.add_argument("--trace", type=Path, help="folder for each run's request timeline")
    args = parser.parse_args()
    limit = args.portal_limit
    total = (3 if args.quick else 6) * limit
    print(
        f"machine: {machine()}; {total} requests of {BATCH} addresses per run; portal {limit} per 10 s "
        f"(X-HubSpot-RateLimit-Max), connections at their default {LIMIT} per 10 s"
    )
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as redis_url:
        # The machine budget's file goes to a work folder of this run: spawned workers inherit it.
        os.environ["HUBSPOT_PREFS_WORK_DIR"] = str(Path(folder) / "work")
        for mode in MODES if args.mode == "all" else [args.mode]:
            for n in args.workers:
                trace = args.trace / f"{mode}-{n}.txt" if args.trace else None
                elapsed, statuses = run(n, total, mode, redis_url, limit, trace)
                answered = sum(statuses.values())
                ideal = ideal_seconds(total, limit)
                print(
                    f"{MODES[mode]:26s} N={n}: RATIO {ideal / elapsed:.3f} of the ceiling ({elapsed:.1f} s, "
                    f"ideal {ideal:.1f} s); 429s {statuses[429]} of {answered} = "
                    f"{statuses[429] / answered:.2%}"
                )


if __name__ == "__main__":
    main()
