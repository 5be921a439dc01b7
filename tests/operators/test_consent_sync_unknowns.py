"""The consent sync never acts on what it did not read, and never loses a later decision (issue 22).

Each case over real HTTP against the emulator; each resubscribed, overwrote or lost someone's
choice before the fix. The rule: a row whose state in HubSpot was not read, whose later decision
cannot be read, or whose time is implausible is never written; its ledger row says what was not
known, and the rest of the input still syncs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_hubspot_prefs.ledger import read_rows
from airflow_provider_hubspot_prefs.ledger.desired_state import COLUMNS
from airflow_provider_hubspot_prefs.operators import HubSpotSyncSubscriptionStatusesOperator

from ..batch_try import context
from ..conftest import api_requests, connect_to_emulator
from ..consent_support import BEFORE, EXPLANATION


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """A connection to the emulator."""


def ago(**delta: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def row(person: str, status: str, decided: Any, subscription: Any = 1001, **extra: Any) -> dict[str, Any]:
    basis = {"legal_basis": "CONSENT_WITH_NOTICE", "legal_basis_explanation": EXPLANATION}
    return {
        "subscriber_id": person,
        "subscription_id": subscription,
        "status": status,
        **(basis if status == "SUBSCRIBED" else {}),
        "decided_at": decided,
        **extra,
    }


def sync(
    tmp_path: Path, run_id: str, try_number: int = 1, **params: Any
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Try ``try_number`` of one run of the sync, with this test's journal; its summary and ledger."""
    ledger = tmp_path / f"{run_id}.csv"
    params.setdefault("journal_path", str(tmp_path / "journal"))
    summary = HubSpotSyncSubscriptionStatusesOperator(
        task_id="sync", ledger_path=str(ledger), **params
    ).execute(context(run_id, try_number, task_id="sync"))
    return summary, list(read_rows(str(ledger)))


def person_acts_at_the_next_write(emulator: Any, email: str, state: str, subscription: int = 1001) -> None:
    """As the sync's next batch write arrives, the person sets that status themselves."""
    fault = {
        "kind": "choice",
        "path_endswith": "batch/write",
        "email": email,
        "subscription_id": subscription,
    }
    emulator.control("POST", "faults", json={**fault, "state": state})


def outcomes(ledger: list[dict[str, str]]) -> list[str]:
    return [r["outcome"] for r in ledger]


# ---- 1. the sync's own write is not a person's newer choice ----------------------------------------


def test_a_decision_that_arrives_late_is_applied_while_a_persons_own_later_change_is_kept(emulator, tmp_path):
    backend = emulator.backend
    late, unsubscribed, resaved = (
        "late.arrival@example.com",
        "own.unsubscribe@example.com",
        "own.resave@example.com",
    )
    for person in (late, unsubscribed, resaved):
        backend.set_history(person, 1001, "UNSUBSCRIBED", BEFORE)
    # Night 1: each decided to subscribe three hours ago; the sync writes it now.
    decided_a = ago(hours=3)
    night1 = [row(p, "SUBSCRIBED", decided_a) for p in (late, unsubscribed, resaved)]
    _, ledger = sync(tmp_path, "scheduled__night1", rows=night1)
    assert outcomes(ledger) == ["status_set"] * 3
    # After that write, two of them act in HubSpot themselves: one unsubscribes, one saves their
    # preference page again (same status, a new date and a source that is not the API).
    backend.person_choice(unsubscribed, 1001, "UNSUBSCRIBED")
    backend.person_choice(resaved, 1001, "SUBSCRIBED")
    # Night 2: decisions made two hours ago (before the night-1 write) reach the warehouse a day late.
    decided_b = ago(hours=2)
    night2 = [
        *night1,
        row(late, "UNSUBSCRIBED", decided_b),  # withdrew consent: must be applied
        row(unsubscribed, "SUBSCRIBED", decided_b),  # the person's own unsubscribe is newer: kept
        row(resaved, "UNSUBSCRIBED", decided_b),  # the person's own re-save is newer: kept
    ]
    backend.status_writes.clear()
    _, plan = sync(tmp_path, "scheduled__night2_plan", rows=night2, dry_run=True)
    summary, ledger = sync(tmp_path, "scheduled__night2", rows=night2)
    assert outcomes(ledger) == [
        "duplicate",
        "duplicate",
        "duplicate",
        "status_set",
        "kept_newer_in_hubspot",
        "kept_newer_in_hubspot",
    ]
    assert outcomes(plan)[3:] == ["not_attempted", "kept_newer_in_hubspot", "kept_newer_in_hubspot"]
    assert backend.status_writes == [(late, 1001, "UNSUBSCRIBED")]
    assert backend.statuses[(late, 1001)].status == "UNSUBSCRIBED"
    assert backend.statuses[(unsubscribed, 1001)].status == "UNSUBSCRIBED"
    assert backend.statuses[(resaved, 1001)].status == "SUBSCRIBED"
    assert "the sync's write of the decision at" in ledger[3]["reason"]
    # Night 3: nothing changed; HubSpot holds what night 2 wrote, and nothing is written.
    summary, ledger = sync(tmp_path, "scheduled__night3", rows=night2)
    assert summary["requests"]["write"] == 0
    assert outcomes(ledger)[3:] == ["already_in_state", "kept_newer_in_hubspot", "kept_newer_in_hubspot"]


# ---- 2. the latest decision wins even when it cannot be read ----------------------------------------


def test_an_unreadable_later_decision_stops_the_earlier_one(emulator, tmp_path):
    backend = emulator.backend
    blocked, unknown_time, older_typo = "blocked@example.com", "when@example.com", "older.typo@example.com"
    backend.add_contacts([blocked, unknown_time, older_typo])
    rows = [
        row(blocked, "SUBSCRIBED", "2026-02-10T09:00:00Z"),
        row(blocked, "UNSUBSCRIBE", "2026-06-10T09:00:00Z"),  # a typo
        row(blocked, "UNSUBSCRIBED", "2026-07-10T09:00:00"),  # no time zone
        row(unknown_time, "SUBSCRIBED", "2026-02-10T09:00:00Z"),
        row(unknown_time, "UNSUBSCRIBED", "last tuesday"),  # when? it may be the latest
        row(older_typo, "UNSUBSCRIBE", "2026-02-10T09:00:00Z"),  # older than the valid row below
        row(older_typo, "UNSUBSCRIBED", "2026-07-10T09:00:00Z"),
    ]
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, "manual__unreadable", rows=rows)
    assert outcomes(ledger) == [
        "duplicate",
        "invalid_input",
        "invalid_input",
        "duplicate",
        "invalid_input",
        "invalid_input",
        "status_set",
    ]
    assert ledger[0]["reason"].startswith(
        "superseded by a later decision for the same contact and subscription that cannot be used, line 3"
    )
    assert "has no time zone" in ledger[0]["reason"] and "line 5" in ledger[3]["reason"]
    assert backend.status_writes == [(older_typo, 1001, "UNSUBSCRIBED")]


# ---- 3. what was not read is unknown, never "nothing set" -------------------------------------------


def test_a_subscription_of_another_business_unit_is_read_in_that_unit(emulator, tmp_path):
    backend = emulator.backend
    person = "brand.b@example.com"
    backend.set_history(person, 2001, "SUBSCRIBED", ago(minutes=5), "CONSENT_WITH_NOTICE", EXPLANATION)
    backend.status_writes.clear()
    rows = [
        row(person, "UNSUBSCRIBED", ago(days=2), 2001, business_unit_id=1),
        row("other.unit@example.com", "UNSUBSCRIBED", ago(days=2), 2001),  # no unit: the default 0
    ]
    _, ledger = sync(tmp_path, "manual__units", rows=rows)
    assert outcomes(ledger) == ["kept_newer_in_hubspot", "invalid_input"]
    assert "subscription_id 2001 is not a subscription of business unit 0" in ledger[1]["reason"]
    assert backend.status_writes == []
    assert backend.statuses[(person, 2001)].status == "SUBSCRIBED"
    reads = [r for r in api_requests(emulator) if r["path"].endswith("statuses/batch/read")]
    assert any("businessUnitId=1" in r.get("query", "") for r in reads), reads


@pytest.mark.parametrize(
    ("fault", "reason", "other_subscription"),
    [
        (
            {"kind": "partial", "path_endswith": "statuses/batch/read", "reject_contains": "+hidden"},
            "HubSpot's statuses not read: HubSpot answered INTERNAL_ERROR",
            "failed",
        ),
        (
            {"kind": "omit", "path_endswith": "statuses/batch/read", "reject_contains": "+hidden"},
            "HubSpot's statuses missing from HubSpot's answer",
            "failed",
        ),
        (
            {
                "kind": "omit",
                "path_endswith": "statuses/batch/read",
                "reject_contains": "+hidden",
                "subscription_id": 1001,
            },
            "HubSpot's answer has no status of subscription 1001",
            "status_set",
        ),
        (
            {"kind": "partial", "path_endswith": "unsubscribe-all/read", "reject_contains": "+hidden"},
            "the opt-out of all email not read: HubSpot answered INTERNAL_ERROR",
            "status_set",  # an unsubscribe needs no opt-out read
        ),
        (
            {"kind": "omit", "path_endswith": "unsubscribe-all/read", "reject_contains": "+hidden"},
            "the opt-out of all email missing from HubSpot's answer",
            "status_set",
        ),
    ],
    ids=["207-error", "contact-missing", "subscription-missing", "opt-out-207-error", "opt-out-missing"],
)
def test_a_contact_missing_from_a_read_is_not_written(emulator, tmp_path, fault, reason, other_subscription):
    backend = emulator.backend
    hidden, seen = "jo+hidden@example.com", "jo@example.com"
    for person in (hidden, seen):  # unsubscribed from everything a month ago
        backend.set_history(person, 1001, "UNSUBSCRIBED", BEFORE)
        backend.set_opted_out(person, BEFORE)
    rows = [row(p, "SUBSCRIBED", ago(hours=1)) for p in (hidden, seen)]
    rows.append(row("ann+hidden@example.com", "UNSUBSCRIBED", ago(hours=1), 1004))
    backend.set_history(
        "ann+hidden@example.com", 1004, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION
    )
    emulator.control("POST", "faults", json={"count": 100, **fault})
    backend.status_writes.clear()
    with pytest.raises(AirflowException, match="failed"):  # max_failure_ratio 0: the unread rows fail it
        sync(tmp_path, "manual__partial", rows=rows, allow_resubscribe=True)
    backend.faults.clear()
    ledger = list(read_rows(str(tmp_path / "manual__partial.csv")))
    assert outcomes(ledger) == ["failed", "status_set", other_subscription]
    assert ledger[0]["reason"].startswith("nothing written: " + reason), ledger[0]["reason"]
    # Nothing was written for the contact whose state was not read: no resubscribe, no overwrite.
    assert (hidden, 1001, "SUBSCRIBED") not in backend.status_writes
    assert (hidden, 0) in backend.wide
    assert (seen, 1001, "SUBSCRIBED") in backend.status_writes


def test_a_subscription_that_exists_nowhere_is_refused_before_anything_is_sent(emulator, tmp_path):
    backend = emulator.backend
    backend.add_contacts(["nowhere@example.com"])
    _, ledger = sync(
        tmp_path,
        "manual__nowhere",
        rows=[row("nowhere@example.com", "UNSUBSCRIBED", ago(hours=1), 9999)],
        fail_on_empty_input=False,
    )
    assert outcomes(ledger) == ["invalid_input"]
    assert ledger[0]["reason"].startswith("subscription_id 9999 is not a subscription of business unit 0")
    assert not [r for r in api_requests(emulator) if r["path"].endswith("statuses/batch/write")]


# ---- 4. and 5. implausible and malformed times ------------------------------------------------------


def test_a_decision_dated_in_the_future_is_refused(emulator, tmp_path):
    backend = emulator.backend
    person = "future@example.com"
    backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    backend.person_choice(person, 1001, "UNSUBSCRIBED", at=ago(minutes=1))
    backend.status_writes.clear()
    _, ledger = sync(
        tmp_path,
        "manual__future",
        rows=[row(person, "SUBSCRIBED", "2027-01-02T09:00:00Z")],
        fail_on_empty_input=False,
    )
    assert outcomes(ledger) == ["invalid_input"]
    assert ledger[0]["reason"].startswith("decided_at 2027-01-02T09:00:00+00:00 is in the future")
    assert backend.status_writes == [] and backend.statuses[(person, 1001)].status == "UNSUBSCRIBED"


def test_malformed_times_are_refused_by_line_and_the_rest_of_the_file_syncs(emulator, tmp_path):
    backend = emulator.backend
    people = [f"times.{i}@example.com" for i in range(7)]
    for person in people:
        backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    decided = int(datetime.now(timezone.utc).timestamp()) - 3600
    lines = [
        {
            "subscriber_id": people[0],
            "subscription_id": 1001,
            "status": "UNSUBSCRIBED",
            "decided_at": decided * 1000,
        },
        # Python's json writes NaN (JSON has no such number); warehouses print large numbers as 1e20.
        {
            "subscriber_id": people[1],
            "subscription_id": 1001,
            "status": "UNSUBSCRIBED",
            "decided_at": float("nan"),
        },
        {"subscriber_id": people[2], "subscription_id": 1001, "status": "UNSUBSCRIBED", "decided_at": 1e20},
        {
            "subscriber_id": people[3],
            "subscription_id": 1001,
            "status": "UNSUBSCRIBED",
            "decided_at": decided,
        },
        {
            "subscriber_id": people[4],
            "subscription_id": 1001,
            "status": "UNSUBSCRIBED",
            "decided_at": str(decided),
        },
        {"subscriber_id": people[5], "subscription_id": 1001, "status": "UNSUBSCRIBED", "decided_at": -5},
        {
            "subscriber_id": people[6],
            "subscription_id": 1001,
            "status": "UNSUBSCRIBED",
            "decided_at": ago(hours=1),
        },
    ]
    source = tmp_path / "times.jsonl"
    source.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, "manual__times", input_path=str(source))
    by_line = {int(r["line"]): r for r in ledger}
    assert [by_line[n]["outcome"] for n in range(1, 8)] == [
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "status_set",
        "status_set",
        "invalid_input",
        "status_set",
    ]
    assert "epoch milliseconds are not accepted" in by_line[1]["reason"]
    assert by_line[2]["reason"].startswith("decided_at nan is not a time")
    assert by_line[3]["reason"].startswith("decided_at 1E+20 is not a plausible time")
    assert "before 1990" in by_line[6]["reason"]
    assert sorted(backend.status_writes) == [(people[n], 1001, "UNSUBSCRIBED") for n in (3, 4, 6)]


def test_epoch_seconds_in_a_csv_cell_are_a_time(emulator, tmp_path):
    backend = emulator.backend
    backend.set_history("cell@example.com", 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    decided = int(datetime.now(timezone.utc).timestamp()) - 3600
    source = tmp_path / "epoch.csv"
    source.write_text(",".join(COLUMNS) + f"\r\ncell@example.com,1001,UNSUBSCRIBED,,,{decided}\r\n")
    _, ledger = sync(tmp_path, "manual__epoch_csv", input_path=str(source))
    assert outcomes(ledger) == ["status_set"]


# ---- 6. accepted at read means planned from what was read ---------------------------------------------


def test_a_warehouse_decimal_subscription_id_is_synced(emulator, tmp_path):
    backend = emulator.backend
    backend.set_history("numeric@example.com", 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    backend.set_history("numeric@example.com", 1004, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    decided = Decimal(int(datetime.now(timezone.utc).timestamp()) - 3600)
    rows = [
        row("numeric@example.com", "UNSUBSCRIBED", decided, Decimal("1001.0")),
        row("numeric@example.com", "UNSUBSCRIBED", ago(hours=2), Decimal("1004.000")),
    ]
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, "manual__decimal", rows=rows)
    assert outcomes(ledger) == ["status_set", "status_set"]
    assert sorted(backend.status_writes) == [
        ("numeric@example.com", 1001, "UNSUBSCRIBED"),
        ("numeric@example.com", 1004, "UNSUBSCRIBED"),
    ]


# ---- 7. a retry on another worker plans again when the rows came back in another order --------------


def test_a_retry_elsewhere_after_the_rows_were_reordered_finishes_and_writes_each_row_once(
    emulator, tmp_path, monkeypatch
):
    backend = emulator.backend
    decided = ago(hours=1)
    rows = []
    for i in range(300):
        person = f"reorder.{i:03d}@example.com"
        backend.set_history(person, 1004, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
        status = "UNSUBSCRIBED" if i % 10 == 0 else "SUBSCRIBED"
        basis = ("CONSENT_WITH_NOTICE", EXPLANATION) if status == "SUBSCRIBED" else (None, None)
        rows.append((person, 1004, status, *basis, decided))
    differing = {r[0] for r in rows if r[2] == "UNSUBSCRIBED"}
    database = tmp_path / "consent.db"

    def load(ordered: list[tuple[Any, ...]]) -> None:
        with sqlite3.connect(database) as db:
            db.execute("DROP TABLE IF EXISTS consent")
            db.execute(f"CREATE TABLE consent ({', '.join(COLUMNS)})")
            db.executemany("INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?)", ordered)

    load(rows)
    monkeypatch.setenv("AIRFLOW_CONN_CONSENT_DB", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    connect_to_emulator(monkeypatch, emulator, max_retries=1)
    # Every write is applied and its answer lost: the first try fails, "may have applied".
    emulator.control(
        "POST", "faults", json={"kind": "drop_after", "count": 10, "path_endswith": "batch/write"}
    )
    backend.status_writes.clear()
    ledger = tmp_path / "reorder.csv"
    operator = dict(
        task_id="sync",
        conn_id="consent_db",
        sql="SELECT * FROM consent",  # no ORDER BY: the table's order
        ledger_path=str(ledger),
        journal_path=str(tmp_path / "journal"),
    )
    with pytest.raises(AirflowException):
        HubSpotSyncSubscriptionStatusesOperator(**operator).execute(
            context("manual__reorder", 1, task_id="sync")
        )
    backend.faults.clear()
    assert all(backend.changes[(p, 1004)] == 1 for p in differing)
    # The warehouse answers in another order, and one row changed meanwhile; the retry runs elsewhere.
    changed = [*reversed(rows)]
    changed[0] = (changed[0][0], 1004, "UNSUBSCRIBED", None, None, decided)  # reorder.299 withdrew too
    load(changed)
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "other-worker"))
    summary = HubSpotSyncSubscriptionStatusesOperator(**operator).execute(
        context("manual__reorder", 2, task_id="sync")
    )
    found = list(read_rows(str(ledger)))
    assert len(found) == 300 and summary["outcomes"] == {"status_set": 31, "already_in_state": 269}
    by_person = {r["subscriber_id"]: r for r in found}
    assert all("earlier attempt" in by_person[p]["reason"] for p in differing)
    assert by_person["reorder.299@example.com"]["reason"].startswith("REQUESTED_CHANGE_OCCURRED")
    # Each differing row was applied once: the first try's writes were not sent again.
    assert all(backend.changes[(p, 1004)] == 1 for p in [*differing, "reorder.299@example.com"])
    assert summary["requests"]["write"] == 1


@pytest.mark.parametrize("refused", ["definitions", "statuses/batch/read"])
def test_a_retry_stopped_for_good_fails_the_rows_an_earlier_try_wrote_never_not_sent(
    emulator, tmp_path, monkeypatch, refused
):
    """Review 23 finding 2: try 1's writes are applied and their answers lost; try 2 runs elsewhere
    on the input in another order (so it plans afresh, with only the journal to say what try 1 sent)
    and HubSpot refuses its first read for good (403). Every row try 1 wrote ends ``failed`` (HubSpot
    may have applied it: a retry resends it safely), none ``not_attempted``."""
    backend = emulator.backend
    decided = ago(hours=1)
    people = [f"stopped.{i:02d}@example.com" for i in range(20)]
    for person in people:
        backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [row(p, "UNSUBSCRIBED", decided) for p in people]
    connect_to_emulator(monkeypatch, emulator, max_retries=1)
    emulator.control(
        "POST", "faults", json={"kind": "drop_after", "count": 10, "path_endswith": "batch/write"}
    )
    with pytest.raises(AirflowException):
        sync(tmp_path, "manual__stopped", rows=rows)
    backend.faults.clear()
    assert all(backend.changes[(p, 1001)] == 1 for p in people)
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "other-worker"))
    emulator.control("POST", "faults", json={"status": 403, "count": 100, "path_endswith": refused})
    with pytest.raises(AirflowException, match="not sent by this try"):
        sync(tmp_path, "manual__stopped", 2, rows=[*reversed(rows)])
    found = list(read_rows(str(tmp_path / "manual__stopped.csv")))
    assert len(found) == 20 and {r["outcome"] for r in found} == {"failed"}, found[0]
    for r in found:
        assert r["reason"].startswith(f"sent by an earlier try at {r['first_sent_at']}"), r
        assert "HubSpot may have applied it" in r["reason"] and "HTTP 403" in r["reason"], r


# ---- 8. the smaller ones ------------------------------------------------------------------------------


def test_csv_lines_keep_their_numbers_after_a_blank_line(emulator, tmp_path):
    backend = emulator.backend
    for person in ("first@example.com", "second@example.com"):
        backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    decided = ago(hours=1)
    source = tmp_path / "blank.csv"
    source.write_text(
        ",".join(COLUMNS)
        + f"\r\nfirst@example.com,1001,UNSUBSCRIBED,,,{decided}\r\n"
        + "\r\n"  # a blank line: csv.DictReader skips it, and every line after it was numbered one short
        + f"second@example.com,1001,SUBSCRIBED,,,{decided}\r\n"
    )
    _, ledger = sync(tmp_path, "manual__blank", input_path=str(source))
    assert [(r["line"], r["outcome"]) for r in ledger] == [
        ("2", "status_set"),
        ("3", "invalid_input"),
        ("4", "invalid_input"),  # SUBSCRIBED without a legal basis: line 4, not 3
    ]
    assert ledger[1]["reason"] == "empty line" and "legal_basis" in ledger[2]["reason"]


def test_a_legal_basis_hubspot_does_not_store_is_said_so_and_not_sent_every_night(emulator, tmp_path):
    backend = emulator.backend
    person = "basis@example.com"
    backend.set_history(
        person, 1001, "SUBSCRIBED", BEFORE, "LEGITIMATE_INTEREST_CLIENT", "Customer since 2020"
    )
    rows = [row(person, "SUBSCRIBED", ago(hours=1))]  # CONSENT_WITH_NOTICE now
    summary, ledger = sync(tmp_path, "scheduled__basis1", rows=rows)
    assert summary["requests"]["write"] == 1
    assert outcomes(ledger) == ["already_in_state"]
    assert (
        "HubSpot kept its legal basis LEGITIMATE_INTEREST_CLIENT; CONSENT_WITH_NOTICE was not stored"
        in (ledger[0]["reason"])
    )
    summary, ledger = sync(tmp_path, "scheduled__basis2", rows=rows)
    assert summary["requests"]["write"] == 0
    assert outcomes(ledger) == ["already_in_state"] and "not sent again" in ledger[0]["reason"]


def test_max_changes_is_checked_by_the_writing_task_before_its_first_write(emulator, tmp_path):
    backend = emulator.backend
    decided = ago(hours=1)
    rows = []
    for i in range(40):
        person = f"limit.{i:02d}@example.com"
        backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
        rows.append(row(person, "UNSUBSCRIBED" if i < 30 else "SUBSCRIBED", decided))
    backend.status_writes.clear()
    with pytest.raises(AirflowFailException, match="the plan writes 30 row"):
        sync(tmp_path, "manual__limit", rows=rows, max_changes=29)
    assert backend.status_writes == []
    ledger = list(read_rows(str(tmp_path / "manual__limit.csv")))
    assert outcomes(ledger) == ["not_attempted"] * 30 + ["already_in_state"] * 10
    assert "more than max_changes=29" in ledger[0]["reason"]
    summary, _ = sync(tmp_path, "manual__limit_ok", rows=rows, max_changes=30)
    assert summary["written"] == 30 and len(backend.status_writes) == 30


def test_rows_all_refused_fail_the_task_naming_rows_not_addresses(emulator, tmp_path):
    with pytest.raises(AirflowFailException, match=r"None of the 1 row\(s\) of the desired state"):
        sync(
            tmp_path, "manual__refused_all", rows=[row("a@example.com", "UNSUBSCRIBED", ago(hours=1), "abc")]
        )


def test_a_change_in_hubspot_after_the_plan_is_seen_before_the_write(emulator, tmp_path):
    """Each write batch's contacts are read again just before it is sent: a person who resubscribes
    while the first batch is being written keeps their choice."""
    backend = emulator.backend
    decided = ago(hours=1)
    people = [f"gap.{i:03d}@example.com" for i in range(150)]
    for person in people:
        backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    late = people[-1]  # in the second write batch
    person_acts_at_the_next_write(emulator, late, "SUBSCRIBED")
    backend.status_writes.clear()
    summary, ledger = sync(
        tmp_path, "manual__gap", rows=[row(p, "UNSUBSCRIBED", decided) for p in people], max_in_flight=1
    )
    assert outcomes(ledger) == ["status_set"] * 149 + ["kept_newer_in_hubspot"]
    assert (late, 1001, "UNSUBSCRIBED") not in backend.status_writes
    assert backend.statuses[(late, 1001)].status == "SUBSCRIBED"
    # One re-read a write batch (unsubscribing needs no opt-out read), and the gap it leaves.
    assert summary["requests"]["write"] == 2 and summary["requests"]["reread_before_write"] == 2
    assert 0 < summary["max_read_to_write_seconds"] < 60


def test_the_journal_is_shared_by_concurrent_writers_without_losing_entries(tmp_path):
    """Two syncs appending to one journal at once, and one folding it: every entry survives."""
    from airflow_provider_hubspot_prefs.ledger import sync_journal

    folder = str(tmp_path / "journal")
    for n in range(sync_journal.FOLD_AFTER + 2):
        journal = sync_journal.SyncJournal(folder, tmp_path / f"seed{n}.sqlite")
        journal.append(
            [sync_journal.JournalEntry(f"k{n}", "UNSUBSCRIBED", 1.0, float(n), True, 5.0, changed=True)]
        )
        journal.close()
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            journal = sync_journal.SyncJournal(folder, tmp_path / f"{name}.sqlite")
            journal.load()
            journal.fold(time.time())
            journal.append(
                [sync_journal.JournalEntry(name, "SUBSCRIBED", 1.0, 99.0, True, 5.0, changed=True)]
            )
            journal.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reader = sync_journal.SyncJournal(folder, tmp_path / "reader.sqlite")
    reader.load()
    keys = [f"k{n}" for n in range(sync_journal.FOLD_AFTER + 2)] + [f"w{i}" for i in range(4)]
    assert all(history.entries for history in reader.histories(keys).values())
    reader.close()
