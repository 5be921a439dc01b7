"""The trigger: serialisation round trip and the events it yields against the emulator."""

from __future__ import annotations

import asyncio
import importlib
import json
import time

import pytest

from airflow_provider_hubspot_prefs.triggers import HubSpotOperationStatusTrigger

KNOWN = "alice@example.com"


def make(**kwargs):
    defaults = {
        "hubspot_conn_id": "hubspot_prefs_default",
        "poll_interval": 0.1,
        "end_time": time.time() + 10,
    }
    return HubSpotOperationStatusTrigger(**{**defaults, **kwargs})


def first_event(trigger):
    async def go():
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(go())


def test_serialisation_round_trip_holds_plain_values_only():
    trigger = make(
        subscriber_ids=[KNOWN],
        subscription_id=1004,
        status_state="SUBSCRIBED",
        business_unit_id=0,
        api_version="2026-03",
        task_summary={"ledger_path": "/tmp/x.csv", "outcomes": {"submitted": 1}},
    )
    classpath, kwargs = trigger.serialize()
    assert (
        classpath == "airflow_provider_hubspot_prefs.triggers.operation_status.HubSpotOperationStatusTrigger"
    )
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON-safe: nothing but plain values
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_success_event_once_pending_writes_complete(make_client, emulator, hubspot_connection):
    emulator.control("PATCH", "config", json={"processing_delay_ms": 300})
    make_client().batch_unsubscribe_all([KNOWN, "bob@example.org"])
    event = first_event(make(subscriber_ids=[KNOWN, "bob@example.org"], task_summary={"k": 1}))
    assert event.payload["status"] == "success" and event.payload["checked"] == 2
    assert event.payload["task_summary"] == {"k": 1}
    reads = [r for r in emulator.control("GET", "requests")["requests"] if r["path"].endswith("/read")]
    assert len(reads) >= 2  # it polled: PROCESSING first, COMPLETE later
    assert all(r["method"] == "POST" and r["path"].endswith("unsubscribe-all/read") for r in reads)


def test_reads_addresses_from_a_file(make_client, hubspot_connection, tmp_path):
    make_client().unsubscribe_all(KNOWN)
    path = tmp_path / "pending.txt"
    path.write_text(f"{KNOWN}\n\n")
    assert first_event(make(subscribers_path=str(path))).payload["status"] == "success"


def test_reads_a_spreadsheet_style_file_as_the_batch_operators_do(make_client, hubspot_connection, tmp_path):
    make_client().unsubscribe_all(KNOWN)
    path = tmp_path / "pending.csv"
    path.write_bytes(b"\xef\xbb\xbf" + KNOWN.upper().encode() + b"\r\n\r\n")  # BOM, CRLF, blank line
    trigger = make(subscribers_path=str(path), end_time=time.time() + 3)
    assert first_event(trigger).payload["status"] == "success"


def test_canceled_event(make_client, emulator, hubspot_connection):
    emulator.control("PATCH", "config", json={"cancel_next_writes": 1})
    make_client().unsubscribe_all(KNOWN)
    payload = first_event(make(subscriber_ids=[KNOWN])).payload
    assert payload["status"] == "error" and payload["reason"] == "canceled"
    assert "a***@example.com" in payload["message"] and KNOWN not in payload["message"]


def test_timeout_event_names_what_is_pending(hubspot_connection):
    payload = first_event(make(subscriber_ids=[KNOWN], end_time=time.time() + 0.3)).payload
    assert payload["reason"] == "timeout" and payload["pending_count"] == 1
    assert "not yet unsubscribed from all email" in payload["message"]


def test_subscription_status_expectation(make_client, hubspot_connection):
    make_client().set_status(KNOWN, status_state="UNSUBSCRIBED", subscription_id=1001)
    assert (
        first_event(make(subscriber_ids=[KNOWN], subscription_id=1001, status_state="UNSUBSCRIBED")).payload[
            "status"
        ]
        == "success"
    )
    payload = first_event(
        make(
            subscriber_ids=[KNOWN],
            subscription_id=1004,
            status_state="UNSUBSCRIBED",
            end_time=time.time() + 0.2,
        )
    ).payload
    assert payload["reason"] == "timeout"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"subscriber_ids": [KNOWN], "hubspot_conn_id": "missing_conn"}, "setup"),
        ({"subscriber_ids": [KNOWN], "status_state": "SUBSCRIBED"}, "setup"),
    ],
)
def test_setup_problems_become_one_precise_event(kwargs, reason, hubspot_connection):
    payload = first_event(make(**kwargs)).payload
    assert payload["status"] == "error" and payload["reason"] == reason


def test_api_errors_become_an_event(emulator, hubspot_connection):
    emulator.control("POST", "faults", json={"status": 403, "count": 1, "category": "MISSING_SCOPES"})
    payload = first_event(make(subscriber_ids=[KNOWN])).payload
    assert payload["reason"] == "api_error" and "HTTP 403" in payload["message"]
