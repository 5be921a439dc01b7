"""Shared by the benchmarks: an emulator in its own process, a connection to it, a task context."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN
from airflow_provider_hubspot_prefs.emulator.server import free_port

WORK = Path(os.environ.get("BENCH_WORK", "/tmp/hubspot_prefs_bench"))
# HubSpot Professional's private-app budget, answered after 50 ms: the emulator of the rate benchmarks.
LIMIT, INTERVAL, LATENCY_MS = 190, 10.0, 50
RATE_LIMITED_EMULATOR = (
    "--latency-ms",
    str(LATENCY_MS),
    "--rate-limit",
    str(LIMIT),
    "--rate-interval-ms",
    str(int(INTERVAL * 1000)),
    "--no-state",
)


def ideal_seconds(requests: int, limit: int = LIMIT) -> float:
    """Fastest possible time for ``requests`` under a rolling window of ``limit``: full windows,
    then latency."""
    return ((requests - 1) // limit) * INTERVAL + LATENCY_MS / 1000


@contextmanager
def emulator(*args: str) -> Iterator[str]:
    """Start ``python -m ...emulator`` with ``args`` on a free port; yield its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_hubspot_prefs.emulator", "--port", str(port), *args],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/_emulator/config", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("emulator did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def use_connection(url: str, **extra: Any) -> None:
    os.environ["AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT"] = json.dumps(
        {"conn_type": "hubspot_prefs", "password": DEMO_TOKEN, "extra": {"base_url": url, **extra}}
    )


def task_context(task_id: str) -> dict[str, Any]:
    """The little of a task context the batch operators read (ids for their work and ledger paths)."""
    run_id = f"bench_{int(time.time() * 1000)}"
    return {"ti": SimpleNamespace(dag_id="benchmarks", run_id=run_id, task_id=task_id, map_index=-1)}


def write_addresses(path: Path, count: int, prefix: str = "bench") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for i in range(count):
            out.write(f"{prefix}.{i:08d}@example.com\n")
    return path


def requests_seen(url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/_emulator/requests", timeout=60).json()["requests"])


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
