"""The status export: what the file says is what HubSpot (the emulator) holds, contact by contact."""

from __future__ import annotations

import csv
import json

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_hubspot_prefs.client import status_request
from airflow_provider_hubspot_prefs.ledger.status_export import EXPORT_COLUMNS
from airflow_provider_hubspot_prefs.operators import HubSpotExportSubscriptionStatusesOperator

from ..batch_try import context
from ..ledger_support import mode

EXPLANATION = "Ticked the box on the March 2026 webinar form"


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """A connection to the emulator."""


@pytest.fixture
def portal(emulator, make_client) -> dict[str, list[str]]:
    """600 contacts: 200 subscribed to two subscriptions with a legal basis, 100 unsubscribed from
    one, 100 unsubscribed from all, 200 untouched; and 30 addresses HubSpot does not know."""
    people = [f"export.{i:04d}@example.com" for i in range(600)]
    emulator.backend.add_contacts(people)
    client = make_client()
    for start in range(0, 200, 50):
        client.batch_write_statuses(
            [
                status_request(
                    address,
                    subscription_id=subscription,
                    status_state="SUBSCRIBED",
                    legal_basis="CONSENT_WITH_NOTICE",
                    legal_basis_explanation=EXPLANATION,
                )
                for address in people[start : start + 50]
                for subscription in (1001, 1004)
            ]
        )
    client.batch_write_statuses(
        [status_request(a, subscription_id=1002, status_state="UNSUBSCRIBED") for a in people[200:300]]
    )
    for start in range(300, 400, 100):
        client.batch_unsubscribe_all(people[start : start + 100])
    return {"known": people, "unknown": [f"nobody.{i:02d}@example.com" for i in range(30)]}


def hubspot_holds(emulator, address: str) -> list[dict[str, object]]:
    """The emulator's own state of one contact, as export rows (business unit 0)."""
    backend = emulator.backend
    rows = []
    for s in sorted(backend.statuses_of(address, 0), key=lambda s: s["subscriptionId"]):
        rows.append(
            {
                "subscriber_id": address,
                "kind": "subscription",
                "subscription_id": str(s["subscriptionId"]),
                "subscription_name": s["subscriptionName"],
                "status": s["status"],
                "timestamp": s["timestamp"] if s["status"] != "NOT_SPECIFIED" else "(now)",
                "legal_basis": s.get("legalBasis") or "",
                "legal_basis_explanation": s.get("legalBasisExplanation") or "",
            }
        )
    for w in backend.wide_statuses_of(address, 0, False):
        rows.append(
            {
                "subscriber_id": address,
                "kind": "unsubscribe_all",
                "status": w["status"],
                "timestamp": w["timestamp"] if w["status"] != "NOT_SPECIFIED" else "(now)",
                "wide_status_type": w["wideStatusType"],
            }
        )
    return rows


def comparable(row: dict[str, str]) -> dict[str, object]:
    keys = ["subscriber_id", "kind", "status", "timestamp"]
    keys += (
        ["subscription_id", "subscription_name", "legal_basis", "legal_basis_explanation"]
        if row["kind"] == "subscription"
        else ["wide_status_type"]
    )
    seen = {k: ("" if row[k] is None else str(row[k])) for k in keys}
    if seen["status"] == "NOT_SPECIFIED":
        seen["timestamp"] = "(now)"  # HubSpot dates a status nobody set with the time of the read
    return seen


def timestamps_equal(exported: str, held: str) -> bool:
    from datetime import datetime

    return datetime.fromisoformat(exported.replace("Z", "+00:00")) == datetime.fromisoformat(
        held.replace("Z", "+00:00")
    )


def check_export(emulator, rows: list[dict[str, str]], expected_order: list[str], unknown: set[str]) -> None:
    by_contact: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_contact.setdefault(row["subscriber_id"], []).append(row)
    assert list(by_contact) == expected_order  # the input's order, each contact once
    for address, exported in by_contact.items():
        if address in unknown:
            assert [r["kind"] for r in exported] == ["not_found"] and exported[0]["message"]
            continue
        held = hubspot_holds(emulator, address)
        got = [comparable(r) for r in exported]
        assert len(got) == len(held), address
        for g, h in zip(got, held, strict=True):
            exported_at, held_at = g.pop("timestamp"), h.pop("timestamp")
            assert g == h, address
            if held_at != "(now)":
                assert timestamps_equal(str(exported_at), str(held_at)), (address, exported_at, held_at)


def test_export_to_csv_reads_back_as_the_portals_state(emulator, portal, tmp_path):
    people, unknown = portal["known"], portal["unknown"]
    lines = (
        people[:250] + unknown[:15] + ["", "not-an-address", people[5].upper()] + people[250:] + unknown[15:]
    )
    source = tmp_path / "contacts.txt"
    source.write_text("\ufeff" + "\n".join(lines) + "\n")  # a byte-order mark, as spreadsheets write
    output = tmp_path / "audit" / "statuses.csv"
    emulator.control("DELETE", "requests")

    summary = HubSpotExportSubscriptionStatusesOperator(
        task_id="export", input_path=str(source), output_path=str(output), batch_size=50
    ).execute(context("manual__export", 1))

    with open(output, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
        rows = list(reader)
    order = people[:250] + unknown[:15] + people[250:] + unknown[15:]
    check_export(emulator, rows, order, set(unknown))
    assert mode(output) == 0o600
    assert summary == {
        "contacts": 630,
        "rows": len(rows),
        "not_found": 30,
        "errors": 0,
        "invalid_input": 2,
        "duplicate": 1,
        "output_path": str(output),
        "output_format": "csv",
    }
    # 630 contacts in chunks of 50: 13 reads of each kind and the unit's subscriptions, nothing written.
    paths = [r["path"] for r in emulator.control("GET", "requests")["requests"]]
    assert sorted(set(paths)) == [
        "/communication-preferences/v4/definitions",
        "/communication-preferences/v4/statuses/batch/read",
        "/communication-preferences/v4/statuses/batch/unsubscribe-all/read",
    ]
    assert len(paths) == 27
    # Spot checks the comparison above rests on: a legal basis and an unsubscribe-all are in the file.
    first = [r for r in rows if r["subscriber_id"] == people[0] and r["subscription_id"] == "1001"]
    assert (
        first[0]["legal_basis"] == "CONSENT_WITH_NOTICE"
        and first[0]["legal_basis_explanation"] == EXPLANATION
    )
    wide = [r for r in rows if r["subscriber_id"] == people[350] and r["kind"] == "unsubscribe_all"]
    assert wide[0]["status"] == "UNSUBSCRIBED"


def test_export_to_json_lines_from_a_list(emulator, portal, tmp_path):
    people, unknown = portal["known"][::7], portal["unknown"][:3]
    output = tmp_path / "statuses.jsonl"
    summary = HubSpotExportSubscriptionStatusesOperator(
        task_id="export", subscribers=people + unknown, output_path=str(output)
    ).execute(context("manual__export_jsonl", 1))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert all(tuple(r) == EXPORT_COLUMNS for r in rows)
    check_export(emulator, rows, people + unknown, set(unknown))
    assert summary["output_format"] == "jsonl" and summary["contacts"] == len(people) + 3


def test_a_failed_read_publishes_no_file(emulator, portal, tmp_path):
    output = tmp_path / "statuses.csv"
    output.write_text("yesterday's export\n")
    emulator.control(
        "POST", "faults", json={"status": 403, "count": 1, "path_endswith": "batch/unsubscribe-all/read"}
    )
    with pytest.raises(AirflowFailException) as raised:
        HubSpotExportSubscriptionStatusesOperator(
            task_id="export", subscribers=portal["known"][:300], output_path=str(output)
        ).execute(context("manual__export_fail", 1))
    assert "403" in str(raised.value) or "scope" in str(raised.value).lower()
    assert output.read_text() == "yesterday's export\n"


def test_a_wrong_output_format_fails_before_any_request(emulator, tmp_path):
    emulator.control("DELETE", "requests")
    with pytest.raises(AirflowFailException, match="output_format 'xlsx' is not one of csv, jsonl"):
        HubSpotExportSubscriptionStatusesOperator(
            task_id="export",
            subscribers=["a@example.com"],
            output_path=str(tmp_path / "x"),
            output_format="xlsx",
        ).execute(context("manual__export_format", 1))
    assert emulator.control("GET", "requests")["requests"] == []


def test_a_read_refused_midway_leaves_the_object_storage_file_as_it_was(emulator, portal, tmp_path):
    """On object storage (``local://`` goes through ObjectStoragePath as s3:// does) an upload that
    fails after rows were written must not publish the rows written so far."""
    target = tmp_path / "bucket" / "statuses.csv"
    target.parent.mkdir()
    target.write_text("yesterday's export\n")
    # The first reads answer; a later one is refused for good, after rows were written.
    emulator.control(
        "POST", "faults", json={"status": 403, "count": 1, "every": 6, "path_endswith": "statuses/batch/read"}
    )
    with pytest.raises(AirflowFailException, match="Nothing was written"):
        HubSpotExportSubscriptionStatusesOperator(
            task_id="export",
            subscribers=portal["known"],
            output_path=f"local://{target}",
            batch_size=20,
            max_in_flight=1,
        ).execute(context("manual__export_midway", 1))
    assert target.read_text() == "yesterday's export\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["statuses.csv"]  # nothing left beside it


@pytest.mark.parametrize(
    ("fault", "missing"),
    [
        (
            {"kind": "partial", "path_endswith": "statuses/batch/read", "reject_contains": "0007"},
            "subscription statuses not read: HubSpot answered INTERNAL_ERROR",
        ),
        (
            {"kind": "omit", "path_endswith": "unsubscribe-all/read", "reject_contains": "0007"},
            "unsubscribe-from-all status not read: HubSpot's answer left it out",
        ),
    ],
    ids=["status-read-207", "opt-out-read-left-out"],
)
def test_a_contact_a_read_did_not_give_is_an_error_row_never_a_gap(
    emulator, portal, tmp_path, fault, missing
):
    """A per-contact error or a contact left out of one read is said in the file (and fails the
    task), never exported as not_found or passed over."""
    people = portal["known"][:20]
    output = tmp_path / "statuses.csv"
    emulator.control("POST", "faults", json={"count": 10, **fault})
    with pytest.raises(AirflowException, match="1 error row"):
        HubSpotExportSubscriptionStatusesOperator(
            task_id="export", subscribers=people, output_path=str(output)
        ).execute(context("manual__export_errors", 1))
    emulator.backend.faults.clear()
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    hit = [r for r in rows if r["subscriber_id"] == "export.0007@example.com"]
    errors = [r for r in hit if r["kind"] == "error"]
    assert len(errors) == 1 and errors[0]["message"].startswith(missing), errors
    assert not [r for r in rows if r["kind"] == "not_found"]
    # What the other read gave is there; the other contacts are whole.
    kinds = {r["kind"] for r in hit}
    assert kinds == (
        {"error", "unsubscribe_all"} if "statuses" in fault["path_endswith"] else {"error", "subscription"}
    )
    check_export(
        emulator,
        [r for r in rows if r not in hit],
        [p for p in people if p not in {"export.0007@example.com"}],
        set(),
    )


def test_a_subscriptions_read_refused_for_good_fails_without_a_retry(emulator, portal, tmp_path):
    """The unit's subscriptions are read like the statuses: a refusal a retry cannot fix fails the
    task at once, and the previous file stays."""
    output = tmp_path / "statuses.csv"
    output.write_text("yesterday's export\n")
    emulator.control("POST", "faults", json={"status": 403, "count": 1, "path_endswith": "/definitions"})
    with pytest.raises(AirflowFailException, match="Nothing was written"):
        HubSpotExportSubscriptionStatusesOperator(
            task_id="export", subscribers=portal["known"][:10], output_path=str(output)
        ).execute(context("manual__export_definitions", 1))
    assert output.read_text() == "yesterday's export\n"
