"""Benchmark 3: peak memory of the batch operator streaming a small and a very large file.

Each size runs in a fresh process (so that peak RSS is its own) and sends every address to an
emulator that keeps no state (``--no-state``) and has no rate limit. The large run must stay
within 1.2x of the small one: the input is streamed into the on-disk work store, never held.

    .venv/bin/python benchmarks/memory.py            # 10,000 vs 10,000,000 addresses
    .venv/bin/python benchmarks/memory.py --quick    # 10,000 vs 1,000,000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import WORK, emulator, machine, task_context, use_connection, write_addresses


def one_run(url: str, addresses: int) -> None:
    """Child process: run the operator over ``addresses`` and print its peak RSS as JSON."""
    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    use_connection(url, rate_limit=0)
    source = WORK / f"memory-{addresses}.txt"
    if not source.exists():
        write_addresses(source, addresses)
    context = task_context(f"memory_{addresses}")
    # A ledger of this run's own: a ledger path keeps the task run that wrote it (checkpoint).
    ledger = WORK / f"memory-{addresses}-{context['ti'].run_id}.csv"
    operator = HubSpotBatchUnsubscribeAllOperator(
        task_id=f"memory_{addresses}", input_path=str(source), ledger_path=str(ledger), max_in_flight=4
    )
    started = time.monotonic()
    summary = operator.execute(context)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "addresses": addresses,
                "peak_rss_mib": peak_kib / 1024,
                "seconds": time.monotonic() - started,
                "outcomes": summary["outcomes"],
            }
        )
    )
    for written in (ledger, ledger.with_name(f"{ledger.name}.checkpoint.json")):
        written.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("URL", "ADDRESSES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_run(args.child[0], int(args.child[1]))
        return
    sizes = (10_000, 1_000_000 if args.quick else 10_000_000)
    results = []
    with emulator("--rate-limit", "1000000000", "--daily-limit", "1000000000", "--no-state") as url:
        for size in sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", url, str(size)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"machine: {machine()}")
    for r in results:
        print(
            f"  {r['addresses']:>11,} addresses: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['seconds']:.0f} s, "
            f"{r['outcomes']}"
        )
    small, large = results
    print(f"RATIO peak RSS large/small = {large['peak_rss_mib'] / small['peak_rss_mib']:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
