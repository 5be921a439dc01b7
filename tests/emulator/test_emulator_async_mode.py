"""The emulator's asynchronous mode: PENDING writes, PROCESSING reads, then COMPLETE or CANCELED."""

from __future__ import annotations

import time

from airflow_provider_hubspot_prefs.client import OperationStatus, StatusState

KNOWN = "alice@example.com"


def test_writes_take_effect_after_the_processing_delay(make_client, emulator):
    emulator.control("PATCH", "config", json={"processing_delay_ms": 400})
    client = make_client()
    accepted = client.batch_unsubscribe_all([KNOWN, "late@example.com"], verbose=True)
    assert accepted.status is OperationStatus.PENDING and accepted.results == []

    during = client.batch_read_unsubscribe_all([KNOWN, "late@example.com"])
    assert during.status is OperationStatus.PROCESSING
    assert {r.wide_statuses[0].status for r in during.results} == {StatusState.NOT_SPECIFIED}
    assert client.get_status("bob@example.org").status is OperationStatus.COMPLETE  # untouched contact

    time.sleep(0.5)
    after = client.batch_read_unsubscribe_all([KNOWN, "late@example.com"])
    assert after.status is OperationStatus.COMPLETE
    assert {r.wide_statuses[0].status for r in after.results} == {StatusState.UNSUBSCRIBED}


def test_canceled_write_never_takes_effect(make_client, emulator):
    emulator.control("PATCH", "config", json={"processing_delay_ms": 200, "cancel_next_writes": 1})
    client = make_client()
    assert client.unsubscribe_all(KNOWN).status is OperationStatus.PENDING
    time.sleep(0.3)
    read = client.get_unsubscribe_all_status(KNOWN)
    assert read.status is OperationStatus.CANCELED
    assert read.results[0].status is StatusState.NOT_SPECIFIED

    emulator.control("PATCH", "config", json={"processing_delay_ms": 0})
    assert client.unsubscribe_all(KNOWN).status is OperationStatus.COMPLETE  # a new write clears it
    assert client.get_unsubscribe_all_status(KNOWN).status is OperationStatus.COMPLETE


def test_synchronous_cancel_is_reported_at_once(make_client, emulator):
    emulator.control("PATCH", "config", json={"cancel_next_writes": 1})
    client = make_client()
    done = client.set_status(KNOWN, status_state="UNSUBSCRIBED", subscription_id=1001)
    assert done.status is OperationStatus.CANCELED and done.results == []
    statuses = {s.subscription_id: s.status for s in client.get_status(KNOWN).results}
    assert statuses[1001] is StatusState.SUBSCRIBED
