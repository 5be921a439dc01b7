"""Benchmark 4: what importing our operator, sensor and trigger modules costs a DAG parse.

Each import runs in a fresh interpreter, alternating with the baseline: Airflow's own HTTP
operator module (apache-airflow-providers-http). Medians of wall time are compared.

    .venv/bin/python benchmarks/parse_cost.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _common import machine

OURS = (
    "import airflow_provider_hubspot_prefs.operators, airflow_provider_hubspot_prefs.sensors, "
    "airflow_provider_hubspot_prefs.triggers"
)
BASELINE = "import airflow.providers.http.operators.http"


def timed(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    timed(OURS), timed(BASELINE)  # warm the file cache and byte-code caches
    ours, base = [], []
    for _ in range(args.runs):
        ours.append(timed(OURS))
        base.append(timed(BASELINE))
    o, b = statistics.median(ours), statistics.median(base)
    print(f"machine: {machine()}; {args.runs} fresh interpreters each")
    print(f"  our operators+sensor+trigger: median {o * 1000:.0f} ms")
    print(f"  airflow.providers.http.operators.http: median {b * 1000:.0f} ms")
    print(f"RATIO ours / http operator = {o / b:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
