"""Benchmark 6: HubSpot requests the consent sync spends, against writing every row.

100,000 desired rows of which 5% differ from HubSpot and 1% were changed in HubSpot after the
row's decision, in two shapes: one subscription per contact (100,000 contacts) and four (25,000
contacts). For each shape, on a freshly seeded emulator (in this process, no rate limit: requests
are counted, not paced):

- the sync: ``HubSpotSyncSubscriptionStatusesOperator`` from a CSV file; its read and write requests
  (the reads include one ``GET /definitions`` and the re-read of each write batch's contacts just
  before it is written, which is also printed without);
- writing every row: the fewest requests any job writing every row needs (100 rows a request,
  ``batch_write_statuses``), and how many statuses newer in HubSpot it overwrote.

Prints one ``RATIO`` line per shape: sync requests / write-every-row requests. Run from the
repository root: ``.venv/bin/python benchmarks/consent_sync.py`` (~3 min; ``--rows`` to change the size).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, machine, task_context, use_connection

from airflow_provider_hubspot_prefs.emulator import EmulatorConfig, EmulatorServer
from airflow_provider_hubspot_prefs.ledger.desired_state import COLUMNS

BEFORE, DECIDED, LATER = "2026-10-01T09:00:00.000Z", "2026-11-20T12:00:00Z", "2026-11-24T18:30:00.000Z"
SUBSCRIPTIONS = (1001, 1002, 1003, 1004)


def seed(backend, rows: int, per_contact: int, path: Path) -> list[dict[str, object]]:
    """Seed HubSpot and write the desired state; returns the rows (``newer`` marks the 1%)."""
    backend.reset()
    rng = random.Random(6)
    keys = [
        (f"sync.{i:06d}@example.com", SUBSCRIPTIONS[s])
        for i in range(rows // per_contact)
        for s in range(per_contact)
    ]
    order = list(range(len(keys)))
    rng.shuffle(order)
    differ = set(order[: rows // 20])
    newer = set(order[rows // 20 : rows // 20 + rows // 100])
    desired: list[dict[str, object]] = []
    for index, (person, subscription) in enumerate(keys):
        backend.set_history(person, subscription, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", "signup form")
        row: dict[str, object] = {
            "subscriber_id": person,
            "subscription_id": subscription,
            "status": "SUBSCRIBED",
            "legal_basis": "CONSENT_WITH_NOTICE",
            "legal_basis_explanation": "signup form",
            "decided_at": BEFORE,
        }
        if index in differ or index in newer:
            row.update(status="UNSUBSCRIBED", legal_basis="", legal_basis_explanation="", decided_at=DECIDED)
        if index in newer:  # re-confirmed in HubSpot after the warehouse's decision
            backend.set_history(
                person, subscription, "SUBSCRIBED", LATER, "CONSENT_WITH_NOTICE", "preference page"
            )
        desired.append({**row, "newer": index in newer})
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(desired)
    return desired


def api_counts(backend) -> Counter[str]:
    return Counter(
        r["path"].rsplit("/statuses/", 1)[-1] if "/statuses/" in r["path"] else r["path"].rsplit("/", 1)[-1]
        for r in backend.request_log
        if "/communication-preferences/" in r["path"]
    )


def run_sync(backend, source: Path) -> tuple[Counter[str], float, dict]:
    from airflow_provider_hubspot_prefs.operators import HubSpotSyncSubscriptionStatusesOperator

    backend.request_log.clear()
    started = time.perf_counter()
    summary = HubSpotSyncSubscriptionStatusesOperator(
        task_id="sync",
        input_path=str(source),
        ledger_path=str(source.with_suffix(f".{time.time_ns()}.ledger.csv")),
        journal_path=str(source.with_suffix(f".{time.time_ns()}.journal")),
    ).execute(task_context("sync"))
    return api_counts(backend), time.perf_counter() - started, summary


def run_write_all(backend, url: str, desired: list[dict[str, object]]) -> tuple[Counter[str], float, int]:
    from airflow_provider_hubspot_prefs.client import (
        HubSpotPreferencesClient,
        PrivateAppTokenAuth,
        status_request,
    )
    from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

    backend.request_log.clear()
    started = time.perf_counter()
    with HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), base_url=url, rate_limit=None) as client:
        for start in range(0, len(desired), 100):
            client.batch_write_statuses(
                [
                    status_request(
                        str(row["subscriber_id"]),
                        subscription_id=int(row["subscription_id"]),  # type: ignore[call-overload]
                        status_state=str(row["status"]),
                        legal_basis=str(row["legal_basis"]) or None,
                        legal_basis_explanation=str(row["legal_basis_explanation"]) or None,
                    )
                    for row in desired[start : start + 100]
                ]
            )
    elapsed = time.perf_counter() - started
    overwritten = sum(
        1
        for row in desired
        if row["newer"]
        and backend.statuses[(row["subscriber_id"], row["subscription_id"])].status != "SUBSCRIBED"
    )
    return api_counts(backend), elapsed, overwritten


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HUBSPOT_PREFS_WORK_DIR", str(WORK / "work"))
    print(f"machine: {machine()}; {args.rows:,} rows, 5% differing, 1% newer in HubSpot")
    with EmulatorServer(EmulatorConfig(rate_limit_max=10_000_000)) as server:
        use_connection(server.url, rate_limit=10_000_000)
        for per_contact in (1, 4):
            source = WORK / f"consent-{per_contact}.csv"
            desired = seed(server.backend, args.rows, per_contact, source)
            sync_counts, sync_seconds, summary = run_sync(server.backend, source)
            kept = summary["outcomes"].get("kept_newer_in_hubspot", 0)
            seed(server.backend, args.rows, per_contact, source)
            all_counts, all_seconds, overwritten = run_write_all(server.backend, server.url, desired)
            sync_total, all_total = sum(sync_counts.values()), sum(all_counts.values())
            reread = summary["requests"]["reread_before_write"]
            print(
                f"{per_contact} subscription(s) per contact: sync {sync_total} requests "
                f"({dict(sync_counts)}; of the reads, {reread} re-read write batches just before writing; "
                f"{summary['written']} rows written, {kept} newer in HubSpot kept; {sync_seconds:.1f} s; "
                f"longest re-read-to-answer {summary['max_read_to_write_seconds']} s), writing every row "
                f"{all_total} requests ({all_seconds:.1f} s; {overwritten} statuses newer in HubSpot "
                "overwritten)"
            )
            ratio = sync_total / all_total
            print(f"RATIO sync/write-every-row requests, {per_contact} per contact: {ratio:.3f}")
            print(
                f"RATIO without the re-read before writing, {per_contact} per contact: "
                f"{(sync_total - reread) / all_total:.3f}"
            )


if __name__ == "__main__":
    main()
