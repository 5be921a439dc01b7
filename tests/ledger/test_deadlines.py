"""Opt-out deadlines: business days across weekends, states never guessed, and the rows past or near
a deadline named in the summary and the asset event of a real run."""

from __future__ import annotations

import csv
import json
import time
from datetime import timedelta

import pytest

from airflow_provider_hubspot_prefs.ledger.deadlines import (
    Deadline,
    DeadlineState,
    assess,
    deadline_report,
    requested_text,
)
from airflow_provider_hubspot_prefs.ledger.files import read_rows
from airflow_provider_hubspot_prefs.ledger.outcomes import EARLIER_LEDGER_COLUMNS
from airflow_provider_hubspot_prefs.ledger.store import SUPERSEDED_PREFIX as SUPERSEDED
from airflow_provider_hubspot_prefs.ledger.store import iso_utc, parse_iso_utc

from ..dag_support import ledger_rows, provider_dag, states, xcom


def due(spec: object, requested: str, zone: str = "UTC") -> str:
    return iso_utc(Deadline.parse(spec, zone).due(parse_iso_utc(requested) or 0.0)) or ""


@pytest.mark.parametrize(
    ("spec", "requested", "expected"),
    [
        # Thursday + 10 business days: two weekends skipped, same time of day.
        ("10 business days", "2026-11-26T10:00:00Z", "2026-12-10T10:00:00.000Z"),
        # Friday + 1: the weekend does not count.
        (1, "2026-11-27T16:30:00Z", "2026-11-30T16:30:00.000Z"),
        # A Saturday's request counts from Monday's start: + 1 business day is Tuesday 00:00.
        ("1 business day", "2026-11-28T10:00:00Z", "2026-12-01T00:00:00.000Z"),
        ("1 business day", "2026-11-29T23:59:00Z", "2026-12-01T00:00:00.000Z"),
        # CCPA's 15 business days from a Wednesday: three weekends.
        ("15 business days", "2026-12-02T08:00:00Z", "2026-12-23T08:00:00.000Z"),
        ("0 business days", "2026-11-28T10:00:00Z", "2026-11-30T00:00:00.000Z"),
        ("72h", "2026-11-27T16:30:00Z", "2026-11-30T16:30:00.000Z"),
        ("P3D", "2026-11-27T16:30:00Z", "2026-11-30T16:30:00.000Z"),
        (timedelta(hours=36), "2026-11-27T16:30:00Z", "2026-11-29T04:30:00.000Z"),
        ("15 days", "2026-11-27T16:30:00Z", "2026-12-12T16:30:00.000Z"),
        ("P1W", "2026-11-27T16:30:00Z", "2026-12-04T16:30:00.000Z"),
        ("PT1.5H", "2026-11-27T16:30:00Z", "2026-11-27T18:00:00.000Z"),
        ("P1DT12H", "2026-11-27T16:30:00Z", "2026-11-29T04:30:00.000Z"),
        # 21 business days from a Wednesday: four whole weeks and one day.
        (21, "2026-12-02T08:00:00Z", "2026-12-31T08:00:00.000Z"),
    ],
)
def test_when_a_request_is_due(spec, requested, expected):
    assert due(spec, requested) == expected


def test_business_days_are_the_deadline_time_zone_s_weekdays():
    # Friday 23:30 UTC is Saturday 00:30 in Berlin: the request counts from Monday 00:00 there.
    assert due(1, "2026-11-27T23:30:00Z", "Europe/Berlin") == "2026-11-30T23:00:00.000Z"
    assert due(1, "2026-11-27T23:30:00Z") == "2026-11-30T23:30:00.000Z"


@pytest.mark.parametrize(
    "spec", ["ten days", "-1", -1, True, "10 fortnights", "P", "PT", "P2DT", "P1Y", "", None, 366, "864000"]
)
def test_a_deadline_that_says_nothing_readable_is_refused_by_name(spec):
    with pytest.raises(ValueError, match="deadline"):
        Deadline.parse(spec)
    with pytest.raises(ValueError, match="time zone"):
        Deadline.parse(10, "Mars/Olympus")


def test_a_deadline_survives_its_round_trip_through_json():
    for deadline in (Deadline.parse(10, "Europe/Paris"), Deadline.parse("36h")):
        assert Deadline.from_json(deadline.to_json()) == deadline


def test_requested_at_is_kept_as_an_instant_or_as_what_it_was():
    assert requested_text("2026-03-02T10:00:00+01:00") == "2026-03-02T09:00:00.000Z"
    assert requested_text("1772442000") == "2026-03-02T09:00:00.000Z"
    assert requested_text("") is None and requested_text(None) is None
    naive = requested_text("2026-03-02 10:00")
    assert naive is not None and naive.startswith("unreadable: 2026-03-02 10:00 (") and "time zone" in naive
    assert requested_text("2026-03-02").startswith("unreadable: ")  # type: ignore[union-attr]


NOW = parse_iso_utc("2026-12-07T12:00:00Z") or 0.0  # a Monday


def row(
    line: int, outcome: str, requested: str = "", confirmed: str = "", reason: str = ""
) -> dict[str, str]:
    return {
        "line": str(line),
        "outcome": outcome,
        "requested_at": requested,
        "confirmed_at": confirmed,
        "reason": reason,
    }


def test_each_row_s_state_against_the_deadline():
    deadline, warning = Deadline.parse(10), Deadline.parse("2 business days")
    rows = [
        row(1, "unsubscribed", "2026-11-23T09:00:00.000Z", "2026-12-04T09:00:00.000Z"),  # due 12-07 09:00
        row(2, "unsubscribed", "2026-11-20T09:00:00.000Z", "2026-12-07T09:00:00.000Z"),  # due 12-04: missed
        row(3, "failed", "2026-11-20T09:00:00.000Z"),  # due Fri 12-04, not confirmed: overdue
        # Requested Friday 11-27 14:00: due Friday 12-11, more than 2 business days away: open.
        row(4, "failed", "2026-11-27T14:00:00.000Z"),
        # Requested Wednesday 11-25 13:00: due Wednesday 12-09 13:00; two business days from this
        # Monday noon is Wednesday noon: it is due within the warning only an hour later... open.
        row(5, "submitted", "2026-11-25T13:00:00.000Z"),
        # Requested Tuesday 11-24 13:00: due Tuesday 12-08 13:00, within the warning: near.
        row(6, "submitted", "2026-11-24T13:00:00.000Z"),
        row(7, "failed", "unreadable: 2026-11-24 13:00 (no time zone)"),
        row(8, "unsubscribed"),
        # HubSpot holds a newer choice: whether it held the opt-out in time was not seen.
        row(9, "kept_newer_in_hubspot", "2026-11-01T09:00:00.000Z"),
        # A consent row the person replaced by a later decision before it was due.
        row(
            10,
            "duplicate",
            "2026-11-30T09:00:00.000Z",
            reason=f"{SUPERSEDED} line 11 (decided at 2026-12-01T10:00:00.000Z)",
        ),
        # ... and one replaced only after it was due: its deadline had passed (overdue).
        row(
            11,
            "duplicate",
            "2026-11-02T09:00:00.000Z",
            reason=f"{SUPERSEDED} line 12 (decided at 2026-12-01T10:00:00.000Z)",
        ),
        # A row a 0.2 try confirmed (no confirmed_at recorded): when is not known.
        row(12, "unsubscribed", "2026-11-02T09:00:00.000Z"),
    ]
    states_ = [assess(r, deadline, warning, NOW)[0] for r in rows]
    assert states_ == [
        DeadlineState.MET,
        DeadlineState.MISSED,
        DeadlineState.OVERDUE,
        DeadlineState.OPEN,
        DeadlineState.OPEN,
        DeadlineState.NEAR,
        DeadlineState.UNKNOWN,
        DeadlineState.NONE,
        DeadlineState.UNKNOWN,
        DeadlineState.SUPERSEDED,
        DeadlineState.OVERDUE,
        DeadlineState.UNKNOWN,
    ]
    report = deadline_report(rows, deadline, warning, NOW)
    assert [r["line"] for r in report["past"]] == [2, 3, 11]
    assert [r["line"] for r in report["near"]] == [6]
    assert report["near"][0]["due_at"] == "2026-12-08T13:00:00.000Z"
    assert [r["line"] for r in report["unknown"]] == [7, 9, 12]
    assert report["unknown"][0]["requested_at"] == "unreadable"  # the text stays in the ledger only
    assert report["counts"] == {
        "met": 1,
        "missed": 1,
        "overdue": 2,
        "open": 2,
        "near": 1,
        "unknown": 3,
        "none": 1,
        "superseded": 1,
    }


def test_a_ledger_of_the_earlier_version_reads_with_empty_deadline_columns(tmp_path):
    old = tmp_path / "ledger.csv"
    with open(old, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EARLIER_LEDGER_COLUMNS)
        writer.writerow(
            ["1", "a@example.com", "a@example.com", "unsubscribed", "", "", "", "", "COMPLETE", ""]
        )
    (only,) = read_rows(old)
    assert only["outcome"] == "unsubscribed" and only["requested_at"] == "" and only["confirmed_at"] == ""


def _before(deadline: Deadline, now: float, wanted) -> str:
    """A request time whose due time ``wanted(due)`` accepts, searched back from ``now`` by the hour."""
    for hours in range(1, 24 * 40):
        at = now - hours * 3600
        if wanted(deadline.due(at)):
            return iso_utc(at) or ""
    raise AssertionError("no such request time")


@pytest.mark.usefixtures("airflow_db", "hubspot_connection")
def test_rows_past_and_near_the_deadline_are_named_in_the_summary_and_the_asset_event(emulator, tmp_path):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    now = time.time()
    deadline, warning = Deadline.parse(10), Deadline.parse(2)
    long_ago = iso_utc(now - 30 * 86400)
    near = _before(deadline, now, lambda d: now + 3600 < d < warning.due(now))
    recent = iso_utc(now - 3600)
    emulator.control("POST", "faults", json={"kind": "partial", "reject_contains": "blocked", "count": 100})
    source = tmp_path / "withdrawals.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:  # as a spreadsheet writes it: CRLF
        writer = csv.writer(handle)
        writer.writerow(["email", "requested_at"])
        writer.writerows(
            [
                ["late@example.com", long_ago],  # line 2: confirmed now, 30 days on: missed
                ["fresh@example.com", recent],  # 3: met
                ["blocked.overdue@example.com", long_ago],  # 4: refused by HubSpot: overdue
                ["blocked.near@example.com", near],  # 5: refused, due within 2 business days: near
                ["blocked.open@example.com", recent],  # 6: refused, due in two weeks: open
                ["naive@example.com", "2026-03-02 10:00"],  # 7: no time zone: unknown
                ["nobody.asked@example.com", ""],  # 8: none
            ]
        )
    ledger = tmp_path / "ledger.csv"
    run = provider_dag("test_opt_out_deadlines").test(
        run_conf={"input_path": str(source), "ledger_path": str(ledger)}
    )
    assert states(run) == {"unsubscribe": "success"}
    rows = {int(r["line"]): r for r in ledger_rows(ledger)}
    assert rows[2]["requested_at"] == long_ago and rows[2]["confirmed_at"]
    assert rows[4]["outcome"] == "failed" and not rows[4]["confirmed_at"]
    assert rows[7]["requested_at"].startswith("unreadable: 2026-03-02 10:00")

    report = xcom(run, "unsubscribe")["deadlines"]
    assert report["deadline"] == "10 business days"
    assert [(r["line"], r["state"]) for r in report["past"]] == [(2, "missed"), (4, "overdue")]
    assert [(r["line"], r["state"]) for r in report["near"]] == [(5, "near")]
    assert [r["line"] for r in report["unknown"]] == [7]
    assert report["counts"] == {
        "missed": 1,
        "met": 1,
        "overdue": 1,
        "near": 1,
        "open": 1,
        "unknown": 1,
        "none": 1,
    }
    with create_session() as session:
        (event,) = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "hubspot_prefs_test_deadlines", AssetEvent.source_run_id == run.run_id)
        ).all()
        extra = dict(event.extra)
    assert extra["deadlines"] == report
    assert "example.com" not in json.dumps(extra)  # lines and times, never an address
