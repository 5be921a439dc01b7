"""Demo: the flagship GDPR DAG, run by ``dag.test()`` against the emulator in asynchronous mode.

Writes an input CSV the way a spreadsheet exports it (byte-order mark, CRLF, a blank line) with
valid, duplicated, malformed and already-unsubscribed addresses and when each person asked
(``requested_at``: most in the last days, a few weeks ago, one without a time zone), runs
``hubspot_gdpr_unsubscribe`` (the unsubscribe answers PENDING, the deferrable sensor waits for
COMPLETE and confirms the ledger's rows) and prints the report, with the rows that missed CAN-SPAM's
10 business days; the same report is written as an HTML page beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN
from airflow_provider_hubspot_prefs.emulator.server import free_port

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"


def start_emulator(port: int, delay_ms: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_hubspot_prefs.emulator",
            "--port",
            str(port),
            "--processing-delay-ms",
            str(delay_ms),
        ]
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_emulator/config", timeout=1)
            return process
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the emulator did not start") from None
            time.sleep(0.1)


def write_input(path: Path, count: int) -> None:
    now = time.time()

    def asked(days_ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - days_ago * 86400))

    # Most asked in the last three days; every 500th three weeks ago (those miss the deadline).
    rows = [
        f"withdrawal.{i:06d}@example.com,{asked(21 if i % 500 == 7 else (i % 72) / 24)}" for i in range(count)
    ]
    rows += [f"alice@example.com,{asked(1)}", f"Bob@Example.org,{asked(2)}"]  # seeded (Bob in another case)
    rows += [f"WITHDRAWAL.000001@EXAMPLE.COM,{asked(1)}", "withdrawal.000002@example.com,"]  # duplicates
    rows += [f"not-an-address,{asked(16)}", "jane@@example.com,", "spaces in@example.com,"]  # malformed
    rows += ["", f"already.gone@example.com,{asked(2)}"]  # a blank line; unsubscribed the day before
    rows += ["late.entry@example.com,2026-11-30 10:00"]  # a time without a time zone: not guessed
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\r\n".join(["email,requested_at", *rows]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # Excel's CSV UTF-8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addresses", type=int, default=2000, help="valid new addresses in the input")
    parser.add_argument("--processing-delay-ms", type=int, default=3000)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = start_emulator(port, args.processing_delay_ms)
    try:
        os.environ["AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT"] = json.dumps(
            {"conn_type": "hubspot_prefs", "password": DEMO_TOKEN, "extra": {"base_url": url}}
        )
        input_path = WORK / "withdrawals.csv"
        write_input(input_path, args.addresses)
        # One contact opted out the day before, so that the ledger shows 'already_unsubscribed'.
        yesterday = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
        httpx.post(
            f"{url}/_emulator/contacts",
            json={"emails": ["already.gone@example.com"], "unsubscribed_at": yesterday},
            timeout=5,
        ).raise_for_status()

        spec = importlib.util.spec_from_file_location(
            "hubspot_gdpr_unsubscribe", ROOT / "example_dags" / "hubspot_gdpr_unsubscribe.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        started = time.monotonic()
        run = module.dag.test(
            run_conf={
                "input_path": str(input_path),
                "ledger_dir": str(WORK / "ledgers"),
                "csv_column": "email",
            }
        )
        elapsed = time.monotonic() - started
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        print(f"\nDAG run {run.run_id}: {run.state} in {elapsed:.1f}s; tasks: {states}")
        reports = sorted((WORK / "ledgers").glob("*/report.json"))
        if reports:
            print(f"Report ({reports[-1]}):\n{reports[-1].read_text()}")
            print(f"The same as a page: {reports[-1].with_suffix('.html')}")
        return 0 if str(run.state) == "success" else 1
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
