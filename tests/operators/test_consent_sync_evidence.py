"""The consent sync's evidence, as an independent review of issue 22's change tried to break it.

What the sync takes for its own earlier write (the journal), for a later decision, and for a write
of this task run must be what HubSpot and the journal really say: each case here once resubscribed
someone who unsubscribed themselves, lost a withdrawal, wrote past ``max_changes`` or claimed a
change nobody made. Over real HTTP against the emulator.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_hubspot_prefs.ledger import read_rows, sync_journal
from airflow_provider_hubspot_prefs.operators import (
    HubSpotExportSubscriptionStatusesOperator,
    HubSpotSyncSubscriptionStatusesOperator,
)

from ..batch_try import context
from ..conftest import connect_to_emulator
from ..consent_support import BEFORE, EXPLANATION
from .test_consent_sync_unknowns import ago, outcomes, person_acts_at_the_next_write, row, sync


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """A connection to the emulator."""


# ---- what the journal takes for the sync's own write ------------------------------------------------


def test_a_person_who_chose_the_same_status_as_the_write_arrived_is_not_the_sync(emulator, tmp_path):
    """HubSpot answers NO_STATUS_CHANGE: the person got there first. That status is theirs."""
    backend = emulator.backend
    person = "race@example.com"
    backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    night1 = [row(person, "UNSUBSCRIBED", ago(hours=3))]
    person_acts_at_the_next_write(emulator, person, "UNSUBSCRIBED")
    _, ledger = sync(tmp_path, "scheduled__race1", rows=night1)
    assert outcomes(ledger) == ["already_in_state"]
    backend.status_writes.clear()
    # A SUBSCRIBED decided two hours ago, before the person's own unsubscribe, arrives late.
    _, ledger = sync(tmp_path, "scheduled__race2", rows=[*night1, row(person, "SUBSCRIBED", ago(hours=2))])
    assert outcomes(ledger) == ["duplicate", "kept_newer_in_hubspot"]
    assert backend.status_writes == [] and backend.statuses[(person, 1001)].status == "UNSUBSCRIBED"


@pytest.mark.parametrize("status", [400, 403])
def test_a_write_hubspot_refused_is_not_taken_for_the_sync_later(emulator, tmp_path, status):
    """A write refused as a whole (400), or never sent (a fatal 403), leaves no write to match."""
    backend = emulator.backend
    person = "refused@example.com"
    backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [row(person, "UNSUBSCRIBED", ago(hours=3))]
    fault: dict[str, Any] = {"kind": "error", "status": status, "path_endswith": "batch/write", "count": 5}
    if status == 403:
        fault["category"] = "MISSING_SCOPES"
    emulator.control("POST", "faults", json=fault)
    with pytest.raises(AirflowException):
        sync(tmp_path, "scheduled__refused1", rows=rows)
    backend.faults.clear()
    assert backend.statuses[(person, 1001)].status == "SUBSCRIBED"
    backend.person_choice(person, 1001, "UNSUBSCRIBED")  # the person unsubscribes themselves
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, "scheduled__refused2", rows=[*rows, row(person, "SUBSCRIBED", ago(hours=2))])
    assert outcomes(ledger) == ["duplicate", "kept_newer_in_hubspot"]
    assert backend.status_writes == []


@pytest.mark.parametrize(
    "fault",
    [
        # The plan's read answers; the re-read just before the write answers 207 for the contact.
        {"kind": "partial", "path_endswith": "statuses/batch/read", "reject_contains": "+flaky", "every": 2},
        # HubSpot refuses the write for this contact (207).
        {"kind": "partial", "path_endswith": "batch/write", "reject_contains": "+flaky"},
    ],
    ids=["not-sent-after-the-re-read", "write-refused"],
)
def test_a_retry_claims_no_change_it_did_not_send(emulator, tmp_path, fault):
    backend = emulator.backend
    person = "retry+flaky@example.com"
    backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [row(person, "UNSUBSCRIBED", ago(hours=3))]
    emulator.control("POST", "faults", json={"count": 1, **fault})
    with pytest.raises(AirflowException):
        sync(tmp_path, "scheduled__claim", 1, rows=rows)
    backend.faults.clear()
    backend.person_choice(person, 1001, "UNSUBSCRIBED")  # before the retry, the person acts
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, "scheduled__claim", 2, rows=rows)
    assert outcomes(ledger) == ["already_in_state"], ledger[0]["reason"]
    # Nor does the next night take the person's change for the sync's.
    _, ledger = sync(tmp_path, "scheduled__claim_next", rows=[*rows, row(person, "SUBSCRIBED", ago(hours=2))])
    assert outcomes(ledger) == ["duplicate", "kept_newer_in_hubspot"]
    assert backend.status_writes == []


def test_folding_the_journal_keeps_what_identifies_the_syncs_write(tmp_path):
    """Four nights of a write planned and not sent must not fold away the answer that says which
    status was the sync's."""
    folder = str(tmp_path / "journal")
    key = sync_journal.journal_key(0, "late@example.com", 1001)
    source = "Communication Preferences API"

    def add(entry: sync_journal.JournalEntry) -> None:
        journal = sync_journal.SyncJournal(folder, Path(tempfile.mktemp(dir=tmp_path)))
        journal.append([entry])
        journal.close()

    add(sync_journal.JournalEntry(key, "SUBSCRIBED", 500.0, 999.0, None, task="night1"))
    add(
        sync_journal.JournalEntry(
            key, "SUBSCRIBED", 500.0, 1001.0, True, 1000.0, source, task="night1", changed=True
        )
    )
    for n in range(4):
        add(sync_journal.JournalEntry(key, "UNSUBSCRIBED", 700.0, 2000.0 + n, False, task=f"night{n + 2}"))
    for n in range(sync_journal.FOLD_AFTER):
        add(sync_journal.JournalEntry(f"other{n}", "UNSUBSCRIBED", 1.0, 1.0, True, 1.0, changed=True))
    journal = sync_journal.SyncJournal(folder, tmp_path / "fold.sqlite")
    journal.load()
    assert journal.histories([key])[key].sync_write("SUBSCRIBED", 1000.0, source) is not None
    assert journal.fold(now=10_000.0)
    journal.close()
    journal = sync_journal.SyncJournal(folder, tmp_path / "after.sqlite")
    journal.load()
    assert len(list(Path(folder).glob("*.jsonl"))) == 1
    written = journal.histories([key])[key].sync_write("SUBSCRIBED", 1000.0, source)
    assert written is not None and written.decided == 500.0
    journal.close()


def test_without_a_journal_path_a_deployment_of_many_workers_refuses_to_guess(emulator, tmp_path):
    """Each worker's own default folder would be a journal of its own: a run elsewhere would take
    the sync's earlier writes for a person's. The task says so and sends nothing."""
    emulator.control("DELETE", "requests")
    with pytest.raises(AirflowFailException, match="journal_path is needed with CeleryExecutor"):
        HubSpotSyncSubscriptionStatusesOperator(
            task_id="sync",
            rows=[row("celery@example.com", "UNSUBSCRIBED", ago(hours=1))],
            ledger_path=str(tmp_path / "celery.csv"),
            executor="CeleryExecutor",
        ).execute(context("manual__celery", 1, task_id="sync"))
    assert emulator.control("GET", "requests")["requests"] == []
    assert outcomes(list(read_rows(str(tmp_path / "celery.csv")))) == ["not_attempted"]


def test_max_changes_counts_what_earlier_tries_wrote_after_the_input_changed(emulator, tmp_path, monkeypatch):
    backend = emulator.backend
    first = [f"first.{i:02d}@example.com" for i in range(30)]
    second = [f"second.{i:02d}@example.com" for i in range(30)]
    for person in first + second:
        backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    connect_to_emulator(monkeypatch, emulator, max_retries=1)
    # Applied, answers lost: the first try fails having changed 30 contacts.
    emulator.control(
        "POST", "faults", json={"kind": "drop_after", "count": 10, "path_endswith": "batch/write"}
    )
    with pytest.raises(AirflowException):
        sync(
            tmp_path,
            "manual__limit",
            1,
            rows=[row(p, "UNSUBSCRIBED", ago(hours=1)) for p in first],
            max_changes=30,
        )
    backend.faults.clear()
    # The input changed (30 other rows); the retry runs on another worker.
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "other-worker"))
    backend.status_writes.clear()
    with pytest.raises(AirflowFailException, match="besides 30 written by earlier tries"):
        sync(
            tmp_path,
            "manual__limit",
            2,
            rows=[row(p, "UNSUBSCRIBED", ago(hours=1)) for p in second],
            max_changes=30,
        )
    assert backend.status_writes == []


# ---- later decisions that cannot be used, and ties ------------------------------------------------


@pytest.mark.parametrize(
    "decided",
    ["20261120", "0", "1970-01-01T00:00:00Z", "(yesterday)", "a date only"],
    ids=["yyyymmdd-number", "zero", "epoch-start", "unreadable", "date-only"],
)
def test_a_later_row_of_unknown_time_stops_the_earlier_decision(emulator, tmp_path, decided):
    backend = emulator.backend
    person = "unknown.time@example.com"
    backend.set_history(person, 1001, "UNSUBSCRIBED", BEFORE)
    day = (datetime.now(timezone.utc) - timedelta(days=2)).date().isoformat()
    earlier = f"{day}T15:00:00Z" if decided == "a date only" else ago(days=1)
    rows = [
        row(person, "SUBSCRIBED", earlier),
        row(person, "UNSUBSCRIBED", day if decided == "a date only" else decided),
    ]
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, f"manual__time_{abs(hash(decided))}", rows=rows)
    assert outcomes(ledger) == ["duplicate", "invalid_input"], [r["reason"] for r in ledger]
    assert ledger[0]["reason"].startswith("superseded by a later decision") and backend.status_writes == []


@pytest.mark.parametrize("order", ["unsubscribed-first", "subscribed-first"])
def test_decisions_that_disagree_at_the_same_moment_write_nothing(emulator, tmp_path, order):
    backend = emulator.backend
    person = "tie@example.com"
    backend.set_history(person, 1001, "UNSUBSCRIBED", BEFORE)
    moment = ago(hours=1)
    pair = [row(person, "UNSUBSCRIBED", moment), row(person, "SUBSCRIBED", moment)]
    same = row("same@example.com", "UNSUBSCRIBED", moment)  # two identical rows are one decision
    backend.set_history("same@example.com", 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [*(pair if order == "unsubscribed-first" else pair[::-1]), same, dict(same)]
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, f"manual__tie_{order}", rows=rows)
    assert outcomes(ledger) == ["duplicate", "duplicate", "duplicate", "status_set"]
    assert "lines 1 and 2 decide differently at the same time" in ledger[0]["reason"]
    assert backend.status_writes == [("same@example.com", 1001, "UNSUBSCRIBED")]


def test_odd_digits_refuse_their_row_and_the_rest_syncs(emulator, tmp_path):
    backend = emulator.backend
    backend.set_history("fine@example.com", 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [
        row("fine@example.com", "UNSUBSCRIBED", ago(hours=1)),
        row("odd@example.com", "UNSUBSCRIBED", ago(hours=1), "1001²"),
        row("odd@example.com", "UNSUBSCRIBED", ago(hours=1), 1001, business_unit_id="①"),
    ]
    _, ledger = sync(tmp_path, "manual__digits", rows=rows)
    assert outcomes(ledger) == ["status_set", "invalid_input", "invalid_input"]
    assert ledger[1]["reason"].startswith("subscription_id '1001²' is not a positive whole number")
    assert ledger[2]["reason"].startswith("business_unit_id '①' is not a whole number")


# ---- what HubSpot's answers leave unknown ---------------------------------------------------------


def test_a_hubspot_status_dated_without_a_time_zone_is_not_weighed(emulator, tmp_path):
    backend = emulator.backend
    backend.set_history("naive@example.com", 1001, "SUBSCRIBED", "2026-11-20T12:00:00")  # no offset
    backend.set_history("dated@example.com", 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [row(p, "UNSUBSCRIBED", ago(hours=1)) for p in ("naive@example.com", "dated@example.com")]
    backend.status_writes.clear()
    with pytest.raises(AirflowException, match="1 of"):
        sync(tmp_path, "manual__naive", rows=rows)
    ledger = list(read_rows(str(tmp_path / "manual__naive.csv")))
    assert outcomes(ledger) == ["failed", "status_set"]
    assert "without a time zone" in ledger[0]["reason"]
    assert backend.status_writes == [("dated@example.com", 1001, "UNSUBSCRIBED")]


def test_the_export_says_which_subscription_hubspots_answer_left_out(emulator, tmp_path):
    backend = emulator.backend
    for person in ("gap@example.com", "whole@example.com"):
        backend.set_history(person, 1001, "UNSUBSCRIBED", BEFORE)
    emulator.control(
        "POST",
        "faults",
        json={
            "kind": "omit",
            "path_endswith": "statuses/batch/read",
            "reject_contains": "gap@",
            "subscription_id": 1001,
        },
    )
    output = tmp_path / "statuses.csv"
    with pytest.raises(AirflowException, match="1 error row"):
        HubSpotExportSubscriptionStatusesOperator(
            task_id="export", subscribers=["gap@example.com", "whole@example.com"], output_path=str(output)
        ).execute(context("manual__export_gap", 1))
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    gap = [r for r in rows if r["subscriber_id"] == "gap@example.com"]
    whole = [r for r in rows if r["subscriber_id"] == "whole@example.com"]
    assert len(gap) == len(whole)  # one row for the missing subscription, in its place
    (error,) = [r for r in gap if r["kind"] == "error"]
    assert error["message"].startswith("status of subscription 1001 not read: HubSpot's answer left it out")
