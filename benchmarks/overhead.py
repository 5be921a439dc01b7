"""Benchmark 2: client CPU time per request, against a bare httpx loop and Airflow's HttpHook.

The same POST /statuses/batch/unsubscribe-all (one address, verbose) is sent N times by each
contender to an emulator with no latency and no rate limit, in its own process, so that only the
client's own work is timed (CPU time of this process per request). Ours includes building and
validating the request, the retry/rate-limit policy and parsing the response into models.

    .venv/bin/python benchmarks/overhead.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import httpx
from _common import emulator, machine

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

PATH = "/communication-preferences/v4/statuses/batch/unsubscribe-all"
PARAMS = {"channel": "EMAIL", "verbose": "true"}
HEADERS = {"Authorization": f"Bearer {DEMO_TOKEN}"}


def cpu_per_request(send: Callable[[int], object], requests: int) -> float:
    for i in range(50):  # warm-up: connections, imports, caches
        send(i)
    started = time.process_time()
    for i in range(requests):
        send(i)
    return (time.process_time() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()

    with emulator("--rate-limit", "100000000", "--daily-limit", "1000000000", "--no-state") as url:
        from airflow.providers.http.hooks.http import HttpHook

        from airflow_provider_hubspot_prefs.client import HubSpotPreferencesClient, PrivateAppTokenAuth

        ours = HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), base_url=url, rate_limit=100_000_000)
        bare = httpx.Client(base_url=url, headers=HEADERS)
        os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps({"conn_type": "http", "host": url})
        hook = HttpHook(method="POST", http_conn_id="bench_http")

        def send_ours(i: int) -> object:
            return ours.batch_unsubscribe_all([f"o{i}@example.com"], verbose=True)

        def send_bare(i: int) -> object:
            response = bare.post(PATH, params=PARAMS, json={"inputs": [f"b{i}@example.com"]})
            response.raise_for_status()
            return response.json()

        def send_hook(i: int) -> object:
            response = hook.run(
                f"{PATH}?channel=EMAIL&verbose=true", json={"inputs": [f"h{i}@example.com"]}, headers=HEADERS
            )
            return response.json()

        results = {
            name: cpu_per_request(fn, args.requests)
            for name, fn in (("bare httpx", send_bare), ("our client", send_ours), ("HttpHook", send_hook))
        }

    print(f"machine: {machine()}; {args.requests} requests each, CPU time of the client process")
    for name, seconds in results.items():
        print(f"  {name:<11} {seconds * 1e6:8.0f} us/request")
    print(
        f"RATIO our client / bare httpx = {results['our client'] / results['bare httpx']:.2f} (target <= 1.5)"
    )
    print(f"RATIO our client / HttpHook = {results['our client'] / results['HttpHook']:.2f} (target < 1)")


if __name__ == "__main__":
    main()
