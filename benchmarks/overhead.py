"""Benchmark 2: client CPU time per request, against bare httpx, Airflow's HttpHook and HubSpot's SDK.

Each contender sends POST /communication-preferences/2026-03/statuses/batch/unsubscribe-all
(verbose) with 1 address and with 100 addresses (the realistic batch: its answer is about 157 KB)
to an emulator with no latency and no rate limit, in its own process, so that only the client's own
work is timed: CPU time of this process per request. Contenders run interleaved, in rounds; each
figure is the median of the rounds.

- ``bare httpx``: ``httpx.Client.post`` + ``response.json()``, nothing else (the floor);
- ``HttpHook``: Airflow's ``HttpHook.run`` + ``response.json()``;
- ``our client``: ``HubSpotPreferencesClient.batch_unsubscribe_all``: input checks, rate-limit and
  retry policy, answer parsed into typed models;
- ``hubspot-sdk``: HubSpot's generated SDK (``HubSpot().communication_preferences.statuses.batch
  .unsubscribe_all``), typed models too.

Then, on one answer to 100 addresses, the decoding alone: ``json.loads`` and pydantic's
``from_json`` (untyped) against our typed answer (msgspec structs), CPU per answer.

    .venv/bin/python benchmarks/overhead.py [--requests 300] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import httpx
from _common import emulator, machine

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

PATH = "/communication-preferences/2026-03/statuses/batch/unsubscribe-all"
PARAMS = {"channel": "EMAIL", "verbose": "true"}
HEADERS = {"Authorization": f"Bearer {DEMO_TOKEN}"}
BATCHES = (1, 100)

Send = Callable[[list[str]], object]


def contenders(url: str) -> dict[str, Send]:
    from airflow.providers.http.hooks.http import HttpHook
    from hubspot_sdk import HubSpot

    from airflow_provider_hubspot_prefs.client import HubSpotPreferencesClient, PrivateAppTokenAuth

    bare = httpx.Client(base_url=url, headers=HEADERS)
    os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps({"conn_type": "http", "host": url})
    hook = HttpHook(method="POST", http_conn_id="bench_http")
    ours = HubSpotPreferencesClient(
        PrivateAppTokenAuth(DEMO_TOKEN), base_url=url, api_version="2026-03", rate_limit=100_000_000
    )
    sdk = HubSpot(access_token=DEMO_TOKEN, base_url=url)

    def send_bare(inputs: list[str]) -> object:
        response = bare.post(PATH, params=PARAMS, json={"inputs": inputs})
        response.raise_for_status()
        return response.json()

    def send_hook(inputs: list[str]) -> object:
        response = hook.run(f"{PATH}?channel=EMAIL&verbose=true", json={"inputs": inputs}, headers=HEADERS)
        return response.json()

    def send_ours(inputs: list[str]) -> object:
        return ours.batch_unsubscribe_all(inputs, verbose=True)

    def send_sdk(inputs: list[str]) -> object:
        return sdk.communication_preferences.statuses.batch.unsubscribe_all(
            channel="EMAIL", inputs=inputs, verbose=True
        )

    return {"bare httpx": send_bare, "HttpHook": send_hook, "our client": send_ours, "hubspot-sdk": send_sdk}


def cpu_per_request(send: Send, batch: int, requests: int, name: str) -> float:
    tag = "".join(c for c in name if c.isalnum())
    chunks = [[f"{tag}{r}.{i}@example.com" for i in range(batch)] for r in range(requests)]
    started = time.process_time()
    for chunk in chunks:
        send(chunk)
    return (time.process_time() - started) / requests


def decoding(answer: bytes, repeat: int = 300) -> dict[str, float]:
    """CPU per decoding of ``answer``: untyped, and into our typed models."""
    from pydantic_core import from_json

    from airflow_provider_hubspot_prefs.client.models import BatchUnsubscribeAllResponse, answer_decoder

    decoders: dict[str, Callable[[bytes], object]] = {
        "json.loads": json.loads,
        "pydantic from_json": from_json,
        "our typed answer": answer_decoder(BatchUnsubscribeAllResponse).decode,
    }
    figures = {}
    for name, decode in decoders.items():
        for _ in range(20):
            decode(answer)
        started = time.process_time()
        for _ in range(repeat):
            decode(answer)
        figures[name] = (time.process_time() - started) / repeat
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per contender and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with emulator("--rate-limit", "100000000", "--daily-limit", "1000000000", "--no-state") as url:
        sends = contenders(url)
        for send in sends.values():  # warm-up: connections, imports, caches
            for batch in BATCHES:
                for _ in range(20):
                    send([f"warm{i}@example.com" for i in range(batch)])
        figures: dict[tuple[int, str], list[float]] = {}
        for _ in range(args.rounds):
            for batch in BATCHES:
                for name, send in sends.items():
                    figure = cpu_per_request(send, batch, args.requests, name)
                    figures.setdefault((batch, name), []).append(figure)
        inputs = [f"decode{i}@example.com" for i in range(100)]
        answer = httpx.post(f"{url}{PATH}", params=PARAMS, json={"inputs": inputs}, headers=HEADERS).content

    print(
        f"machine: {machine()}; {args.requests} requests per contender and round, median of "
        f"{args.rounds} rounds, CPU time of the client process"
    )
    for batch in BATCHES:
        median = {name: statistics.median(figures[(batch, name)]) for name in sends}
        print(f"batches of {batch}:")
        for name, seconds in median.items():
            ratio = seconds / median["bare httpx"]
            print(f"  {name:<11} {seconds * 1e6:8.0f} us/request  {ratio:5.2f}x bare httpx")
        ours = median["our client"]
        print(
            f"RATIO batch {batch}: our client / bare httpx = {ours / median['bare httpx']:.2f}; "
            f"/ HttpHook = {ours / median['HttpHook']:.2f}; "
            f"/ hubspot-sdk = {ours / median['hubspot-sdk']:.2f}"
        )
    decoded = decoding(answer)
    print(f"decoding one answer to 100 addresses ({len(answer):,} bytes):")
    for name, seconds in decoded.items():
        print(f"  {name:<18} {seconds * 1e6:6.0f} us  {seconds / decoded['json.loads']:5.2f}x json.loads")


if __name__ == "__main__":
    main()
