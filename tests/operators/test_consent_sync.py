"""The consent sync over real HTTP against the emulator: only what differs is written, nothing newer
in HubSpot is overwritten, every desired row ends in exactly one truthful ledger row."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_hubspot_prefs.ledger import read_rows
from airflow_provider_hubspot_prefs.ledger.desired_state import COLUMNS
from airflow_provider_hubspot_prefs.operators import HubSpotSyncSubscriptionStatusesOperator

from ..batch_try import context
from ..conftest import connect_to_emulator
from ..consent_support import BEFORE, DECIDED, EXPLANATION, LATER
from ..ledger_support import mode

SUBSCRIPTIONS = (1001, 1002, 1003, 1004)


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """A connection to the emulator."""


@dataclass
class Scenario:
    rows: list[dict[str, object]]  # the desired state, in file order
    expected: dict[int, str]  # line (1 = first data row) -> outcome
    writes: set[tuple[str, int, str]]  # (contact, subscription, status) the sync must write
    kept: dict[tuple[str, int], str]  # statuses changed in HubSpot after the decision: key -> status


def build_scenario(backend, contacts: int = 2485, seed: int = 13) -> Scenario:
    """``contacts`` x 4 subscriptions in HubSpot and a desired state of ``contacts * 4 + 60`` rows:
    5% differ, 1% changed in HubSpot after the decision, 0.5% SUBSCRIBED without a legal basis,
    40 duplicates (20 copies, 20 older decisions after the row that replaced them) and 20 malformed."""
    rng = random.Random(seed)
    people = [f"sync.{i:05d}@example.com" for i in range(contacts)]
    keys = [(p, s) for p in people for s in SUBSCRIPTIONS]
    order = keys[:]
    rng.shuffle(order)
    n = len(keys)
    differ, newer, no_basis = set(order[: n // 20]), set(order[n // 20 : n // 20 + n // 100]), set()
    no_basis = set(order[n // 20 + n // 100 : n // 20 + n // 100 + n // 200])
    held: dict[tuple[str, int], str] = {}
    rows: list[dict[str, object]] = []
    kinds: list[str] = []
    writes: set[tuple[str, int, str]] = set()
    kept: dict[tuple[str, int], str] = {}
    for key in keys:
        person, subscription = key
        state = "SUBSCRIBED" if subscription in (1001, 1004) else "UNSUBSCRIBED"
        if key in no_basis:
            state = "UNSUBSCRIBED"  # a SUBSCRIBED row for it would be a write, if it were allowed
        basis = ("CONSENT_WITH_NOTICE", EXPLANATION) if state == "SUBSCRIBED" else (None, None)
        backend.set_history(person, subscription, state, BEFORE, *basis)
        held[key] = state
        row: dict[str, object] = {
            "subscriber_id": person,
            "subscription_id": subscription,
            "status": state,
            "legal_basis": basis[0] or "",
            "legal_basis_explanation": basis[1] or "",
            "decided_at": "2026-10-01T09:00:00Z",
        }
        kind = "already_in_state"
        flipped = "UNSUBSCRIBED" if state == "SUBSCRIBED" else "SUBSCRIBED"
        if key in differ or key in newer:
            row.update(status=flipped, decided_at=DECIDED)
            if flipped == "SUBSCRIBED":
                row.update(legal_basis="CONSENT_WITH_NOTICE", legal_basis_explanation=EXPLANATION)
            else:
                row.update(legal_basis="", legal_basis_explanation="")
            kind = "status_set"
            if key in newer:  # the person changed it in HubSpot after the snapshot: theirs stays
                backend.set_history(person, subscription, state, LATER)
                kept[key] = state
                kind = "kept_newer_in_hubspot"
            else:
                writes.add((person, subscription, flipped))
        elif key in no_basis:
            row.update(status="SUBSCRIBED", decided_at=DECIDED, legal_basis="", legal_basis_explanation="")
            kind = "invalid_input"
        rows.append(row)
        kinds.append(kind)
    # Ten contacts opted out of all email, five before the decision (subscribing them again needs
    # an opt-in) and five after it (their opt-out stays); each has a row asking to subscribe to 1002.
    plain = [p for p in people if all((p, s) not in differ | newer | no_basis for s in SUBSCRIPTIONS)]
    for number, person in enumerate(plain[:10]):
        backend.set_opted_out(person, "2026-09-15T10:00:00.000Z" if number < 5 else LATER)
        line = keys.index((person, 1002))
        rows[line].update(
            status="SUBSCRIBED",
            legal_basis="CONSENT_WITH_NOTICE",
            legal_basis_explanation=EXPLANATION,
            decided_at=DECIDED,
        )
        kinds[line] = "needs_opt_in" if number < 5 else "kept_newer_in_hubspot"
    # Repeats: 20 copies of rows (the later line is kept), 20 older decisions that come after the
    # row that replaced them (the latest decision is kept, wherever it is).
    for index in rng.sample(range(len(rows)), 20):
        rows.append(dict(rows[index]))
        kinds.append(kinds[index])
        if kinds[index] != "invalid_input":  # a refused row has no key: both copies are refused
            kinds[index] = "duplicate"
    for index in rng.sample([i for i, k in enumerate(kinds) if k == "already_in_state"], 20):
        older = dict(rows[index])
        older.update(decided_at="2026-06-01T08:00:00+02:00", status="NOT_SPECIFIED")
        rows.append(older)
        kinds.append("duplicate")
    malformed = [
        {"subscriber_id": "not-an-address", "subscription_id": 1001, "status": "SUBSCRIBED"},
        {"subscriber_id": "", "subscription_id": 1001, "status": "UNSUBSCRIBED"},
        {"subscription_id": "abc", "status": "UNSUBSCRIBED"},
        {"subscription_id": "-4", "status": "UNSUBSCRIBED"},
        {"subscription_id": 1001, "status": "MAYBE"},
        {"subscription_id": 1001, "status": "UNSUBSCRIBED", "decided_at": "yesterday"},
        {"subscription_id": 1001, "status": "UNSUBSCRIBED", "decided_at": "2026-11-20T12:00:00"},
        {"subscription_id": 1001, "status": "UNSUBSCRIBED", "decided_at": ""},
        {"subscription_id": 1001, "status": "SUBSCRIBED", "legal_basis": "BECAUSE", "decided_at": DECIDED},
    ]
    # For contacts of their own: a refused row about a contact's subscription that is that key's
    # latest decision stops the key's other rows (tests/operators/test_consent_sync_unknowns.py).
    for i in range(20):
        bad = {"subscriber_id": f"malformed.{i:02d}@example.com", "decided_at": DECIDED}
        bad.update(malformed[i % len(malformed)])
        at = rng.randrange(len(rows))
        rows.insert(at, bad)
        kinds.insert(at, "invalid_input")
    expected = dict(enumerate(kinds, start=1))
    return Scenario(rows, expected, writes, kept)


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8-sig") as out:  # with a BOM, as Excel writes
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in COLUMNS} for row in rows)
    return path


def sync(tmp_path: Path, source: Path, run_id: str, **params: object) -> tuple[dict, list[dict[str, str]]]:
    ledger = tmp_path / f"{run_id}.csv"
    params.setdefault("journal_path", str(tmp_path / "journal"))
    summary = HubSpotSyncSubscriptionStatusesOperator(
        task_id="sync", input_path=str(source), ledger_path=str(ledger), **params
    ).execute(context(run_id, 1, task_id="sync"))
    return summary, list(read_rows(str(ledger)))


def outcomes_by_line(ledger: list[dict[str, str]]) -> dict[int, str]:
    # The CSV's header is line 1: data row n is file line n + 1.
    return {int(r["line"]) - 1: r["outcome"] for r in ledger}


def test_a_ten_thousand_row_sync_writes_exactly_what_differs_and_keeps_newer_choices(emulator, tmp_path):
    backend = emulator.backend
    scenario = build_scenario(backend)
    assert len(scenario.rows) == 10_000
    source = write_csv(tmp_path / "consent.csv", scenario.rows)
    backend.status_writes.clear()

    # The plan first: it reads HubSpot and writes nothing.
    summary, plan = sync(tmp_path, source, "manual__plan", dry_run=True)
    assert backend.status_writes == []
    assert summary["written"] == 0 and summary["requests"]["write"] == 0
    would = {line for line, outcome in outcomes_by_line(plan).items() if outcome == "not_attempted"}
    assert would == {line for line, kind in scenario.expected.items() if kind == "status_set"}
    assert all(
        r["reason"].startswith("dry run, would write: ") for r in plan if r["outcome"] == "not_attempted"
    )

    summary, ledger = sync(tmp_path, source, "manual__sync")

    # The ledger: one row per input row, each with the outcome that really happened.
    assert [int(r["line"]) for r in ledger] == list(range(2, 10_002))
    assert outcomes_by_line(ledger) == scenario.expected
    assert mode(tmp_path / "manual__sync.csv") == 0o600
    # HubSpot received writes for exactly the differing rows, each once, and now holds them.
    assert sorted(backend.status_writes) == sorted(scenario.writes)
    for person, subscription, status in scenario.writes:
        assert backend.statuses[(person, subscription)].status == status
    # No status changed in HubSpot after the decision was overwritten, and the ledger says why.
    for (person, subscription), status in scenario.kept.items():
        record = backend.statuses[(person, subscription)]
        assert (record.status, record.timestamp) == (status, LATER)
    kept = [r for r in ledger if r["outcome"] == "kept_newer_in_hubspot"]
    assert kept and all(
        "2026-11-24T18:30:00" in r["reason"] and "2026-11-20T12:00:00" in r["reason"] for r in kept
    )
    # Repeats name the line kept; refusals name the field.
    for row in ledger:
        if row["outcome"] == "duplicate":
            assert (
                "superseded by the latest decision" in row["reason"] or "same change as line" in row["reason"]
            )
    refused = {r["reason"] for r in ledger if r["outcome"] == "invalid_input"}
    assert any("legal_basis and legal_basis_explanation" in r for r in refused)
    assert any("decided_at" in r and "time zone" in r for r in refused)
    assert any(r.startswith("subscription_id") for r in refused)
    counts = summary["outcomes"]
    assert counts["status_set"] == len(scenario.writes) == summary["written"]
    # Requests: one read per 100 contacts, the opt-out reads only for rows that would subscribe,
    # and the writes in full batches.
    assert summary["requests"]["write"] == -(-len(scenario.writes) // 100)

    # The next night, nothing has changed: nothing is written.
    before = list(backend.status_writes)
    summary, again = sync(tmp_path, source, "manual__sync_again")
    assert backend.status_writes == before
    assert summary["requests"]["write"] == 0
    assert {r["outcome"] for r in again} == {
        "already_in_state",
        "kept_newer_in_hubspot",
        "needs_opt_in",
        "invalid_input",
        "duplicate",
    }


def test_resubscribing_an_opted_out_contact_needs_the_explicit_opt_in(emulator, tmp_path):
    backend = emulator.backend
    person = "opted.out@example.com"
    backend.set_history(person, 1001, "UNSUBSCRIBED", "2026-09-15T10:00:00.000Z")
    backend.set_opted_out(person, "2026-09-15T10:00:00.000Z")
    row = {
        "subscriber_id": person,
        "subscription_id": 1001,
        "status": "SUBSCRIBED",
        "legal_basis": "CONSENT_WITH_NOTICE",
        "legal_basis_explanation": EXPLANATION,
        "decided_at": DECIDED,
    }
    source = write_csv(tmp_path / "one.csv", [row])
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, source, "manual__no_opt_in")
    assert [r["outcome"] for r in ledger] == ["needs_opt_in"]
    assert "allow_resubscribe=True" in ledger[0]["reason"] and backend.status_writes == []

    _, ledger = sync(tmp_path, source, "manual__opt_in", allow_resubscribe=True)
    assert [(r["outcome"], r["reason"].split(":")[0]) for r in ledger] == [
        ("status_set", "RESUBSCRIBE_OCCURRED")
    ]
    assert backend.status_writes == [(person, 1001, "SUBSCRIBED")]
    assert (person, 0) not in backend.wide


@pytest.mark.parametrize("retry_on", ["the same worker", "another worker"])
def test_a_lost_write_answer_is_not_written_twice_and_the_retry_says_who_changed_it(
    emulator, tmp_path, monkeypatch, retry_on
):
    backend = emulator.backend
    people = [f"lost.{i:03d}@example.com" for i in range(30)]
    for person in people:
        backend.set_history(person, 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [
        {"subscriber_id": p, "subscription_id": 1001, "status": "UNSUBSCRIBED", "decided_at": DECIDED}
        for p in people
    ]
    source = write_csv(tmp_path / "lost.csv", rows)
    ledger_path = tmp_path / "lost-ledger.csv"
    # One retry in the client: the lost answers fail the first try at once instead of after backoff.
    connect_to_emulator(monkeypatch, emulator, max_retries=1)
    backend.status_writes.clear()
    # The write is applied, then the connection drops before the answer, on every attempt.
    emulator.control(
        "POST", "faults", json={"kind": "drop_after", "count": 10, "path_endswith": "statuses/batch/write"}
    )
    operator = dict(
        task_id="sync",
        input_path=str(source),
        ledger_path=str(ledger_path),
        journal_path=str(tmp_path / "journal"),
    )
    with pytest.raises(AirflowException):
        HubSpotSyncSubscriptionStatusesOperator(**operator).execute(
            context("manual__lost", 1, task_id="sync")
        )
    first = list(read_rows(str(ledger_path)))
    assert {r["outcome"] for r in first} == {"failed"}
    assert all("may have applied" in r["reason"] for r in first)
    backend.faults.clear()
    if retry_on == "another worker":  # no work store there: the retry rebuilds from the checkpoint
        monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "other-worker"))

    summary = HubSpotSyncSubscriptionStatusesOperator(**operator).execute(
        context("manual__lost", 2, task_id="sync")
    )
    second = list(read_rows(str(ledger_path)))
    assert {r["outcome"] for r in second} == {"status_set"}
    assert all("earlier attempt" in r["reason"] for r in second)
    assert summary["requests"]["write"] == 0  # the retry read HubSpot and saw its own change
    # Each contact changed once: the first try's writes, which HubSpot applied, were not sent again.
    assert all(backend.changes[(p, 1001)] == 1 for p in people)
    assert set(backend.status_writes) == {(p, 1001, "UNSUBSCRIBED") for p in people}


def test_rows_from_an_xcom_list_and_the_plan_as_json(emulator, tmp_path):
    backend = emulator.backend
    backend.set_history("xcom.a@example.com", 1004, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    backend.set_history("xcom.b@example.com", 1004, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
    rows = [
        {
            "subscriber_id": "xcom.a@example.com",
            "subscription_id": "1004",
            "status": "unsubscribed",
            "decided_at": DECIDED,
        },
        {
            "subscriber_id": "XCOM.B@example.com ",
            "subscription_id": 1004,
            "status": "SUBSCRIBED",
            "legal_basis": "CONSENT_WITH_NOTICE",
            "legal_basis_explanation": EXPLANATION,
            "decided_at": DECIDED,
        },
        "not a row",
    ]
    ledger = tmp_path / "xcom.csv"
    summary = HubSpotSyncSubscriptionStatusesOperator(
        task_id="sync", rows=rows, ledger_path=str(ledger)
    ).execute(context("manual__xcom", 1, task_id="sync"))
    found = list(read_rows(str(ledger)))
    assert [r["outcome"] for r in found] == ["status_set", "already_in_state", "invalid_input"]
    assert json.loads(found[0]["input"])["subscriber_id"] == "xcom.a@example.com"
    assert summary["outcomes"] == {"status_set": 1, "already_in_state": 1, "invalid_input": 1}


def consent_rows(backend, count: int) -> tuple[list[tuple[object, ...]], set[tuple[str, int, str]]]:
    """``count`` rows for a consent table: every tenth differs from HubSpot and must be written."""
    rows, writes = [], set()
    for i in range(count):
        person = f"table.{i:04d}@example.com"
        backend.set_history(person, 1004, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION)
        status = "UNSUBSCRIBED" if i % 10 == 0 else "SUBSCRIBED"
        if status == "UNSUBSCRIBED":
            writes.add((person, 1004, status))
        rows.append((person, 1004, status, "CONSENT_WITH_NOTICE", EXPLANATION, DECIDED))
    return rows, writes


def test_rows_from_a_sqlite_table_through_an_airflow_connection(emulator, tmp_path, monkeypatch):
    import sqlite3

    backend = emulator.backend
    rows, writes = consent_rows(backend, 2500)
    database = tmp_path / "consent.db"
    with sqlite3.connect(database) as db:
        db.execute(f"CREATE TABLE consent ({', '.join(COLUMNS)})")
        db.executemany("INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?)", rows)
    monkeypatch.setenv("AIRFLOW_CONN_CONSENT_DB", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    backend.status_writes.clear()
    ledger = tmp_path / "sqlite-ledger.csv"
    summary = HubSpotSyncSubscriptionStatusesOperator(
        task_id="sync",
        conn_id="consent_db",
        sql="SELECT * FROM consent WHERE subscription_id = :subscription ORDER BY rowid",
        parameters={"subscription": 1004},
        ledger_path=str(ledger),
    ).execute(context("manual__sqlite", 1, task_id="sync"))
    assert summary["outcomes"] == {"status_set": 250, "already_in_state": 2250}
    assert set(backend.status_writes) == writes and len(backend.status_writes) == 250
    # Rows are numbered by their place in the query's answer.
    assert [int(r["line"]) for r in read_rows(str(ledger))] == list(range(1, 2501))


def test_rows_from_postgresql_come_through_a_server_side_cursor(emulator, tmp_path, monkeypatch):
    from ..postgres_service import postgres_server

    backend = emulator.backend
    rows, writes = consent_rows(backend, 3000)
    with postgres_server("consent") as url:
        import psycopg2

        dsn = url.replace("postgresql+psycopg2://", "postgresql://")
        with psycopg2.connect(dsn) as db, db.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE consent (subscriber_id text, subscription_id int, status text, "
                "legal_basis text, legal_basis_explanation text, decided_at timestamptz)"
            )
            cursor.executemany("INSERT INTO consent VALUES (%s, %s, %s, %s, %s, %s)", rows)
        monkeypatch.setenv("AIRFLOW_CONN_CONSENT_PG", dsn)
        from airflow_provider_hubspot_prefs.ledger import desired_state

        cursors: list[object] = []
        reading = desired_state.desired_from_cursor

        def noting_the_cursor(cursor, **kwargs):
            cursors.append(cursor)
            return reading(cursor, **kwargs)

        monkeypatch.setattr(desired_state, "desired_from_cursor", noting_the_cursor)
        backend.status_writes.clear()
        ledger = tmp_path / "pg-ledger.csv"
        summary = HubSpotSyncSubscriptionStatusesOperator(
            task_id="sync",
            conn_id="consent_pg",
            sql="SELECT * FROM consent ORDER BY subscriber_id",
            ledger_path=str(ledger),
        ).execute(context("manual__pg", 1, task_id="sync"))
    # A named cursor is PostgreSQL's server-side cursor: rows arrive 1,000 at a time.
    assert [getattr(c, "name", None) for c in cursors] == ["hubspot_prefs_sync"]
    assert summary["outcomes"] == {"status_set": 300, "already_in_state": 2700}
    assert set(backend.status_writes) == writes


@pytest.mark.parametrize(("charset", "encoding"), [(76, None), (1, "cp1252")], ids=["utf-8", "windows-1252"])
def test_a_consent_sheet_saved_by_a_spreadsheet(emulator, tmp_path, charset, encoding):
    """LibreOffice Calc saves the consent sheet as CSV: accents, quoted commas, an empty row."""
    from ..spreadsheet import spreadsheet_export

    backend = emulator.backend
    explanation = "Formulaire d'inscription, case cochée"
    backend.set_history("sheet.a@example.com", 1001, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", explanation)
    backend.set_history("sheet.b@example.com", 1001, "UNSUBSCRIBED", BEFORE)
    cells = [
        list(COLUMNS),
        ["sheet.a@example.com", "1001", "UNSUBSCRIBED", "", "", DECIDED],
        ["", "", "", "", "", ""],
        ["sheet.b@example.com", "1001", "SUBSCRIBED", "CONSENT_WITH_NOTICE", explanation, DECIDED],
        ["sheet.c@example.com", "1001", "SUBSCRIBED", "", "", DECIDED],
    ]
    source = spreadsheet_export(tmp_path, cells, charset)
    backend.status_writes.clear()
    _, ledger = sync(tmp_path, source, f"manual__sheet_{charset}", encoding=encoding)
    assert [(r["line"], r["outcome"]) for r in ledger] == [
        ("2", "status_set"),
        ("3", "invalid_input"),
        ("4", "status_set"),
        ("5", "invalid_input"),
    ]
    assert backend.statuses[("sheet.b@example.com", 1001)].legal_basis_explanation == explanation
    assert json.loads(ledger[2]["input"])["legal_basis_explanation"] == explanation
    assert sorted(backend.status_writes) == [
        ("sheet.a@example.com", 1001, "UNSUBSCRIBED"),
        ("sheet.b@example.com", 1001, "SUBSCRIBED"),
    ]


def test_a_read_refused_for_good_writes_nothing_and_says_so(emulator, tmp_path):
    backend = emulator.backend
    rows, _ = consent_rows(backend, 150)
    source = write_csv(tmp_path / "refused.csv", [dict(zip(COLUMNS, row, strict=True)) for row in rows])
    backend.status_writes.clear()
    emulator.control(
        "POST", "faults", json={"status": 403, "count": 100, "path_endswith": "statuses/batch/read"}
    )
    ledger = tmp_path / "refused-ledger.csv"
    with pytest.raises(AirflowException, match="not sent by this try"):
        HubSpotSyncSubscriptionStatusesOperator(
            task_id="sync", input_path=str(source), ledger_path=str(ledger)
        ).execute(context("manual__refused", 1, task_id="sync"))
    backend.faults.clear()
    found = list(read_rows(str(ledger)))
    assert len(found) == 150 and {r["outcome"] for r in found} == {"not_attempted"}
    assert all("nothing written" in r["reason"] or r["reason"].startswith("not sent") for r in found)
    assert backend.status_writes == []


def test_an_input_unreadable_midway_sends_nothing_and_lists_every_line_read(emulator, tmp_path):
    rows, _ = consent_rows(emulator.backend, 1500)
    source = write_csv(tmp_path / "midway.csv", [dict(zip(COLUMNS, row, strict=True)) for row in rows])
    source.write_bytes(source.read_bytes().removeprefix(b"\xef\xbb\xbf"))  # saved as Windows-1252
    with open(source, "ab") as out:  # a byte Windows-1252 has no character for, past the first block
        out.write(b"late\x81@example.com,1004,UNSUBSCRIBED,,,2026-11-20T12:00:00Z\r\n")
    emulator.backend.status_writes.clear()
    ledger = tmp_path / "midway-ledger.csv"
    with pytest.raises(Exception, match="after line"):
        HubSpotSyncSubscriptionStatusesOperator(
            task_id="sync", input_path=str(source), ledger_path=str(ledger), encoding="cp1252"
        ).execute(context("manual__midway", 1, task_id="sync"))
    found = list(read_rows(str(ledger)))
    assert [int(r["line"]) for r in found] == list(range(2, 2 + len(found))) and len(found) >= 1000
    assert {r["outcome"] for r in found} == {"not_attempted"}
    assert emulator.backend.status_writes == []
