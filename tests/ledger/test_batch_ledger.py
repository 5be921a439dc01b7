"""The batch operator's ledger: every input accounted for exactly once, at scale and under policy."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from airflow_provider_hubspot_prefs.ledger import LEDGER_COLUMNS, Outcome, Row
from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
from airflow_provider_hubspot_prefs.ledger.store import WorkStore

from ..dag_support import ledger_rows, provider_dag, states, xcom


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """DAG runs need the migrated DB and a connection to the emulator."""


def test_25000_addresses_add_up_exactly(make_client, emulator, tmp_path):
    rng = random.Random(7)
    unique = [f"user{i:05d}@example.com" for i in range(24_200)]
    already = unique[:200]
    client = make_client()
    for start in range(0, len(already), 100):
        client.batch_unsubscribe_all(already[start : start + 100])
    duplicates = [a.upper() if i % 2 else f"  {a}  " for i, a in enumerate(rng.sample(unique, 500))]
    invalid = [f"broken-{i}@" if i % 3 else f"no-at-sign-{i}" for i in range(300)]
    # Originals first (shuffled), then duplicates and malformed lines mixed: a duplicate always
    # follows the line it repeats, so it is the one the ledger marks.
    head, tail = unique[:], duplicates + invalid
    rng.shuffle(head)
    rng.shuffle(tail)
    lines = head + tail
    source = tmp_path / "withdrawals.txt"
    source.write_text("\n".join(lines) + "\n")
    assert len(lines) == 25_000
    ledger = tmp_path / "ledger.csv"
    emulator.control("DELETE", "requests")

    run = provider_dag("test_batch_unsubscribe_poll").test(
        run_conf={"input_path": str(source), "ledger_path": str(ledger)}
    )
    assert states(run) == {"unsubscribe": "success"}

    rows = ledger_rows(ledger)
    assert tuple(rows[0]) == LEDGER_COLUMNS
    assert len(rows) == 25_000
    assert sorted(int(r["line"]) for r in rows) == list(range(1, 25_001))  # each input exactly once
    assert [r["input"] for r in rows] == lines
    outcomes = Counter(r["outcome"] for r in rows)
    assert outcomes == {
        "unsubscribed": 24_000,
        "already_unsubscribed": 200,
        "duplicate": 500,
        "invalid_input": 300,
    }
    assert xcom(run, "unsubscribe")["outcomes"] == dict(outcomes)

    # The emulator's state agrees with the ledger, address by address.
    done = {r["subscriber_id"] for r in rows if r["outcome"] in ("unsubscribed", "already_unsubscribed")}
    assert done == set(unique)
    assert all((address, 0) in emulator.backend.wide for address in unique)
    sent = [
        r for r in emulator.control("GET", "requests")["requests"] if r["path"].endswith("unsubscribe-all")
    ]
    assert len(sent) == 242  # 24,200 unique valid addresses in batches of 100, nothing sent twice


def _run_batch(tmp_path, lines, **conf):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{line}\n" for line in lines))
    ledger = tmp_path / "ledger.csv"
    run = provider_dag("test_batch_unsubscribe_poll").test(
        run_conf={"input_path": str(source), "ledger_path": str(ledger), **conf}
    )
    return run, ledger


def test_partial_failure_fails_the_task_after_writing_the_ledger(emulator, tmp_path):
    emulator.control("POST", "faults", json={"status": 400, "count": 1, "path_contains": "unsubscribe-all"})
    run, ledger = _run_batch(tmp_path, [f"p{i}@example.com" for i in range(150)])
    assert states(run) == {"unsubscribe": "failed"}
    rows = ledger_rows(ledger)
    failed = [r for r in rows if r["outcome"] == "failed"]
    assert len(rows) == 150 and len(failed) == 100
    assert failed[0]["category"] == "VALIDATION_ERROR" and "Injected fault" in failed[0]["reason"]
    assert {r["outcome"] for r in rows} - {"failed"} == {"unsubscribed"}


def test_empty_input_fails_clearly(tmp_path, capfd):
    run, _ = _run_batch(tmp_path, ["", "   "])
    assert states(run) == {"unsubscribe": "failed"}
    assert "None of the 2 line(s) of the input" in "".join(capfd.readouterr())
    assert [(r["line"], r["outcome"], r["reason"]) for r in ledger_rows(tmp_path / "ledger.csv")] == [
        ("1", "invalid_input", "empty line"),
        ("2", "invalid_input", "empty line"),
    ]


def test_missing_file_fails_clearly(tmp_path, capfd):
    run = provider_dag("test_batch_unsubscribe_poll").test(
        run_conf={"input_path": str(tmp_path / "nope.txt"), "ledger_path": str(tmp_path / "l.csv")}
    )
    assert states(run) == {"unsubscribe": "failed"}
    assert f"cannot read the input {tmp_path / 'nope.txt'}: no such file" in "".join(capfd.readouterr())


def test_missing_scopes_stop_the_batch_and_the_ledger_says_what_remains(emulator, tmp_path, monkeypatch):
    import json

    emulator.control(
        "POST", "tokens", json={"token": "pat-read", "scopes": ["communication_preferences.read"]}
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT",
        json.dumps(
            {"conn_type": "hubspot_prefs", "password": "pat-read", "extra": {"base_url": emulator.url}}
        ),
    )
    run, ledger = _run_batch(tmp_path, [f"p{i}@example.com" for i in range(30)] + ["bad"])
    assert states(run) == {"unsubscribe": "failed"}
    outcomes = Counter(r["outcome"] for r in ledger_rows(ledger))
    assert outcomes == {"not_attempted": 30, "invalid_input": 1}


def test_store_resumes_without_resending_finished_inputs(tmp_path):
    store = WorkStore(tmp_path / "work.sqlite")
    store.ingest(records_from_values(["a@example.com", "b@example.com", "A@example.com", "bad"]))
    (chunk,) = list(store.pending_chunks(10))
    assert chunk == [(1, "a@example.com"), (2, "b@example.com")]
    store.record([Row(1, Outcome.UNSUBSCRIBED)])
    store.close()

    resumed = WorkStore(tmp_path / "work.sqlite")
    assert resumed.ingested
    assert list(resumed.pending_chunks(10)) == [[(2, "b@example.com")]]
    resumed.record([Row(2, Outcome.FAILED, "HTTP 503", "INTERNAL_ERROR")])
    resumed.reopen_retried()  # the next try sends what failed again
    assert list(resumed.pending_chunks(10)) == [[(2, "b@example.com")]]
    assert resumed.counts() == {"unsubscribed": 1, "pending": 1, "duplicate": 1, "invalid_input": 1}


def test_dry_run_reads_a_csv_column_and_sends_nothing(emulator, tmp_path):
    source = tmp_path / "export.csv"
    source.write_text("id,email\n1,a@example.com\n2,A@example.com\n3,broken\n4,b@example.com\n")
    ledger = tmp_path / "ledger.csv"
    emulator.control("DELETE", "requests")
    run = provider_dag("test_batch_dry_run_csv").test(
        run_conf={"input_path": str(source), "ledger_path": str(ledger)}
    )
    assert states(run) == {"dry_run": "success"}
    summary = xcom(run, "dry_run")
    assert summary["dry_run"] and summary["sent"] == 0
    assert summary["outcomes"] == {"not_attempted": 2, "duplicate": 1, "invalid_input": 1}
    assert emulator.control("GET", "requests")["requests"] == []


def test_bad_enum_fails_without_retry_or_request(emulator, capfd):
    emulator.control("DELETE", "requests")
    run = provider_dag("test_bad_status_state").test()
    assert states(run) == {"typo": "failed"}  # AirflowFailException: retries=3 are not used
    out = "".join(capfd.readouterr())
    assert "status_state: 'UNSUSCRIBED' is not one of SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED" in out
    assert emulator.control("GET", "requests")["requests"] == []


def test_on_kill_writes_the_ledger_as_it_stands(tmp_path):
    from airflow_provider_hubspot_prefs.ledger.checkpoint import BatchState, TaskIdentity
    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    identity = TaskIdentity("deployment", "dag", "run", "t", -1, 1)
    ledger = str(tmp_path / "ledger.csv")
    state = BatchState(identity, ledger, work_dir=tmp_path / "work")
    store = state.open(lambda: records_from_values(["a@example.com", "b@example.com", "c@example.com"]))
    store.record([Row(1, Outcome.UNSUBSCRIBED)])
    operator = HubSpotBatchUnsubscribeAllOperator(task_id="t", subscribers=["unused@example.com"])
    operator._kill_target = (identity, ledger, tmp_path / "work")
    operator.on_kill()  # while the running task still holds its own connection to the store
    state.close()
    rows = ledger_rows(ledger)
    assert [(r["line"], r["outcome"]) for r in rows] == [
        ("1", "unsubscribed"),
        ("2", "pending"),
        ("3", "pending"),
    ]


def test_sending_starts_while_the_input_is_still_being_read(emulator, tmp_path):
    """A long input is not read whole before the first request: requests go out between blocks."""
    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    from ..batch_try import context
    from ..ledger_support import check_truth

    emulator.control("DELETE", "requests")
    people = [f"early.{i:05d}@example.com" for i in range(30_000)] + ["early.00007@example.com", "bad"]
    writes_when_read: list[int] = []

    def read():
        yield from people
        writes_when_read.append(len(emulator.control("GET", "requests")["requests"]))

    ledger = tmp_path / "ledger.csv"
    HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe", subscribers=read(), ledger_path=str(ledger)
    ).execute(context("manual__early", 1))
    assert writes_when_read[0] > 0  # of 300 requests: sending did not wait for the end of the input
    outcomes = check_truth(emulator, ledger_rows(ledger), people)
    assert outcomes == {"unsubscribed": 30_000, "duplicate": 1, "invalid_input": 1}


def test_an_input_unreadable_midway_stops_sending_and_ledgers_every_line_read(emulator, tmp_path):
    """Sending started before the bad part of the file was reached: what was sent is ledgered
    truthfully, nothing after the bad part is sent, and the error names the last line read."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    from ..batch_try import context
    from ..ledger_support import check_truth

    people = [f"midway.{i:05d}@example.com" for i in range(20_000)]
    source = tmp_path / "in.txt"
    # cp1252 has no character for byte 0x81: a strict decoder cannot go past it.
    source.write_bytes(
        ("\n".join(people[:12_000]) + "\nbroken\x81@example.com\n").encode("latin-1")
        + ("\n".join(people[12_000:]) + "\n").encode()
    )
    ledger = tmp_path / "ledger.csv"
    with pytest.raises(AirflowFailException) as raised:
        HubSpotBatchUnsubscribeAllOperator(
            task_id="unsubscribe", input_path=str(source), ledger_path=str(ledger), encoding="cp1252"
        ).execute(context("manual__midway", 1))
    rows = ledger_rows(ledger)
    read = len(rows)
    assert 1000 < read <= 12_000
    assert (
        f"Cannot read the input {source} after line {read}: not cp1252 (character maps to <undefined>)"
        in str(raised.value)
    )
    assert f"the ledger at {ledger} lists the {read} line(s) read" in str(raised.value)
    outcomes = check_truth(emulator, rows, people[:read])
    assert set(outcomes) == {"unsubscribed", "not_attempted"}  # read, but not sent once the error came
    assert outcomes["unsubscribed"] >= 100  # check_truth: exactly the contacts HubSpot changed
    unsent = {r["reason"] for r in rows if r["outcome"] == "not_attempted"}
    assert unsent == {
        f"not sent: the input could not be read after line {read}: {raised.value.__cause__.cause}"
    }


def test_on_kill_while_the_input_is_still_being_read_leaves_the_ledger_alone(tmp_path):
    """A ledger lists every line or is not written: killed before the input was read to its end,
    the ledger is left as it was (the checkpoint's send windows tell the retry what was sent)."""
    from airflow_provider_hubspot_prefs.ledger.checkpoint import (
        BatchState,
        TaskIdentity,
        write_ledger_on_kill,
    )

    identity = TaskIdentity("deployment", "dag", "run", "t", -1, 1)
    ledger = str(tmp_path / "ledger.csv")
    state = BatchState(identity, ledger, work_dir=tmp_path / "work")
    people = [f"kill.{i:05d}@example.com" for i in range(5000)]
    store = state.open(lambda: records_from_values(people))
    assert store.read_through == 1000 and not store.ingested
    assert write_ledger_on_kill(identity, ledger, tmp_path / "work") == (
        "ledger untouched: the input was still being read (through line 1000); "
        "the checkpoint's send windows tell a retry what may have been sent"
    )
    assert not (tmp_path / "ledger.csv").exists()
    assert state.write_ledger() == 0  # nor does a checkpoint while sending write one
    state.ingestion.read_to_end()
    assert state.write_ledger() == 5000
    state.close()


def test_the_spooled_ledger_is_the_ledger(tmp_path):
    """Rows spooled while sending, then the rest: byte for byte the ledger written from the store."""
    import io

    from airflow_provider_hubspot_prefs.ledger.spool import LedgerSpool, write_ledger

    from ..ledger_support import mode

    store = WorkStore(tmp_path / "work.sqlite")
    store.ingest(
        records_from_values(["a@example.com", "bad", "b@example.com", "A@example.com", "c@é.com", "d@x.io"])
    )
    spool = LedgerSpool(store)
    assert mode(spool.path) == 0o600  # it holds addresses
    assert spool.advance() == 0  # line 1 has no outcome yet
    store.start_attempt([1, 3], 1_764_000_000.25)
    store.record([Row(1, Outcome.UNSUBSCRIBED, "UNSUBSCRIBE_FROM_ALL_OCCURRED", None, "corr,1")])
    assert spool.advance() == 2 and spool.through == 2  # line 3 is still in flight
    store.record([Row(3, Outcome.FAILED, 'a "quoted", reason', "VALIDATION_ERROR")])
    marks = [spool.mark()]
    assert spool.advance() == 2 and spool.through == 4  # lines 5 and 6 are not sent yet
    for mark in (*marks, spool.mark(), None):
        written = io.StringIO()
        assert sum(write_ledger(written, store, mark).values()) == 6
        whole = io.StringIO()
        write_ledger(whole, store, None)  # straight from the work store, no spool
        assert written.getvalue() == whole.getvalue()
    path = spool.path
    spool.close()
    assert not path.exists()
    store.close()


def test_ledger_checkpoints_while_sending_are_always_whole(emulator, tmp_path):
    """Checkpoints are written by a thread of their own while the sending goes on: every ledger a
    reader finds meanwhile has a row for every line, and the done ones say what HubSpot did."""
    import threading

    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    from ..batch_try import context
    from ..ledger_support import check_truth

    people = [f"whole.{i:05d}@example.com" for i in range(6000)]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(people) + "\n")
    ledger = tmp_path / "ledger.csv"
    emulator.control("PATCH", "config", json={"latency_ms": 40})
    seen: list[Counter[str]] = []
    done = threading.Event()

    def read_checkpoints() -> None:
        while not done.is_set():
            if ledger.exists():
                rows = ledger_rows(ledger)
                assert [int(r["line"]) for r in rows] == list(range(1, 6001))
                seen.append(Counter(r["outcome"] for r in rows))
            time.sleep(0.01)

    reader = threading.Thread(target=read_checkpoints)
    reader.start()
    try:
        HubSpotBatchUnsubscribeAllOperator(
            task_id="unsubscribe", input_path=str(source), ledger_path=str(ledger), checkpoint_interval=0.05
        ).execute(context("manual__whole", 1))
    finally:
        done.set()
        reader.join()
    in_between = [c for c in seen if c.get("pending")]
    assert len(in_between) >= 3, seen  # checkpoints were written while sending
    assert all(set(c) <= {"pending", "unsubscribed"} for c in in_between)
    assert check_truth(emulator, ledger_rows(ledger), people) == {"unsubscribed": 6000}


def test_a_try_refused_before_any_request_ends_every_row(emulator, tmp_path, monkeypatch):
    """Issue 23 item 7: a plain-http base URL to a host that is not loopback fails the task before any
    request; the ledger it leaves is final: every line not_attempted with the reason, none pending."""
    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    from ..batch_try import context
    from ..conftest import connect_to_emulator
    from ..ledger_support import check_truth

    connect_to_emulator(monkeypatch, emulator, base_url="http://hubspot-proxy.example.com")
    emulator.control("DELETE", "requests")
    people = [f"plain.{i:03d}@example.com" for i in range(100)] + ["bad"]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(people) + "\n")
    ledger = tmp_path / "ledger.csv"
    with pytest.raises(Exception, match="must use https unless it is a loopback address"):
        HubSpotBatchUnsubscribeAllOperator(
            task_id="unsubscribe", input_path=str(source), ledger_path=str(ledger)
        ).execute(context("manual__plain", 1))
    assert emulator.control("GET", "requests")["requests"] == []
    rows = ledger_rows(ledger)
    assert check_truth(emulator, rows, people) == {"not_attempted": 100, "invalid_input": 1}
    assert {r["reason"] for r in rows if r["outcome"] == "not_attempted"} == {
        "not sent: Connection 'hubspot_prefs_default' has a malformed extra: base_url: "
        "'http://hubspot-proxy.example.com' must use https unless it is a loopback address"
    }


def test_an_execution_timeout_mid_batch_ends_every_row(emulator, tmp_path):
    """Item 7: Airflow's execution_timeout raises AirflowTaskTimeout (SIGALRM) wherever the batch is,
    with requests in flight, then calls on_kill. Every row ends final: answered ones with HubSpot's
    answer, those whose request was in flight ``failed`` (HubSpot may have applied them), the rest
    ``not_attempted``; the contacts HubSpot changed are exactly the reported ones, or in flight."""
    import os

    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    from ..batch_try import context
    from ..ledger_support import FINAL

    people = [f"late.{i:05d}@example.com" for i in range(3000)]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(people) + "\n")
    for attempt in range(5):
        emulator.backend.reset()
        emulator.control("PATCH", "config", json={"latency_ms": 300})
        ledger = tmp_path / f"ledger-{attempt}.csv"
        operator = HubSpotBatchUnsubscribeAllOperator(
            task_id="unsubscribe", input_path=str(source), ledger_path=str(ledger), max_in_flight=4
        )
        try:  # what Airflow's task runner does with execution_timeout
            with timeout(1.5):
                operator.execute(context(f"manual__late{attempt}", 1))
        except AirflowTaskTimeout:
            operator.on_kill()
            break
        # Landing inside one of asyncio's callbacks, the timeout is logged and dropped by asyncio
        # (Handle._run): the batch ran on to its end. Try again.
    else:
        pytest.fail("the execution timeout never ended the try")
    rows = ledger_rows(ledger)
    assert [r["input"] for r in rows] == people
    outcomes = Counter(r["outcome"] for r in rows)
    assert set(outcomes) <= FINAL, outcomes
    assert outcomes["unsubscribed"] >= 100 and outcomes["not_attempted"] >= 1000, outcomes
    in_flight = {r["subscriber_id"] for r in rows if r["outcome"] == "failed"}
    assert all("may have applied" in r["reason"] for r in rows if r["outcome"] == "failed")
    unsent = {r["reason"] for r in rows if r["outcome"] == "not_attempted"}
    assert unsent == {f"not sent: Timeout, PID: {os.getpid()}"}
    reported = {r["subscriber_id"] for r in rows if r["outcome"] == "unsubscribed"}
    changed = {email for email, _ in emulator.backend.changes}
    assert reported <= changed <= reported | in_flight
