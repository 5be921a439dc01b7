"""Review of 68f407d (issue 25, deadlines): cases where the deadline report assumes what it does not
know, or records something untrue. Each test fails on 68f407d; see the review report."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from airflow_provider_hubspot_prefs.ledger.deadlines import (
    Deadline,
    DeadlineState,
    assess,
    deadline_report,
)
from airflow_provider_hubspot_prefs.ledger.desired_state import desired_status
from airflow_provider_hubspot_prefs.ledger.files import read_rows
from airflow_provider_hubspot_prefs.ledger.inputs import InputRecord, records_from_text
from airflow_provider_hubspot_prefs.ledger.outcomes import (
    EARLIER_LEDGER_COLUMNS,
    LEDGER_COLUMNS,
    Outcome,
    Row,
)
from airflow_provider_hubspot_prefs.ledger.store import WorkStore, iso_utc, parse_iso_utc

TEN, WARNING = Deadline.parse(10), Deadline.parse("2 business days")


def _ledger_dicts(store: WorkStore) -> dict[int, dict[str, str]]:
    return {
        int(r[0]): {c: "" if v is None else str(v) for c, v in zip(LEDGER_COLUMNS, r, strict=True)}
        for r in store.ledger_rows()
    }


# -- 1. an address in the summary and the asset event ---------------------------------------------


def test_an_unreadable_requested_at_carries_no_address_into_the_deadline_report():
    # A spreadsheet row shifted by one cell (or requested_at_column pointing at the wrong column):
    # the requested_at cell holds an address. The ledger may keep it (it holds addresses); the
    # deadline report goes to the summary, the asset event and report.html, "without addresses".
    source = io.StringIO("email,requested_at\r\nalice@example.com,bob.private@example.org\r\n")
    (record,) = records_from_text(source, "email")
    assert record.requested is not None and record.requested.startswith("unreadable: ")
    ledger_row = {
        "line": str(record.line),
        "outcome": "unsubscribed",
        "reason": "",
        "requested_at": record.requested,
        "confirmed_at": iso_utc(time.time()) or "",
    }
    report = deadline_report([ledger_row], TEN, WARNING, time.time())
    assert [r["line"] for r in report["unknown"]] == [2]
    assert "bob.private@example.org" not in json.dumps(report)


# -- 2. a consent row whose decided_at cannot be read: its request time is unknown, not "none" ----


def test_an_opt_out_with_an_unreadable_decided_at_has_an_unknown_request_time_not_none():
    row = {
        "subscriber_id": "a@example.com",
        "subscription_id": "7",
        "status": "UNSUBSCRIBED",
        "legal_basis": "LEGITIMATE_INTEREST_CLIENT",
        "legal_basis_explanation": "asked by mail",
        "decided_at": "2026-03-02 10:00",  # no time zone: refused, and the request time is unknown
    }
    desired = desired_status(2, row)
    assert desired.problem is not None  # refused (that part is right)
    # The row's deadline "runs all the same" (desired_state's comment), from a time not known:
    # it must be listed as unknown, not counted as "none" (nothing to measure).
    ledger_row = {
        "line": "2",
        "outcome": "invalid_input",
        "reason": desired.problem,
        "requested_at": desired.requested or "",
        "confirmed_at": "",
    }
    assert assess(ledger_row, TEN, WARNING, time.time())[0] is DeadlineState.UNKNOWN


# -- 3. a row confirmed by 0.2 (no confirmed_at column), restored after the upgrade --------------


def test_a_row_a_0_2_try_confirmed_is_not_reported_as_unconfirmed_after_a_resume(tmp_path):
    now = time.time()
    asked = iso_utc(now - 40 * 86400)  # due long ago
    store = WorkStore(tmp_path / "work.sqlite")
    store.ingest(
        [
            InputRecord(2, "done@example.com", "done@example.com", requested=asked),
            InputRecord(3, "left@example.com", "left@example.com", requested=asked),
        ]
    )
    old = tmp_path / "ledger.csv"  # the checkpoint ledger the 0.2 try wrote (ten columns)
    with open(old, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EARLIER_LEDGER_COLUMNS)
        writer.writerow(
            [
                "2",
                "done@example.com",
                "done@example.com",
                "unsubscribed",
                "",
                "",
                "corr-1",
                "",
                "COMPLETE",
                iso_utc(now - 39 * 86400),
            ]
        )
        writer.writerow(
            [
                "3",
                "left@example.com",
                "left@example.com",
                "failed",
                "HubSpot timed out",
                "",
                "corr-1",
                "",
                "",
                iso_utc(now - 39 * 86400),
            ]
        )
    store.restore(read_rows(old), str(old))
    rows = _ledger_dicts(store)
    assert rows[2]["outcome"] == "unsubscribed"
    state, _ = assess(rows[2], TEN, WARNING, now)
    # HubSpot WAS seen holding it (by the 0.2 try); when is not known. "overdue" says it was not.
    assert state is not DeadlineState.OVERDUE, (
        "an unsubscribed row is reported 'overdue' (not seen holding it)"
    )
    assert state is DeadlineState.UNKNOWN
    assert assess(rows[3], TEN, WARNING, now)[0] is DeadlineState.OVERDUE  # this one is truly overdue


# -- 4. "superseded" excuses a request whose deadline had passed ----------------------------------


def _consent_record(line: int, decided: float, requested: str, status: str = "UNSUBSCRIBED") -> InputRecord:
    return InputRecord(
        line,
        f'{{"line": {line}}}',
        "a@example.com",
        key="a@example.com|7",
        decided=decided,
        payload=json.dumps({"status": status, "subscription_id": 7}),
        requested=requested,
    )


def test_a_second_identical_opt_out_does_not_hide_the_first_request_s_missed_deadline(tmp_path):
    now = time.time()
    first, second = now - 40 * 86400, now - 3600
    store = WorkStore(tmp_path / "work.sqlite")
    # The person opted out 40 days ago (never written), and again an hour ago: the same change.
    store.ingest(
        [_consent_record(2, first, iso_utc(first) or ""), _consent_record(3, second, iso_utc(second) or "")]
    )
    store.claim(1)
    store.record([Row(3, Outcome.STATUS_SET, "REQUESTED_CHANGE_OCCURRED")])  # HubSpot holds it now
    rows = _ledger_dicts(store)
    assert rows[2]["outcome"] == "duplicate" and rows[2]["reason"].startswith("superseded by the latest")
    report = deadline_report(rows.values(), TEN, WARNING, now)
    # The first request was due 26 days ago; HubSpot first held the opt-out now: missed. The later
    # decision says the same thing, it does not replace the first request (nor its deadline).
    assert [r["line"] for r in report["past"]] == [2], report["counts"]


def test_a_change_made_in_hubspot_after_the_due_time_does_not_excuse_the_missed_opt_out():
    now = parse_iso_utc("2026-12-07T12:00:00Z") or 0.0
    row = {
        "line": "2",
        "outcome": "kept_newer_in_hubspot",
        # Requested (and decided) Nov 2: due Nov 16. HubSpot's SUBSCRIBED dates from Dec 1: the
        # opt-out was never held in those 10 business days; the later change came after the due time.
        "requested_at": "2026-11-02T09:00:00.000Z",
        "confirmed_at": "",
        "reason": "HubSpot's SUBSCRIBED dates from 2026-12-01T09:00:00Z, after the decision at "
        "2026-11-02T09:00:00Z: kept",
    }
    state, due = assess(row, TEN, WARNING, now)
    assert iso_utc(due) == "2026-11-16T09:00:00.000Z"
    assert state is not DeadlineState.SUPERSEDED


# -- 5. deadline specs accepted though they do not say what they seem to --------------------------


def test_a_number_of_seconds_is_not_taken_for_business_days():
    # opt_out_deadline=864000 (10 days in seconds) is read as 864,000 business days (3,300 years);
    # each row's due() then loops ~1.2 million times (0.6 s a row: 100,000 rows take 16 hours, in
    # the batch task, after HubSpot's writes). No law gives more than a few dozen business days.
    with pytest.raises(ValueError, match="deadline"):
        Deadline.parse(864000)
    with pytest.raises(ValueError, match="deadline"):
        Deadline.parse("864000")


@pytest.mark.parametrize("spec", ["P1M", "P1Y", "P1Y2M", "PT", "P2DT"])
def test_ambiguous_or_malformed_iso_durations_are_refused(spec):
    # "P1M" (GDPR's "one month") is made 30 days by pendulum: from Feb 1 that is Mar 3, while the
    # calendar month ends Mar 1: a confirmation on Mar 2 is judged met. "PT" and "P2DT" are no ISO
    # 8601 durations at all (accepted as 0 and 2 days).
    with pytest.raises(ValueError, match="deadline"):
        Deadline.parse(spec)


def test_p1m_is_refused_rather_than_taken_for_30_days():
    # Taken for 30 days, "P1M" from Feb 1 would end on Mar 3, and a confirmation on Mar 2 would be
    # judged met, while a month after Feb 1 is Mar 1.
    with pytest.raises(ValueError, match="months and years are no fixed length"):
        Deadline.parse("P1M")


# -- 6. a request time not read is not "none" -----------------------------------------------------


def test_a_short_csv_row_without_its_requested_at_cell_is_unknown_not_none():
    # The file has a requested_at column; this record stops before it (a spreadsheet row cut short):
    # its request time was not read, which is not the same as "the input does not say".
    source = io.StringIO("email,requested_at\r\nalice@example.com\r\n")
    (record,) = records_from_text(source, "email")
    assert record.address == "alice@example.com"
    assert record.requested is not None and record.requested.startswith("unreadable: ")


def test_requested_at_column_without_a_csv_input_is_refused_not_ignored():
    # requested_at_column set on a one-address-a-line input: silently no request time at all, so an
    # opt_out_deadline reports every row "none".
    with pytest.raises(ValueError, match="requested_at"):
        list(records_from_text(io.StringIO("alice@example.com\n"), None, "requested_at"))


# -- 7. report.html: "names lines, never addresses" -----------------------------------------------


def test_report_html_does_not_copy_an_address_from_hubspot_s_error_text():
    from airflow_provider_hubspot_prefs.ledger.report import problem_rows, render_report_html

    # A failed row's reason is HubSpot's error message, verbatim (runs/classify.py): free text the
    # provider does not control, which may name the contact it refused.
    failed = {
        "line": "4",
        "input": "bob.private@example.org",
        "subscriber_id": "bob.private@example.org",
        "outcome": "failed",
        "reason": "Cannot unsubscribe bob.private@example.org: contact is a test contact",
        "category": "VALIDATION_ERROR",
        "correlation_id": "c-1",
    }
    page = render_report_html(
        "report", {"outcomes": {"failed": 1}, "total_inputs": 1}, problem_rows([failed])
    )
    assert "bob.private@example.org" not in page
