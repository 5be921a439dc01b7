"""Deadlines and time to confirmation in the views: the task instance's, the run's and the lookup's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from airflow_provider_hubspot_prefs.ledger.deadlines import Deadline
from airflow_provider_hubspot_prefs.ledger.store import iso_utc

from .conftest import ApiServer, write_ledger
from .test_views import RUN_ID, TI

DAY = 86400.0


def _rows(now: float) -> list[dict[str, Any]]:
    """One row per deadline state, under a 15-day deadline with a 2-day warning."""
    sent = "2026-01-01T10:00:00.000Z"
    return [
        # Confirmed 10 s to 100 s after the first send: the time to confirmation.
        {
            "line": 1,
            "outcome": "unsubscribed",
            "requested_at": "2026-01-01T09:00:00.000Z",
            "first_sent_at": sent,
            "confirmed_at": "2026-01-01T10:00:10.000Z",
        },  # met
        {
            "line": 2,
            "outcome": "unsubscribed",
            "requested_at": "2025-12-01T09:00:00.000Z",
            "first_sent_at": sent,
            "confirmed_at": "2026-01-01T10:00:20.000Z",
        },  # missed
        {
            "line": 3,
            "outcome": "unsubscribed",
            "requested_at": "2026-01-01T09:00:00.000Z",
            "first_sent_at": sent,
            "confirmed_at": "2026-01-01T10:00:30.000Z",
        },  # met
        {
            "line": 4,
            "outcome": "unsubscribed",
            "requested_at": "2026-01-01T09:00:00.000Z",
            "first_sent_at": sent,
            "confirmed_at": "2026-01-01T10:00:40.000Z",
        },  # met
        {
            "line": 5,
            "outcome": "unsubscribed",
            "requested_at": "2026-01-01T09:00:00.000Z",
            "first_sent_at": sent,
            "confirmed_at": "2026-01-01T10:01:40.000Z",
        },  # met
        {"line": 6, "outcome": "failed", "requested_at": "2026-01-01T09:00:00.000Z"},  # overdue
        {"line": 7, "outcome": "submitted", "requested_at": iso_utc(now - 14 * DAY)},  # near
        {"line": 8, "outcome": "submitted", "requested_at": iso_utc(now - DAY)},  # open
        {"line": 9, "outcome": "failed", "requested_at": "unreadable: last spring (no date)"},  # unknown
        {"line": 10, "outcome": "failed"},  # none
    ]


def test_the_views_show_deadline_states_and_time_to_confirmation(
    api_server: ApiServer, tmp_path: Path, index_ledger: Any
):
    rows = [
        {**row, "subscriber_id": f"p{row['line']}@example.com", "input": f"p{row['line']}@example.com"}
        for row in _rows(time.time())
    ]
    ledger = write_ledger(tmp_path / "ledger.csv", rows)
    deadline, warning = Deadline.parse("15 days"), Deadline.parse("2 days")
    index_ledger(
        ledger, "nightly", RUN_ID, "unsubscribe", deadline=deadline.to_json(), warning=warning.to_json()
    )
    with api_server.browser("auditor") as client:
        view = client.get("/hubspot-prefs/api/ti", params=TI).json()
        run = client.get("/hubspot-prefs/api/run", params={"dag_id": "nightly", "run_id": RUN_ID}).json()
        lookup = client.post("/hubspot-prefs/api/lookup", json={"address": "p2@example.com"}).json()
    deadlines = view["summary"]["deadlines"]
    assert deadlines["deadline"] == deadline.describe() and deadlines["warning"] == warning.describe()
    expected = {"met": 4, "missed": 1, "overdue": 1, "near": 1, "open": 1, "unknown": 1, "none": 1}
    assert deadlines["counts"] == expected
    assert sorted((r["line"], r["state"]) for r in deadlines["past"]) == [(2, "missed"), (6, "overdue")]
    assert [(r["line"], r["state"]) for r in deadlines["near"]] == [(7, "near")]
    assert view["summary"]["confirmation"] == {
        "confirmed_rows": 5,
        "median_s": 30.0,
        "p95_s": 100.0,
        "max_s": 100.0,
    }
    [listed] = run["ledgers"]
    assert listed["deadlines"] == {"deadline": deadline.describe(), "counts": expected}
    [row] = lookup["rows"]
    assert row["deadline"]["state"] == "missed" and row["confirmed_at"] == "2026-01-01T10:00:20.000Z"
    assert row["requested_at"] == "2025-12-01T09:00:00.000Z"
