"""Operators and sensor inside DAGs run by dag.test(), over HTTP to the emulator, polling and deferred."""

from __future__ import annotations

import pytest

from ..dag_support import ledger_rows, provider_dag, states, xcom

MODES = ["poll", "deferred"]


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """Every test here runs DAGs: migrated DB and a connection to the emulator."""


@pytest.fixture
def trigger_calls(monkeypatch):
    """How the trigger was used: run by the (in-process) triggerer, or waited on inside the task."""
    from airflow_provider_hubspot_prefs.triggers import HubSpotOperationStatusTrigger

    calls = {"triggerer": 0, "in_task": 0}
    original_run, original_wait = HubSpotOperationStatusTrigger.run, HubSpotOperationStatusTrigger.wait

    def run(self):
        if not getattr(self, "_in_task", False):
            calls["triggerer"] += 1
        return original_run(self)

    async def wait(self):
        calls["in_task"] += 1
        self._in_task = True
        return await original_wait(self)

    monkeypatch.setattr(HubSpotOperationStatusTrigger, "run", run)
    monkeypatch.setattr(HubSpotOperationStatusTrigger, "wait", wait)
    return calls


@pytest.mark.parametrize("mode", MODES)
def test_batch_unsubscribe_waits_for_pending_operations(emulator, tmp_path, mode, trigger_calls):
    emulator.control("PATCH", "config", json={"processing_delay_ms": 600})
    people = [f"person{i}@example.com" for i in range(250)]
    source = tmp_path / "in.txt"
    source.write_text("\n".join([*people, "broken", people[0].upper()]) + "\n")
    ledger = tmp_path / "ledger.csv"

    # A file:// URI goes through the object-storage path handling; a plain path does not.
    input_path = source.as_uri() if mode == "deferred" else str(source)
    run = provider_dag(f"test_batch_unsubscribe_{mode}").test(
        run_conf={"input_path": input_path, "ledger_path": str(ledger)}
    )
    assert states(run) == {"unsubscribe": "success"}
    expected = {"triggerer": 1, "in_task": 0} if mode == "deferred" else {"triggerer": 0, "in_task": 1}
    assert trigger_calls == expected
    summary = xcom(run, "unsubscribe")
    assert summary["outcomes"] == {"unsubscribed": 250, "invalid_input": 1, "duplicate": 1}
    assert summary["operation_status"] == "COMPLETE" and summary["confirmed"] == 250
    assert "person" not in str(summary)  # the summary holds counts and paths, never addresses

    rows = ledger_rows(ledger)
    assert [int(r["line"]) for r in rows] == list(range(1, 253))
    assert {r["operation_status"] for r in rows if r["outcome"] == "unsubscribed"} == {"COMPLETE"}
    wide = emulator.backend.wide
    assert all((p, 0) in wide for p in people)


@pytest.mark.parametrize("mode", MODES)
def test_single_contact_operators_and_status_sensor(emulator, mode, trigger_calls):
    emulator.control("PATCH", "config", json={"processing_delay_ms": 400})
    run = provider_dag(f"test_single_contact_{mode}").test(run_conf={"subscriber": "Alice@Example.com"})
    assert states(run) == {
        "unsubscribe_one": "success",
        "resubscribe_newsletter": "success",
        "newsletter_is_subscribed": "success",
    }
    # Both operators waited through the trigger: deferred to the triggerer, or inside the task.
    expected = {"triggerer": 2, "in_task": 0} if mode == "deferred" else {"triggerer": 0, "in_task": 2}
    assert trigger_calls == expected
    assert xcom(run, "unsubscribe_one") == {
        "subscriber": "a***@example.com",
        "outcome": "unsubscribed",
        "operation_status": "COMPLETE",
        "confirmed": 1,
    }
    assert xcom(run, "resubscribe_newsletter")["outcome"] == "status_set"
    record = emulator.backend.statuses[("alice@example.com", 1004)]
    assert (record.status, record.legal_basis) == ("SUBSCRIBED", "CONSENT_WITH_NOTICE")
    assert record.legal_basis_explanation == f"Re-confirmed in run {run.run_id}"
    assert ("alice@example.com", 0) not in emulator.backend.wide  # resubscribing lifted the opt-out


@pytest.mark.parametrize("mode", MODES)
def test_sensor_fails_on_canceled_operation(make_client, emulator, mode, capfd):
    emulator.control("PATCH", "config", json={"cancel_next_writes": 1})
    make_client().unsubscribe_all("alice@example.com")
    run = provider_dag(f"test_sensor_{mode}").test(run_conf={"subscribers": ["alice@example.com"]})
    assert states(run) == {"wait": "failed"}
    out = "".join(capfd.readouterr())
    assert "AirflowFailException: HubSpot canceled the operation for 1" in out
    assert "a***@example.com" in out


@pytest.mark.parametrize("mode", MODES)
def test_sensor_times_out_naming_what_is_pending(emulator, mode, capfd):
    run = provider_dag(f"test_sensor_{mode}").test(
        run_conf={"subscribers": ["bob@example.org", "alice@example.com"]}
    )
    assert states(run) == {"wait": "failed"}
    out = "".join(capfd.readouterr())
    expected = "Still pending: 2 contact(s)" if mode == "poll" else "Timed out with 2 of 2 contact(s)"
    assert expected in out and "b***@example.org" in out


@pytest.mark.parametrize("mode", MODES)
def test_sensor_succeeds_once_state_is_reached(make_client, emulator, mode):
    make_client().batch_unsubscribe_all(["alice@example.com", "bob@example.org"])
    run = provider_dag(f"test_sensor_{mode}").test(
        run_conf={"subscribers": ["alice@example.com", "bob@example.org"]}
    )
    assert states(run) == {"wait": "success"}


def test_set_status_for_many_contacts_writes_a_ledger(emulator, tmp_path):
    people = [f"c{i}@example.com" for i in range(20)]
    emulator.control("POST", "contacts", json={"emails": people[:5]})
    ledger = tmp_path / "consent.csv"
    first = provider_dag("test_set_status_batch").test(
        run_conf={"subscribers": [*people, "nope"], "ledger_path": str(ledger)}
    )
    assert states(first) == {"set_many": "success"}
    assert xcom(first, "set_many")["outcomes"] == {"status_set": 20, "invalid_input": 1}
    assert emulator.backend.statuses[("c7@example.com", 1003)].legal_basis == "LEGITIMATE_INTEREST_OTHER"
    requests = [
        r for r in emulator.control("GET", "requests")["requests"] if r["path"].endswith("batch/write")
    ]
    assert len(requests) == 3  # 20 addresses in chunks of 7

    again = provider_dag("test_set_status_batch").test(
        run_conf={"subscribers": people, "ledger_path": str(tmp_path / "again.csv")}
    )
    assert xcom(again, "set_many")["outcomes"] == {"already_in_state": 20}


def test_a_dry_run_of_one_status_change_sends_nothing(emulator, hubspot_connection):
    """One address given as a string takes the single-contact path: a dry run must not write there either."""
    from airflow_provider_hubspot_prefs.operators import HubSpotSetSubscriptionStatusOperator

    from ..batch_try import context

    emulator.backend.status_writes.clear()
    emulator.control("DELETE", "requests")
    result = HubSpotSetSubscriptionStatusOperator(
        task_id="status",
        subscriber_ids="dry.one@example.com",
        subscription_id=1001,
        status_state="UNSUBSCRIBED",
        dry_run=True,
    ).execute(context("manual__dry_one", 1, task_id="status"))
    assert result["outcome"] == "not_attempted" and emulator.backend.status_writes == []
    assert emulator.control("GET", "requests")["requests"] == []
