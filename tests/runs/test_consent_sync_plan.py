"""The consent sync's building blocks (issue 13): desired-state rows, and the rule that decides,
row by row, whether HubSpot is written. Pure functions: table tests, no HTTP."""

from __future__ import annotations

import io
import re
import sqlite3
from datetime import datetime, timezone

import pytest

from airflow_provider_hubspot_prefs.client.models import (
    Channel,
    LegalBasis,
    PublicStatus,
    PublicWideStatus,
    StatusState,
    WideStatusType,
)
from airflow_provider_hubspot_prefs.ledger.desired_state import (
    desired_from_csv,
    desired_from_cursor,
    desired_from_json_lines,
    desired_from_mappings,
    desired_status,
)
from airflow_provider_hubspot_prefs.runs.sync_plan import Verdict, decide

DECIDED = "2026-11-20T12:00:00Z"
BEFORE, AFTER = "2026-11-01T08:00:00Z", "2026-11-24T18:30:00Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def row(**changes):
    base = {
        "subscriber_id": "Ann@Example.com",
        "subscription_id": "1001",
        "status": "SUBSCRIBED",
        "legal_basis": "CONSENT_WITH_NOTICE",
        "legal_basis_explanation": "Webinar form, box ticked",
        "decided_at": DECIDED,
    }
    return {**base, **changes}


# ---- desired-state rows ------------------------------------------------------------------------


def test_a_valid_row_is_read_whole():
    d = desired_status(7, row())
    assert (d.line, d.subscriber, d.subscription_id, d.status, d.legal_basis, d.problem) == (
        7,
        "ann@example.com",
        1001,
        "SUBSCRIBED",
        "CONSENT_WITH_NOTICE",
        None,
    )
    assert d.decided_at == at(DECIDED) and d.legal_basis_explanation == "Webinar form, box ticked"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"subscriber_id": "ann.example.com"}, "subscriber_id is not a valid email address: has no '@'"),
        ({"subscriber_id": ""}, "subscriber_id is empty"),
        ({"subscription_id": "abc"}, "subscription_id 'abc' is not a positive whole number"),
        ({"subscription_id": 0}, "subscription_id 0 is not a positive whole number"),
        ({"status": "OPTED_IN"}, "status 'OPTED_IN' is not one of SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED"),
        ({"legal_basis": "CONSENT"}, "legal_basis 'CONSENT' is not one of CONSENT_WITH_NOTICE"),
        ({"legal_basis": ""}, "SUBSCRIBED needs legal_basis and legal_basis_explanation"),
        ({"legal_basis_explanation": " "}, "SUBSCRIBED needs legal_basis and legal_basis_explanation"),
        ({"decided_at": ""}, "decided_at is empty"),
        ({"decided_at": "yesterday"}, "decided_at 'yesterday' is not an ISO 8601"),
        ({"decided_at": "2026-11-20T12:00:00"}, "decided_at 2026-11-20T12:00:00 has no time zone"),
        # pendulum alone reads a time without a date as today's, and drops its zone.
        ({"decided_at": "12:00Z"}, "decided_at '12:00Z' is not an ISO 8601 date and time"),
        (
            {"decided_at": "2026-11-20T12:00:00+23:59"},
            "decided_at 2026-11-20T12:00:00 has an offset no time zone",
        ),
        ({"decided_at": "2026-11-20"}, "decided_at 2026-11-20 is a date without a time and time zone"),
        ({"decided_at": 1763640000000}, "decided_at 1763640000000 is not a plausible time in epoch seconds"),
    ],
)
def test_a_bad_row_is_refused_naming_the_field(changes, problem):
    d = desired_status(3, row(**changes))
    assert d.problem is not None and d.problem.startswith(problem), d.problem
    assert d.line == 3 and d.text  # refused, but kept with its text


def test_unsubscribed_needs_no_legal_basis_and_the_check_can_be_turned_off():
    assert (
        desired_status(1, row(status="unsubscribed", legal_basis="", legal_basis_explanation="")).problem
        is None
    )
    loose = desired_status(1, row(legal_basis=None, legal_basis_explanation=None), require_legal_basis=False)
    assert loose.problem is None and loose.legal_basis is None


def test_rows_from_csv_json_lines_mappings_and_a_sql_cursor_agree():
    rows = [row(), row(subscriber_id="bad"), row(subscriber_id="bo@example.com", status="UNSUBSCRIBED")]
    import csv

    text = io.StringIO()
    csv.writer(text).writerows([list(rows[0]), *[list(r.values()) for r in rows]])
    csv_text = text.getvalue()
    import json

    from_csv = list(desired_from_csv(io.StringIO(csv_text)))
    from_jsonl = list(desired_from_json_lines(io.StringIO("".join(json.dumps(r) + "\n" for r in rows))))
    from_list = list(desired_from_mappings(rows))
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE consent (" + ", ".join(rows[0]) + ")")
    db.executemany("INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?)", [tuple(r.values()) for r in rows])
    cursor = db.execute("SELECT * FROM consent ORDER BY rowid")
    from_sql = list(desired_from_cursor(cursor, batch=2))
    assert [d.line for d in from_csv] == [2, 3, 4]  # the header is line 1
    for source in (from_jsonl, from_list, from_sql):
        assert [d.line for d in source] == [1, 2, 3]
    for a, b, c, d in zip(from_csv, from_jsonl, from_list, from_sql, strict=True):
        assert (a.subscriber, a.status, a.decided_at, bool(a.problem)) == (
            b.subscriber,
            b.status,
            b.decided_at,
            bool(b.problem),
        )
        assert (b.subscriber, b.problem) == (c.subscriber, c.problem) == (d.subscriber, d.problem)


def test_json_lines_refuse_what_is_not_an_object_by_line():
    found = list(desired_from_json_lines(io.StringIO('{"subscriber_id": \n[1, 2]\n\n')))
    assert [(d.line, d.problem.split(" (")[0]) for d in found] == [
        (1, "not JSON"),
        (2, "not a JSON object but list"),
        (3, "empty line"),
    ]


def test_a_csv_without_a_needed_column_is_refused_naming_it():
    with pytest.raises(
        ValueError,
        match=re.escape("lacks the column(s) decided_at (found: subscriber_id, subscription_id, status"),
    ):
        list(desired_from_csv(io.StringIO("subscriber_id,subscription_id,status,legal_basis\n")))


# ---- the rule ----------------------------------------------------------------------------------


def status(state: str, when: str, basis: str | None = None) -> PublicStatus:
    return PublicStatus(
        channel=Channel.EMAIL,
        source="test",
        status=StatusState(state),
        subscriber_id_string="ann@example.com",
        subscription_id=1001,
        timestamp=at(when),
        legal_basis=LegalBasis(basis) if basis else None,
    )


def out_of_all(when: str, state: str = "UNSUBSCRIBED") -> PublicWideStatus:
    return PublicWideStatus(
        channel=Channel.EMAIL,
        status=StatusState(state),
        subscriber_id_string="ann@example.com",
        timestamp=at(when),
        wide_status_type=WideStatusType.PORTAL_WIDE,
    )


NOW = datetime.now(timezone.utc).isoformat()


@pytest.mark.parametrize(
    ("wanted", "current", "wide", "allow", "verdict", "reason"),
    [
        # HubSpot differs, nothing newer: write.
        (
            "SUBSCRIBED",
            status("NOT_SPECIFIED", NOW),
            None,
            False,
            Verdict.WRITE,
            "HubSpot holds NOT_SPECIFIED;",
        ),
        (
            "UNSUBSCRIBED",
            status("SUBSCRIBED", BEFORE),
            None,
            False,
            Verdict.WRITE,
            f"HubSpot holds SUBSCRIBED since {BEFORE}",
        ),
        ("SUBSCRIBED", None, None, False, Verdict.WRITE, "HubSpot holds NOT_SPECIFIED;"),
        # Already so: nothing to write.
        (
            "UNSUBSCRIBED",
            status("UNSUBSCRIBED", BEFORE),
            None,
            False,
            Verdict.IN_SYNC,
            "HubSpot already holds UNSUBSCRIBED since",
        ),
        (
            "SUBSCRIBED",
            status("SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE"),
            None,
            False,
            Verdict.IN_SYNC,
            "HubSpot already",
        ),
        # Same status, other legal basis: the evidence differs, so it is written.
        (
            "SUBSCRIBED",
            status("SUBSCRIBED", BEFORE, "NON_GDPR"),
            None,
            False,
            Verdict.WRITE,
            "HubSpot holds SUBSCRIBED",
        ),
        # The person changed it in HubSpot after the decision: kept, either way.
        (
            "SUBSCRIBED",
            status("UNSUBSCRIBED", AFTER),
            None,
            False,
            Verdict.NEWER_IN_HUBSPOT,
            f"HubSpot's UNSUBSCRIBED dates from {AFTER}, after the decision at {DECIDED}: kept",
        ),
        (
            "UNSUBSCRIBED",
            status("SUBSCRIBED", AFTER),
            None,
            False,
            Verdict.NEWER_IN_HUBSPOT,
            "HubSpot's SUBSCRIBED dates from",
        ),
        # Unsubscribed from all after the decision: a SUBSCRIBED row is kept out even with the opt-in.
        (
            "SUBSCRIBED",
            status("NOT_SPECIFIED", NOW),
            out_of_all(AFTER),
            True,
            Verdict.NEWER_IN_HUBSPOT,
            "the contact unsubscribed from all email at",
        ),
        # Unsubscribed from all before the decision: resubscribing needs the explicit opt-in.
        (
            "SUBSCRIBED",
            status("UNSUBSCRIBED", BEFORE),
            out_of_all(BEFORE),
            False,
            Verdict.NEEDS_OPT_IN,
            "resubscribing needs allow_resubscribe=True",
        ),
        (
            "SUBSCRIBED",
            status("UNSUBSCRIBED", BEFORE),
            out_of_all(BEFORE),
            True,
            Verdict.WRITE,
            "HubSpot holds UNSUBSCRIBED",
        ),
        # An unsubscribe is never held back by an opt-out of all.
        (
            "UNSUBSCRIBED",
            status("SUBSCRIBED", BEFORE),
            out_of_all(AFTER),
            False,
            Verdict.WRITE,
            "HubSpot holds SUBSCRIBED",
        ),
        # A status nobody set is dated with the read's time: that is not "newer".
        (
            "UNSUBSCRIBED",
            status("NOT_SPECIFIED", NOW),
            out_of_all(NOW, "NOT_SPECIFIED"),
            False,
            Verdict.WRITE,
            "HubSpot holds NOT_SPECIFIED;",
        ),
    ],
)
def test_decide(wanted, current, wide, allow, verdict, reason):
    extra = {} if wanted == "SUBSCRIBED" else {"legal_basis": "", "legal_basis_explanation": ""}
    desired = desired_status(1, row(status=wanted, **extra))
    assert desired.problem is None
    decision = decide(desired, current, wide, allow_resubscribe=allow)
    assert decision.verdict is verdict and reason in decision.reason, decision


def test_whole_numbers_from_a_warehouse_are_subscription_ids():
    from decimal import Decimal

    base = {"subscriber_id": "a@example.com", "status": "UNSUBSCRIBED", "decided_at": "2026-11-20T12:00:00Z"}
    for value in (Decimal("1001"), Decimal("1001.000"), 1001.0, "1001"):
        assert desired_status(1, {**base, "subscription_id": value}).subscription_id == 1001
    for value in (Decimal("1001.5"), 1001.5, float("nan"), Decimal("NaN")):
        assert "not a positive whole number" in str(
            desired_status(1, {**base, "subscription_id": value}).problem
        )
