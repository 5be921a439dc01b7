"""Fault injection: each fault HubSpot can throw at a batch, on 5,000 addresses (50 requests).

Every case runs the batch operator in a DAG run against the emulator and checks the same three
things: each input line is in the ledger exactly once with the outcome the fault calls for; what
the emulator changed is exactly what the ledger reports as done by this run; and no contact and
subscription changed state twice, however often a write was sent. One case, marked ``scale``,
runs the same invariants on 50,000 addresses (``./scripts/test`` runs it; ``-m "not scale"`` not).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_hubspot_prefs.emulator import (
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
)
from airflow_provider_hubspot_prefs.runs.classify import LOST_ANSWER_REASON

from ..conftest import connect_to_emulator
from ..dag_support import ledger_rows, provider_dag, states
from ..ledger_support import check_truth

WRITE_PATH = "batch/unsubscribe-all"  # the write only, not ".../unsubscribe-all/read"
DONE = ("unsubscribed", "already_unsubscribed")


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """DAG runs need the migrated DB and a connection to the emulator."""


@dataclass(frozen=True)
class Batch:
    path: Path
    lines: list[str]
    fresh: int  # addresses HubSpot has not unsubscribed
    already: list[str]  # unsubscribed from all a day before the run
    blocked: list[str]  # refused by the ``partial`` fault, plain addresses otherwise
    duplicates: int
    malformed: int

    @property
    def total(self) -> int:
        return len(self.lines)


def make_batch(folder: Path, scale: int) -> Batch:
    """``scale`` x 1,000 lines: 93.4% fresh, 4% already unsubscribed, 1% repeats, 1% malformed,
    0.6% refused by the ``partial`` fault."""
    rng = random.Random(20261124)
    fresh = [f"subscriber{i:05d}@example.com" for i in range(934 * scale)]
    already = [f"withdrawn{i:04d}@example.org" for i in range(40 * scale)]
    blocked = [f"held{i:03d}+blocked@example.net" for i in range(6 * scale)]
    duplicates, malformed = 10 * scale, 10 * scale
    unique = fresh + already + blocked
    head = unique[:]
    rng.shuffle(head)
    # Repeats (case and space variants) and malformed lines come after what they repeat.
    tail = [a.upper() if i % 2 else f" {a} " for i, a in enumerate(rng.sample(unique, duplicates))]
    tail += [f"broken-{i}@" if i % 2 else f"no-at-sign-{i}" for i in range(malformed)]
    rng.shuffle(tail)
    lines = head + tail
    path = folder / "withdrawals.txt"
    path.write_text("\n".join(lines) + "\n")
    assert len(lines) == 1000 * scale
    return Batch(path, lines, len(fresh), already, blocked, duplicates, malformed)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return make_batch(tmp_path_factory.mktemp("faults"), 5)


@pytest.fixture(scope="module")
def large_batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return make_batch(tmp_path_factory.mktemp("faults-large"), 50)


def run_batch(emulator, batch: Batch, tmp_path: Path) -> tuple[str, list[dict[str, str]], Any]:
    emulator.control(
        "POST", "contacts", json={"emails": batch.already, "unsubscribed_at": "2026-11-23T08:00:00Z"}
    )
    emulator.control("DELETE", "requests")
    ledger = tmp_path / "ledger.csv"
    run = provider_dag("test_batch_unsubscribe_poll").test(
        run_conf={"input_path": str(batch.path), "ledger_path": str(ledger)}
    )
    return states(run)["unsubscribe"], ledger_rows(ledger), run


def check_ledger_against_emulator(emulator, batch: Batch, rows: list[dict[str, str]]) -> Counter[str]:
    """The invariants every fault must keep; returns the outcome counts."""
    outcomes = check_truth(emulator, rows, batch.lines)  # lines once, in order; ledger = emulator
    assert outcomes["duplicate"] == batch.duplicates and outcomes["invalid_input"] == batch.malformed
    already = set(batch.already)
    for row in rows:
        if row["outcome"] in DONE:
            assert (row["subscriber_id"], 0) in emulator.backend.wide, row
        if row["outcome"] == "already_unsubscribed":
            assert row["subscriber_id"] in already, row
    return outcomes


def assert_all_done(batch: Batch, outcomes: Counter[str]) -> None:
    """Every valid input unsubscribed by this run, except those unsubscribed the day before."""
    assert outcomes["unsubscribed"] == batch.fresh + len(batch.blocked)
    assert outcomes["already_unsubscribed"] == len(batch.already)


def write_statuses(emulator) -> Counter[int]:
    return Counter(
        r["status"] for r in emulator.control("GET", "requests")["requests"] if r["path"].endswith(WRITE_PATH)
    )


def test_ten_secondly_429_storm_is_waited_out(emulator, batch, tmp_path):
    emulator.control(
        "POST", "faults", json={"status": 429, "count": 60, "retry_after": 0.1, "path_endswith": WRITE_PATH}
    )
    state, rows, _ = run_batch(emulator, batch, tmp_path)
    assert state == "success"
    outcomes = check_ledger_against_emulator(emulator, batch, rows)
    assert_all_done(batch, outcomes)
    assert write_statuses(emulator)[429] == 60


def test_daily_429_stops_the_task_and_the_ledger_says_what_remains(emulator, batch, tmp_path):
    emulator.control("PATCH", "config", json={"daily_limit": 20})
    state, rows, _ = run_batch(emulator, batch, tmp_path)
    assert state == "failed"
    outcomes = check_ledger_against_emulator(emulator, batch, rows)
    remaining = [r for r in rows if r["outcome"] == "not_attempted"]
    assert len(remaining) > batch.total // 2 and outcomes["failed"] == 0
    assert {r["reason"].split("(correlationId")[0] for r in remaining} == {
        "not sent: HTTP 429 RATE_LIMITS from POST /communication-preferences/v4/statuses/batch/"
        "unsubscribe-all: You have reached your daily limit. "
    }
    done = outcomes["unsubscribed"] + outcomes["already_unsubscribed"]
    assert done + len(remaining) == batch.total - batch.duplicates - batch.malformed
    assert write_statuses(emulator)[200] == 20  # exactly the daily allowance was used


def test_5xx_burst_is_retried_to_completion(emulator, batch, tmp_path):
    for status in (500, 502, 503, 504):
        burst = {"status": status, "count": 4, "path_endswith": WRITE_PATH}
        emulator.control("POST", "faults", json=burst)
    state, rows, _ = run_batch(emulator, batch, tmp_path)
    assert state == "success"
    outcomes = check_ledger_against_emulator(emulator, batch, rows)
    assert_all_done(batch, outcomes)
    assert sum(n for status, n in write_statuses(emulator).items() if status >= 500) == 16


LOST_ANSWERS = {
    # fault: (client timeout in s, whether HubSpot applied the writes whose answers were lost)
    "drop_before": ({"kind": "drop_before", "count": 6, "every": 7}, None, False),
    "drop_after": ({"kind": "drop_after", "count": 6, "every": 7}, None, True),
    "slow": ({"kind": "slow", "delay": 2.5, "count": 4}, 1, True),
    "malformed": ({"kind": "malformed", "count": 6, "every": 7}, None, True),
}


@pytest.mark.parametrize("name", list(LOST_ANSWERS))
def test_lost_answers_are_resent_without_applying_twice(emulator, batch, tmp_path, monkeypatch, name):
    """Dropped connections, answers later than the client's timeout, JSON cut off in transit."""
    fault, timeout, applied = LOST_ANSWERS[name]
    if timeout is not None:
        connect_to_emulator(monkeypatch, emulator, timeout=timeout)
    emulator.control("POST", "faults", json={**fault, "path_endswith": WRITE_PATH})
    state, rows, _ = run_batch(emulator, batch, tmp_path)
    assert state == "success"
    outcomes = check_ledger_against_emulator(emulator, batch, rows)
    # Contacts the lost attempt unsubscribed are reported as this run's doing, not as "already".
    assert_all_done(batch, outcomes)
    if name.startswith("drop"):
        assert write_statuses(emulator)[444] == fault["count"]  # really dropped, that many times
    lost = sum(r["reason"] == LOST_ANSWER_REASON for r in rows)
    assert (lost > 0) == applied


def test_207_partial_failure_keeps_hubspots_reason_per_contact(emulator, batch, tmp_path):
    emulator.control(
        "POST",
        "faults",
        json={
            "kind": "partial",
            "count": 10_000,
            "reject_contains": "+blocked",
            "category": "VALIDATION_ERROR",
            "message": "Contact is a HubSpot user; preferences are managed in the user's settings.",
            "path_endswith": WRITE_PATH,
        },
    )
    state, rows, _ = run_batch(emulator, batch, tmp_path)
    assert state == "failed"  # max_failure_ratio defaults to 0
    outcomes = check_ledger_against_emulator(emulator, batch, rows)
    failed = [r for r in rows if r["outcome"] == "failed"]
    assert {r["subscriber_id"] for r in failed} == set(batch.blocked)
    assert {(r["category"], r["reason"]) for r in failed} == {
        ("VALIDATION_ERROR", "Contact is a HubSpot user; preferences are managed in the user's settings.")
    }
    assert outcomes["unsubscribed"] == batch.fresh and outcomes["already_unsubscribed"] == len(batch.already)
    assert not any((a, 0) in emulator.backend.wide for a in batch.blocked)
    assert 207 in write_statuses(emulator)


def test_canceled_operations_are_failed_not_reported_done(emulator, batch, tmp_path):
    emulator.control("PATCH", "config", json={"cancel_next_writes": 7})
    state, rows, _ = run_batch(emulator, batch, tmp_path)
    assert state == "failed"
    outcomes = check_ledger_against_emulator(emulator, batch, rows)
    failed = [r for r in rows if r["outcome"] == "failed"]
    assert len(failed) == 700 and {r["category"] for r in failed} == {"CANCELED"}
    valid = batch.fresh + len(batch.already) + len(batch.blocked)
    assert outcomes["unsubscribed"] + outcomes["already_unsubscribed"] == valid - 700
    # Canceled means not applied: none of those contacts changed, whatever they were before.
    assert not {r["subscriber_id"] for r in failed} & {email for email, _ in emulator.backend.changes}


@pytest.mark.scale
def test_lost_answers_on_fifty_thousand_addresses(emulator, large_batch, tmp_path):
    """The invariants at the size of a real withdrawal list: 500 requests, 30 of whose answers are
    lost after HubSpot applied them (the connection drops)."""
    batch = large_batch
    emulator.control(
        "POST", "faults", json={"kind": "drop_after", "count": 30, "every": 7, "path_endswith": WRITE_PATH}
    )
    state, rows, _ = run_batch(emulator, batch, tmp_path)
    assert state == "success"
    outcomes = check_ledger_against_emulator(emulator, batch, rows)
    assert_all_done(batch, outcomes)
    assert sum(r["reason"] == LOST_ANSWER_REASON for r in rows) > 0
    assert write_statuses(emulator)[444] == 30


def test_an_applied_write_then_a_refused_refresh_is_not_reported_not_sent(emulator, tmp_path, monkeypatch):
    """Review of issue 23, 1: the write is applied and its answer lost, twice; by the third attempt
    the 1 s access token is due for refresh, and HubSpot refuses the refresh token (the app was
    uninstalled meanwhile, say). The ledger must not say "not sent" of contacts HubSpot changed."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT",
        json.dumps(
            {
                "conn_type": "hubspot_prefs",
                "extra": {
                    "base_url": emulator.url,
                    "client_id": DEMO_OAUTH_CLIENT_ID,
                    "client_secret": DEMO_OAUTH_CLIENT_SECRET,
                    "refresh_token": DEMO_REFRESH_TOKEN,
                },
            }
        ),
    )
    emulator.control("PATCH", "config", json={"access_token_ttl": 1})
    emulator.control("POST", "faults", json={"kind": "drop_after", "count": 2, "path_endswith": WRITE_PATH})
    # The first token request is answered; the second (the refresh) is refused.
    refused = {"status": 400, "category": "BAD_REFRESH_TOKEN", "every": 2, "count": 1}
    emulator.control("POST", "faults", json={**refused, "path_endswith": "/oauth/v1/token"})
    source = tmp_path / "in.txt"
    source.write_text("".join(f"refused-refresh-{i}@example.com\n" for i in range(3)))
    ledger = tmp_path / "ledger.csv"
    provider_dag("test_batch_unsubscribe_poll").test(
        run_conf={"input_path": str(source), "ledger_path": str(ledger)}
    )
    changed = {email for email, _ in emulator.backend.changes}
    rows = ledger_rows(ledger)
    assert changed and {r["subscriber_id"] for r in rows} >= changed
    for row in rows:
        if row["subscriber_id"] in changed:
            assert row["outcome"] != "not_attempted" and "may have applied" in row["reason"], row
