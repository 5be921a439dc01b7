"""A run's state belongs to one try of one task instance, stays private, and survives another worker.

Operators run over real HTTP against the emulator; tries are told apart by their try number, as
Airflow tells them. The real-deployment versions (a SIGKILLed worker retried by the scheduler, on
this machine and with the work store gone) are in tests/deployments/test_real_airflow.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_hubspot_prefs.ledger.checkpoint import default_work_dir
from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator
from airflow_provider_hubspot_prefs.operators.context import default_ledger_path

from ..batch_try import context
from ..dag_support import ROOT, ledger_rows, provider_dag, states
from ..ledger_support import check_truth, mode

WRITE_PATH = "batch/unsubscribe-all"
EARLIER = "2026-11-20T10:00:00Z"  # unsubscribed days before the run


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """DAG runs need the migrated DB and a connection to the emulator."""


def addresses(prefix: str, count: int) -> list[str]:
    return [f"{prefix}.{i:05d}@example.com" for i in range(count)]


def write_input(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def writes(emulator) -> int:
    return sum(1 for r in emulator.backend.request_log if r["path"].endswith(WRITE_PATH))


def operator(source: Path, ledger: Path | str | None, **kwargs) -> HubSpotBatchUnsubscribeAllOperator:
    return HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe",
        input_path=str(source),
        ledger_path=None if ledger is None else str(ledger),
        **kwargs,
    )


def test_overlapping_tries_the_stale_one_writes_nothing(emulator, tmp_path):
    """Item 7: try 2 starts while try 1 still waits on slow answers, finishes, and cleans up; try 1
    then stops and its on_kill leaves try 2's complete ledger alone."""
    people = addresses("overlap", 3000)
    source = write_input(tmp_path / "in.txt", people)
    ledger = tmp_path / "ledger.csv"
    emulator.control("PATCH", "config", json={"latency_ms": 150})
    first = operator(source, ledger, max_in_flight=2, checkpoint_interval=0)
    outcome: dict[str, BaseException] = {}

    def try_one() -> None:
        try:
            first.execute(context("manual__overlap", 1))
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=try_one)
    thread.start()
    deadline = time.monotonic() + 30
    while writes(emulator) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    emulator.control("PATCH", "config", json={"latency_ms": 0})
    summary = operator(source, ledger, max_in_flight=4).execute(context("manual__overlap", 2))
    thread.join(60)
    assert not thread.is_alive()
    assert summary["outcomes"] == {"unsubscribed": 3000}

    # Try 1 noticed it was superseded, and said so instead of writing.
    assert isinstance(outcome.get("error"), AirflowFailException), outcome
    assert "try 2" in str(outcome["error"]) and "try 1" in str(outcome["error"])
    complete = ledger.read_bytes()
    first.on_kill()  # the killed stale try: only logs
    assert ledger.read_bytes() == complete
    rows = ledger_rows(ledger)
    assert check_truth(emulator, rows, people) == {"unsubscribed": 3000}
    assert json.loads((tmp_path / "ledger.csv.checkpoint.json").read_text())["try_number"] == 2


def test_run_ids_differing_only_in_colon_and_plus_share_nothing(emulator, tmp_path):
    """Item 8: their default ledgers and work stores are distinct; the second run sends its own."""
    source_a = write_input(tmp_path / "a.txt", addresses("runa", 300))
    source_b = write_input(tmp_path / "b.txt", addresses("runb", 300))
    run_a, run_b = "scheduled__2026-11-25T00:00:00+00:00", "scheduled__2026-11-25T00:00:00:00:00"
    # Run a stops at the daily limit: its state stays for a retry that never comes.
    emulator.control(
        "POST",
        "faults",
        json={"status": 429, "policy_name": "DAILY", "count": 100, "path_endswith": WRITE_PATH},
    )
    with pytest.raises(AirflowException, match="daily"):
        operator(source_a, None).execute(context(run_a, 1))
    emulator.backend.reset()
    summary = operator(source_b, None).execute(context(run_b, 1))
    assert summary["outcomes"] == {"unsubscribed": 300}
    ledger_a = default_ledger_path(context(run_a, 1))
    assert summary["ledger_path"] != ledger_a
    assert {r["outcome"] for r in ledger_rows(ledger_a)} == {"not_attempted"}
    rows_b = ledger_rows(summary["ledger_path"])
    assert [r["input"] for r in rows_b] == addresses("runb", 300)
    assert {email for email, _ in emulator.backend.changes} == set(addresses("runb", 300))


def test_a_ledger_path_holding_another_runs_state_is_refused(emulator, tmp_path):
    source = write_input(tmp_path / "in.txt", addresses("shared", 10))
    ledger = tmp_path / "ledger.csv"
    operator(source, ledger).execute(context("manual__first", 1))
    before = ledger.read_bytes()
    with pytest.raises(AirflowFailException, match="already holds the ledger of another task run"):
        operator(source, ledger).execute(context("manual__second", 1))
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("dag_id", ["test_batch_unsubscribe_poll", "test_batch_unsubscribe_deferred"])
def test_pending_writes_are_confirmed_with_truthful_attribution(emulator, tmp_path, dag_id):
    """Item 9: HubSpot answers PENDING; contacts unsubscribed before the run end already_unsubscribed."""
    people = addresses("async", 400)
    emulator.control(
        "POST", "contacts", json={"emails": people[::8], "unsubscribed_at": "2026-11-20T10:00:00Z"}
    )
    emulator.control("PATCH", "config", json={"processing_delay_ms": 400})
    source = write_input(tmp_path / "in.txt", people)
    ledger = tmp_path / "ledger.csv"
    run = provider_dag(dag_id).test(run_conf={"input_path": str(source), "ledger_path": str(ledger)})
    assert states(run) == {"unsubscribe": "success"}
    rows = ledger_rows(ledger)
    assert check_truth(emulator, rows, people) == {"unsubscribed": 350, "already_unsubscribed": 50}
    assert {r["subscriber_id"] for r in rows if r["outcome"] == "already_unsubscribed"} == set(people[::8])


def test_sensor_given_the_ledger_confirms_submitted_rows(emulator, tmp_path):
    people = addresses("sensed", 120)
    emulator.control(
        "POST", "contacts", json={"emails": people[:20], "unsubscribed_at": "2026-11-20T10:00:00Z"}
    )
    emulator.control("PATCH", "config", json={"processing_delay_ms": 300})
    source = write_input(tmp_path / "in.txt", people)
    ledger = tmp_path / "ledger.csv"
    summary = operator(source, ledger).execute(context("manual__sensed", 1))
    assert summary["outcomes"] == {"submitted": 120}
    from airflow_provider_hubspot_prefs.sensors import HubSpotOperationStatusSensor

    sensor = HubSpotOperationStatusSensor(
        task_id="wait", ledger_path=str(ledger), poke_interval=0.1, timeout=30
    )
    deadline = time.monotonic() + 30
    while not sensor.poke(context("manual__sensed", 1, "wait")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    rows = ledger_rows(ledger)
    assert check_truth(emulator, rows, people) == {"unsubscribed": 100, "already_unsubscribed": 20}


def test_files_holding_addresses_are_private_and_stale_stores_are_swept(emulator, tmp_path, monkeypatch):
    """Item 10."""
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "work"))
    work_dir = default_work_dir()
    work_dir.mkdir(parents=True, exist_ok=True)
    stale = work_dir / "left-by-a-killed-task.sqlite"
    stale_spool = work_dir / "left-by-a-killed-task.sqlite.0123456789abcdef.spool"
    week_ago = time.time() - 8 * 86400
    for left in (stale, stale_spool):
        left.write_bytes(b"")
        os.utime(left, (week_ago, week_ago))
    source = write_input(tmp_path / "in.txt", addresses("private", 50))
    ledger = tmp_path / "new-folder" / "ledger.csv"
    operator(source, ledger).execute(context("manual__private", 1))
    assert mode(ledger) == 0o600 and mode(ledger.parent) == 0o700
    assert mode(str(ledger) + ".checkpoint.json") == 0o600
    assert mode(work_dir) == 0o700
    assert not stale.exists() and not stale_spool.exists()
    assert not list(work_dir.glob("*.sqlite*"))  # this run's own store and spool went with its success


def test_retry_on_another_worker_resumes_from_the_checkpoint_next_to_the_ledger(emulator, tmp_path):
    """Item 11: try 1 is SIGKILLed on "machine A"; try 2 runs with another work dir (machine B)."""
    people = addresses("moved", 12_000)
    source = write_input(tmp_path / "in.txt", people)
    ledger = tmp_path / "shared" / "ledger.csv"
    emulator.control("PATCH", "config", json={"latency_ms": 30})
    spec = {
        "run_id": "manual__moved",
        "try_number": 1,
        "operator": {
            "input_path": str(source),
            "ledger_path": str(ledger),
            "max_in_flight": 2,
            "checkpoint_interval": 0.5,
        },
    }
    env = {**os.environ, "HUBSPOT_PREFS_WORK_DIR": str(tmp_path / "machine-a")}
    worker = subprocess.Popen([sys.executable, "-m", "tests.batch_try", json.dumps(spec)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while writes(emulator) < 40:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    before_retry = writes(emulator)
    emulator.control("PATCH", "config", json={"latency_ms": 0})

    os.environ["HUBSPOT_PREFS_WORK_DIR"] = str(tmp_path / "machine-b")
    try:
        retry = operator(source, ledger, checkpoint_interval=0.5)
        summary = retry.execute(context("manual__moved", 2))
    finally:
        del os.environ["HUBSPOT_PREFS_WORK_DIR"]
    rows = ledger_rows(ledger)
    # Every contact was changed by this task run, whichever try did it: none reads "already".
    assert check_truth(emulator, rows, people) == {"unsubscribed": 12_000}
    assert summary["outcomes"] == {"unsubscribed": 12_000}
    resent = writes(emulator) - 120
    print(f"moved worker: {before_retry} writes before the kill, {resent} sent again after it")
    assert before_retry >= 40 and resent < before_retry  # resumed, not started over


def test_a_superseded_try_records_nothing_in_the_shared_store(tmp_path):
    from airflow_provider_hubspot_prefs.ledger import Outcome, Row
    from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
    from airflow_provider_hubspot_prefs.ledger.store import StaleTryError, WorkStore

    first = WorkStore(tmp_path / "store.sqlite")
    first.ingest(records_from_values(["a@example.com", "b@example.com"]))
    first.claim(1)
    second = WorkStore(tmp_path / "store.sqlite")
    second.claim(2)
    second.record([Row(1, Outcome.UNSUBSCRIBED, "UNSUBSCRIBE_FROM_ALL_OCCURRED")])
    with pytest.raises(StaleTryError, match="try 2 took over"):
        first.record([Row(1, Outcome.ALREADY_UNSUBSCRIBED, "NO_STATUS_CHANGE")])
    assert second.counts() == {"unsubscribed": 1, "pending": 1}


def test_ledger_on_object_storage_carries_the_checkpoint_to_another_worker(emulator, tmp_path, monkeypatch):
    """The ledger at a URI (``local://`` goes through ObjectStoragePath like s3:// does): try 1 stops
    at the daily limit on one machine; try 2 on another resumes from what lies next to the ledger."""
    people = addresses("uri", 1_000)
    source = write_input(tmp_path / "in.txt", people)
    ledger = f"local://{tmp_path}/bucket/ledgers/ledger.csv"
    daily = {"status": 429, "policy_name": "DAILY", "count": 100, "every": 4, "path_endswith": WRITE_PATH}
    emulator.control("POST", "faults", json=daily)
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "machine-a"))
    with pytest.raises(AirflowException, match="daily"):
        operator(source, ledger, max_in_flight=1).execute(context("manual__uri", 1))
    stopped = ledger_rows(tmp_path / "bucket" / "ledgers" / "ledger.csv")
    done = sum(r["outcome"] == "unsubscribed" for r in stopped)
    assert 0 < done < 1_000 and {r["outcome"] for r in stopped} == {"unsubscribed", "not_attempted"}

    emulator.backend.faults.clear()
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "machine-b"))
    sent_before = writes(emulator)
    summary = operator(source, ledger).execute(context("manual__uri", 2))
    assert summary["outcomes"] == {"unsubscribed": 1_000}
    assert writes(emulator) - sent_before == 10 - done // 100  # only what had no answer
    check_truth(emulator, ledger_rows(tmp_path / "bucket" / "ledgers" / "ledger.csv"), people)


def test_a_damaged_checkpoint_fails_clearly_and_touches_nothing(emulator, tmp_path):
    source = write_input(tmp_path / "in.txt", addresses("damaged", 10))
    ledger = tmp_path / "ledger.csv"
    (tmp_path / "ledger.csv.checkpoint.json").write_text('{"owner": "abc", "tr')
    with pytest.raises(AirflowFailException, match="is not a readable checkpoint"):
        operator(source, ledger).execute(context("manual__damaged", 1))
    assert not ledger.exists() and not emulator.backend.changes


def test_an_unreadable_input_leaves_no_work_store(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "work"))
    source = tmp_path / "in.txt"
    source.write_bytes(b"ok@example.com\nnext@example.com\n")  # UTF-8, read as UTF-16 without a BOM
    with pytest.raises(
        AirflowFailException, match=re.escape("in.txt: not utf-16 (UTF-16 stream does not start")
    ):
        operator(source, tmp_path / "ledger.csv", encoding="utf-16").execute(context("manual__unreadable", 1))
    assert not list((tmp_path / "work").glob("*.sqlite*"))


def test_a_superseded_try_on_another_machine_stops_at_its_next_chunk(tmp_path):
    """Try 1 and try 2 on different machines share only the ledger's checkpoint: try 1 finds try 2's
    there before its next chunk, and stops in the same words as when they share a work store."""
    from dataclasses import replace

    from airflow_provider_hubspot_prefs.ledger.checkpoint import BatchState, TaskIdentity
    from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
    from airflow_provider_hubspot_prefs.ledger.store import StaleTryError

    first_try = TaskIdentity("deployment", "dag", "run", "t", -1, 1)
    ledger = str(tmp_path / "ledger.csv")
    people = ["a@example.com", "b@example.com"]
    first = BatchState(first_try, ledger, work_dir=tmp_path / "machine-a")
    first.OWNER_CHECK_INTERVAL = 0  # look at every chunk (every 5 s by default)
    first.open(lambda: records_from_values(people))
    first.before_send([1])
    second = BatchState(replace(first_try, try_number=2), ledger, work_dir=tmp_path / "machine-b")
    second.open(lambda: records_from_values(people))
    with pytest.raises(StaleTryError, match="try 2 took over dag / run / t; try 1 writes nothing more"):
        first.before_send([2])
    first.close()
    second.close()


def test_a_stale_try_cannot_write_its_claim_back_over_a_newer_one(tmp_path):
    """Issue 23 item 9a: try 1 (machine A) checks the checkpoint, then stalls before writing its next
    send window (a slow share, a paused process); meanwhile try 2 (machine B) claims the ledger and
    saves a window of its own. Try 1's late write must not make it the owner again: try 1 stops
    before sending that window, and the checkpoint names try 2 with try 2's state once try 2 looks
    at it again (as it does every few seconds while sending)."""
    from dataclasses import replace

    from airflow_provider_hubspot_prefs.ledger.checkpoint import BatchState, TaskIdentity
    from airflow_provider_hubspot_prefs.ledger.files import write_atomically
    from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
    from airflow_provider_hubspot_prefs.ledger.store import StaleTryError

    first_try = TaskIdentity("deployment", "dag", "run", "t", -1, 1)
    ledger = str(tmp_path / "ledger.csv")
    checkpoint = tmp_path / "ledger.csv.checkpoint.json"
    people = addresses("claim", 30)
    first = BatchState(first_try, ledger, work_dir=tmp_path / "machine-a", window_lines=10)
    arrived, go = threading.Event(), threading.Event()

    def stall_before_the_write(frame, event, arg):
        """Holds try 1 where it has checked the checkpoint and not yet written it."""
        if (
            event == "call"
            and frame.f_code is write_atomically.__code__
            and frame.f_back.f_code.co_name == "_save"
        ):
            arrived.set()
            go.wait(30)
        return None

    outcome: dict[str, object] = {}

    def try_one_sends_its_next_window() -> None:  # on a thread of its own: its work store is
        first.open(lambda: records_from_values(people))
        first.before_send([1])
        sys.settrace(stall_before_the_write)
        try:
            first.before_send([12])  # past its first window: saves the next one, then would send
            outcome["sent"] = True
        except StaleTryError as exc:
            outcome["stopped"] = exc
        finally:
            sys.settrace(None)
            first.close()

    stalled = threading.Thread(target=try_one_sends_its_next_window)
    stalled.start()
    assert arrived.wait(30), outcome
    second = BatchState(
        replace(first_try, try_number=2), ledger, work_dir=tmp_path / "machine-b", window_lines=10
    )
    store = second.open(lambda: records_from_values(people))
    second.before_send([12])
    claimed = json.loads(checkpoint.read_text())
    assert claimed["try_number"] == 2
    go.set()
    stalled.join(30)
    assert isinstance(outcome.get("stopped"), StaleTryError), outcome  # it sends nothing more
    assert "try 2 took over dag / run / t; try 1 writes nothing more" in str(outcome["stopped"])
    second.check_still_current()
    now = json.loads(checkpoint.read_text())
    assert (now["try_number"], now["writer"], now["windows"]) == (2, store.store_id, claimed["windows"])
    with pytest.raises(StaleTryError, match="try 2 took over"):
        first.check_still_current()
    second.close()


def test_rows_an_earlier_try_sent_never_end_not_sent(tmp_path):
    """Review 23 finding 2: try 1 sends lines 1-2 and is SIGKILLed before their answer; try 2
    resumes from the same store and stops before resending them. They end ``failed`` (HubSpot may
    have applied them: a retry resends them safely), never ``not_attempted``/"not sent"; a line
    only a send window of try 1 covered "may have" been sent; a line never sent stays not attempted."""
    from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
    from airflow_provider_hubspot_prefs.ledger.store import WorkStore

    path = tmp_path / "store.sqlite"
    try1 = WorkStore(path)
    try1.ingest(records_from_values(["a@example.com", "b@example.com", "c@example.com", "d@example.com"]))
    try1.claim(1)
    try1.start_attempt([1, 2], 1_795_507_200.0)  # 2026-11-24T08:00:00Z; then SIGKILL
    try1.close()

    try2 = WorkStore(path)
    try2.mark_sent_window(3, 3, 1_795_507_100.0)  # as a checkpoint's window restores it
    try2.reopen_retried()
    try2.claim(2)
    assert try2.end_unanswered("AirflowTaskTimeout") == 4
    rows = {r[0]: r for r in try2.ledger_rows()}
    for line in (1, 2):
        outcome, reason, first_sent = rows[line][3], rows[line][4], rows[line][9]
        assert (outcome, first_sent) == ("failed", "2026-11-24T08:00:00.000Z"), rows[line]
        assert reason.startswith("sent by an earlier try at 2026-11-24T08:00:00.000Z"), reason
        assert "HubSpot may have applied it" in reason and "AirflowTaskTimeout" in reason
    assert rows[3][3] == "failed", rows[3]
    assert rows[3][4].startswith("an earlier try may have sent it (from 2026-11-24T07:58:20.000Z on)")
    assert rows[4][3:5] == ("not_attempted", "not sent: AirflowTaskTimeout") and rows[4][9] is None


def _try_one_applied_then_killed(emulator, tmp_path: Path, run_id: str) -> tuple[Path, Path, list[str]]:
    """Try 1 (a process of its own, on "machine A") sends lines 1-200 in two writes that HubSpot
    applies but answers only after a minute; it is SIGKILLed meanwhile. Lines 201-300 are never sent."""
    people = addresses(run_id.removeprefix("manual__"), 300)
    source = write_input(tmp_path / "in.txt", people)
    ledger = tmp_path / "ledger.csv"
    emulator.control(
        "POST", "faults", json={"kind": "slow", "delay": 60, "count": 2, "path_endswith": WRITE_PATH}
    )
    spec = {
        "run_id": run_id,
        "try_number": 1,
        "operator": {"input_path": str(source), "ledger_path": str(ledger), "max_in_flight": 2},
    }
    env = {**os.environ, "HUBSPOT_PREFS_WORK_DIR": str(tmp_path / "machine-a")}
    worker = subprocess.Popen([sys.executable, "-m", "tests.batch_try", json.dumps(spec)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while len(emulator.backend.changes) < 200:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    emulator.backend.faults.clear()
    return source, ledger, people


def _check_the_killed_trys_sends_are_failed(emulator, ledger: Path, people: list[str], stopped: str) -> None:
    """Every contact HubSpot changed is ``failed`` (a retry resends it safely), none "not sent"; the
    lines no try sent are ``not_attempted``."""
    rows = ledger_rows(ledger)
    assert [r["input"] for r in rows] == people
    changed = {email for email, _ in emulator.backend.changes}
    assert len(changed) == 200
    not_sent = [r for r in rows if r["subscriber_id"] in changed and r["outcome"] == "not_attempted"]
    assert not not_sent, (len(not_sent), not_sent[0])
    for row in rows[100:200]:  # sent by try 1 only
        assert row["outcome"] == "failed", row
        assert row["reason"].startswith(f"sent by an earlier try at {row['first_sent_at']}"), row
        assert "HubSpot may have applied it" in row["reason"] and stopped in row["reason"], row
    assert {(r["outcome"], r["first_sent_at"]) for r in rows[200:]} == {("not_attempted", "")}


def test_a_daily_limit_after_a_killed_try_fails_what_that_try_sent(emulator, tmp_path, monkeypatch):
    """Review 23 finding 2, at the operator: try 2 (same machine) meets HubSpot's daily limit on its
    first write. The 200 contacts try 1 changed must not be reported "not sent"."""
    source, ledger, people = _try_one_applied_then_killed(emulator, tmp_path, "manual__f2daily")
    emulator.control(
        "POST",
        "faults",
        json={"status": 429, "policy_name": "DAILY", "count": 100, "path_endswith": WRITE_PATH},
    )
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "machine-a"))
    with pytest.raises(AirflowException, match="daily"):
        operator(source, ledger, max_in_flight=1).execute(context("manual__f2daily", 2))
    _check_the_killed_trys_sends_are_failed(emulator, ledger, people, "daily limit")
    assert all(r["outcome"] == "failed" for r in ledger_rows(ledger)[:100])


def test_a_timeout_after_a_killed_try_fails_what_that_try_sent(emulator, tmp_path, monkeypatch):
    """Review 23 finding 2, at the operator: try 2 (same machine) resends lines 1-100 first, and its
    execution timeout ends it while that answer is slow; lines 101-200, which try 1 sent and HubSpot
    applied, must not be reported "not sent"."""
    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    source, ledger, people = _try_one_applied_then_killed(emulator, tmp_path, "manual__f2timeout")
    emulator.control(
        "POST", "faults", json={"kind": "slow", "delay": 5, "count": 1, "path_endswith": WRITE_PATH}
    )
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "machine-a"))
    retry = operator(source, ledger, max_in_flight=1)
    with pytest.raises(AirflowTaskTimeout), timeout(2):  # what Airflow's task runner does
        retry.execute(context("manual__f2timeout", 2))
    retry.on_kill()
    _check_the_killed_trys_sends_are_failed(emulator, ledger, people, "Timeout")
    assert all("no answer recorded before this try stopped" in r["reason"] for r in ledger_rows(ledger)[:100])


def claim_markers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".claim-" in p.name)


def test_a_recreated_run_starting_over_is_not_blocked_by_the_deleted_runs_claims(emulator, tmp_path):
    """Review 23 finding 5: a DAG run deleted and created again has the same identity, and Airflow
    numbers its tries from 1 again. Once the old run's ledger and checkpoint are moved aside (as the
    damaged-checkpoint error advises), the old run's claim marker does not block the new one."""
    source = write_input(tmp_path / "in.txt", ["a@example.com", "b@example.com"])
    ledger = tmp_path / "ledger.csv"
    run_id = "scheduled__2026-12-01T00:00:00+00:00"
    operator(source, ledger).execute(context(run_id, 3))  # the old run, on its third try
    (old_claim,) = claim_markers(tmp_path)
    assert old_claim.endswith("-try-3")
    ledger.rename(tmp_path / "old-ledger.csv")
    (tmp_path / "ledger.csv.checkpoint.json").rename(tmp_path / "old-ledger.csv.checkpoint.json")
    summary = operator(source, ledger).execute(context(run_id, 1))
    assert summary["outcomes"] == {"already_unsubscribed": 2}
    new_claims = [name for name in claim_markers(tmp_path) if name != old_claim]
    assert len(new_claims) == 1 and new_claims[0].endswith("-try-1")  # a lineage of its own


def test_a_stale_try_is_told_the_newer_claim_and_an_ending_try_removes_older_claims(tmp_path):
    """Review 23 finding 5: the error names the marker that shows the newer claim; a try that ends
    removes the markers of the tries before it (its own claim is newer) and keeps its own, which
    still stops a stale try whose checkpoint write lands after it ended."""
    from dataclasses import replace

    from airflow_provider_hubspot_prefs.ledger.checkpoint import BatchState, TaskIdentity
    from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
    from airflow_provider_hubspot_prefs.ledger.store import StaleTryError

    first_try = TaskIdentity("deployment", "dag", "run", "t", -1, 1)
    ledger = str(tmp_path / "ledger.csv")
    people = ["a@example.com", "b@example.com"]
    first = BatchState(first_try, ledger, work_dir=tmp_path / "machine-a")
    first.OWNER_CHECK_INTERVAL = 0
    first.open(lambda: records_from_values(people))
    first.before_send([1])
    second = BatchState(replace(first_try, try_number=2), ledger, work_dir=tmp_path / "machine-b")
    second.open(lambda: records_from_values(people))
    (newer,) = [tmp_path / name for name in claim_markers(tmp_path) if name.endswith("-try-2")]
    with pytest.raises(StaleTryError, match=re.escape(f"writes nothing more (its claim marker: {newer})")):
        first.before_send([2])
    second.close()  # try 2 ends
    assert claim_markers(tmp_path) == [newer.name]
    first.close()
    # Try 1 stalled between its check and its write of the checkpoint: the write lands now.
    stale = json.loads((tmp_path / "ledger.csv.checkpoint.json").read_text())
    (tmp_path / "ledger.csv.checkpoint.json").write_text(json.dumps({**stale, "try_number": 1}))
    late = BatchState(first_try, ledger, work_dir=tmp_path / "machine-a")
    with pytest.raises(StaleTryError, match=re.escape(str(newer))):
        late.check_still_current()


def test_claims_on_an_object_store_that_lists_by_prefix_list_only_the_markers(tmp_path, monkeypatch):
    """Review 23 finding 5: the markers are looked at before and after every checkpoint write and
    every few seconds while sending; on S3 or GCS (``find(path, prefix=...)``) that is one LIST of
    the markers' key prefix, not of the whole ledger folder."""
    from airflow.sdk import ObjectStoragePath
    from fsspec.implementations.local import LocalFileSystem

    from airflow_provider_hubspot_prefs.ledger import claims

    asked: list[str] = []

    def find(self, path, maxdepth=None, withdirs=False, detail=False, prefix="", **kwargs):
        asked.append(prefix)  # a stand-in for the store's own listing of the keys under path/prefix
        return [
            f for f in LocalFileSystem.ls(self, path, detail=False) if f.rsplit("/", 1)[-1].startswith(prefix)
        ]

    def whole_folder(self):
        raise AssertionError("the whole ledger folder was listed")

    ledger = f"local://{tmp_path}/bucket/ledger.csv"
    claims.claim(ledger, "a" * 64, "lineage", 2, "dag / run / t")
    claims.claim(ledger, "b" * 64, "lineage", 7, "another task's")
    monkeypatch.setattr(LocalFileSystem, "find", find)
    monkeypatch.setattr(ObjectStoragePath, "iterdir", whole_folder)
    newest, marker = claims.newest_claim(ledger, "a" * 64, "lineage")
    assert (newest, marker.name) == (2, "ledger.csv.claim-aaaaaaaaaaaaaaaa-lineage-try-2")
    assert asked == ["ledger.csv.claim-aaaaaaaaaaaaaaaa-lineage-try-"]
