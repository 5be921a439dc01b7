"""Benchmark 7: looking an address up across a year of ledgers through the ledger index (issue 25).

Generates ``--ledgers`` ledgers (default 365, one nightly run each) of ``--rows`` rows (default
100,000) in a temp folder: addresses drawn from a population of 3,000,000 people, rows as the batch
operator writes them (mostly ``unsubscribed``, some ``already_unsubscribed``, ``failed`` with a
quoted reason and a correlation id, ``invalid_input`` without an address). One address is put in
exactly three ledgers. Then:

- indexes every ledger with ``ledger.index.write_segment`` (rows/s, one process);
- times ``--lookups`` lookups of each kind: the address in three ledgers, an absent address, and
  random people of the population (each in about 12 ledgers at full size); median, p95 and max;
- prints the index's size: bytes per ledger row, and in all.

The segments are searched where they lie (local files, ``mmap``); the page cache is warm from
indexing, as on a machine whose index is used. Prints ``RATIO p95 lookup / 1 s``. Run from the
repository root: ``.venv/bin/python benchmarks/lookup.py`` (~6 GB of ledgers in ``$BENCH_WORK``,
removed at the end; ~20 min on 2 cores); ``--ledgers 20 --rows 10000`` for a quick run.
"""

from __future__ import annotations

import argparse
import csv
import random
import secrets
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, machine

from airflow_provider_hubspot_prefs.ledger import LEDGER_COLUMNS
from airflow_provider_hubspot_prefs.ledger.index import LedgerEntry, lookup, write_segment

POPULATION = 3_000_000
STEP = 7_919  # a prime not dividing POPULATION: a ledger's 100,000 people are distinct
FIRST = ("anna", "ben", "carla", "david", "emma", "felix", "greta", "hans")
FIRST += ("ida", "jonas", "karin", "lena", "marco", "nina", "oskar", "paula")
LAST = ("meyer", "schmidt", "garcia", "rossi", "dubois", "nowak")
LAST += ("jensen", "silva", "kowalski", "novak", "murphy", "tanaka")
DOMAINS = ("example.com", "example.org", "mail.example.net", "post.example.de", "example.co.uk")
THREE_LEDGERS = "Auditor.Case@Example.org"
ABSENT = "nobody.here@example.org"


def person(n: int) -> str:
    """Address of person ``n``: distinct for distinct ``n`` (the last number is n // 192)."""
    first, last = FIRST[n % 16], LAST[n // 16 % 12]
    return f"{first}.{last}{n // 192}@{DOMAINS[n % 5]}"


def write_ledger(path: Path, day: int, rows: int, rng: random.Random, special: bool) -> None:
    start = day * 100_003
    sent = f"2026-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}T02:{day % 60:02d}:00.000Z"
    insert_at = rows // 2 if special else -1
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(LEDGER_COLUMNS)
        body = []
        for line in range(1, rows + 1):
            address = person((start + line * STEP) % POPULATION)
            text = address if line % 50 else f"  {address.upper()}  "
            draw = rng.random()
            if line == insert_at:
                text, address = THREE_LEDGERS, THREE_LEDGERS.lower()
            if draw < 0.90:
                cells = [
                    line,
                    text,
                    address,
                    "unsubscribed",
                    "UNSUBSCRIBE_FROM_ALL_OCCURRED",
                    "",
                    "",
                    "",
                    "COMPLETE",
                    sent,
                ]
            elif draw < 0.97:
                cells = [
                    line,
                    text,
                    address,
                    "already_unsubscribed",
                    "NO_STATUS_CHANGE",
                    "",
                    "",
                    "",
                    "COMPLETE",
                    sent,
                ]
            elif draw < 0.995 or line == insert_at:
                correlation = f"{rng.getrandbits(128):032x}"
                reason = 'HubSpot answered 400: "Invalid input JSON", retried 3 times'
                cells = [line, text, address, "failed", reason, "VALIDATION_ERROR", correlation, "", "", sent]
            else:
                cells = [
                    line,
                    f"broken-{line}@",
                    "",
                    "invalid_input",
                    "not a valid email address: has nothing after the '@'",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            body.append(cells + [""] * (len(LEDGER_COLUMNS) - len(cells)))
            if len(body) == 10_000:
                writer.writerows(body)
                body.clear()
        writer.writerows(body)


def timed(addresses: list[str], secret: bytes, root: Path) -> tuple[list[float], list[int]]:
    seconds, hits = [], []
    for address in addresses:
        began = time.perf_counter()
        found = lookup(address, secret, root)
        seconds.append(time.perf_counter() - began)
        hits.append(len(found.hits))
        assert not found.stale and not found.unreadable, (found.stale, found.unreadable)
    return seconds, hits


def describe(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ledgers", type=int, default=365)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=50, help="lookups of each kind")
    parser.add_argument("--keep", action="store_true", help="keep the generated ledgers and index")
    args = parser.parse_args()
    work = WORK / "lookup"
    shutil.rmtree(work, ignore_errors=True)
    ledgers, root = work / "ledgers", work / "index"
    ledgers.mkdir(parents=True)
    rng = random.Random(25)
    secret = secrets.token_bytes(32)
    print(f"machine: {machine()}; {args.ledgers} ledgers x {args.rows:,} rows")
    try:
        special = {args.ledgers // 12, args.ledgers // 2, args.ledgers - 1}  # 3 days from 12 ledgers on
        total_rows = args.ledgers * args.rows
        began = time.perf_counter()
        paths = []
        for day in range(args.ledgers):
            path = ledgers / f"nightly_{day:03d}.csv"
            write_ledger(path, day, args.rows, rng, day in special)
            paths.append(path)
        ledger_bytes = sum(p.stat().st_size for p in paths)
        print(
            f"generated {ledger_bytes / 2**30:.2f} GiB of ledgers ({ledger_bytes / total_rows:.0f} "
            f"bytes/row) in {time.perf_counter() - began:.0f} s"
        )

        began = time.perf_counter()
        for day, path in enumerate(paths):
            entry = LedgerEntry("nightly", f"scheduled__day{day:03d}", "unsubscribe", -1, str(path))
            write_segment(entry, secret, root)
        took = time.perf_counter() - began
        print(f"indexed {total_rows:,} rows in {took:.1f} s: {total_rows / took:,.0f} rows/s")
        segments = list(root.rglob("*.idx"))
        index_bytes = sum(p.stat().st_size for p in segments)
        print(
            f"index: {len(segments)} segments, {index_bytes / 2**20:.1f} MiB, "
            f"{index_bytes / total_rows:.2f} bytes per ledger row"
        )

        kinds = {
            "in 3 ledgers": [THREE_LEDGERS] * args.lookups,
            "absent": [ABSENT] * args.lookups,
            "random person": [person(rng.randrange(POPULATION)) for _ in range(args.lookups)],
        }
        worst = 0.0
        for kind, addresses in kinds.items():
            seconds, hits = timed(addresses, secret, root)
            if kind == "in 3 ledgers":
                assert set(hits) == {len(special)}, hits
            if kind == "absent":
                assert set(hits) == {0}, hits
            print(f"lookup, {kind} ({len(seconds)}; hits {min(hits)}-{max(hits)}): {describe(seconds)}")
            worst = max(worst, sorted(seconds)[round(0.95 * (len(seconds) - 1))])
        print(f"RATIO p95 lookup / 1 s target: {worst:.3f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
