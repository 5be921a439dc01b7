"""``runs.classify`` on its own: a table of HubSpot answers and the ledger rows each must give."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_hubspot_prefs.client.delivery import DeliveryRecord
from airflow_provider_hubspot_prefs.client.errors import HubSpotTransportError
from airflow_provider_hubspot_prefs.client.models import (
    BatchUnsubscribeAllResponse,
    BatchWriteResponse,
    StatusesResponse,
    answer_decoder,
)
from airflow_provider_hubspot_prefs.ledger import Outcome
from airflow_provider_hubspot_prefs.runs.classify import (
    LOST_ANSWER_REASON,
    classify,
    failed_rows,
    statuses_of,
)

A, B = "a@example.com", "b@example.com"
SENT = 1_795_507_200.0  # 2026-11-24T08:00:00Z: when the first, unanswered attempt left
AT_SEND = "2026-11-24T08:00:00.500Z"  # a status set right after it
LONG_BEFORE = "2026-11-20T08:00:00.000Z"


def status(address: str, reason: str | None, at: str = AT_SEND, subscription: int = 1001) -> dict[str, Any]:
    item = {
        "channel": "EMAIL",
        "source": "Communication Preferences API",
        "status": "UNSUBSCRIBED",
        "subscriberIdString": address,
        "subscriptionId": subscription,
        "timestamp": at,
    }
    return item if reason is None else {**item, "setStatusSuccessReason": reason}


def envelope(
    model: Any, results: list[Any], state: str = "COMPLETE", errors: list[Any] = (), **delivery: Any
):
    body = {
        "status": state,
        "results": results,
        "errors": list(errors),
        "startedAt": "2026-11-24T08:00:00Z",
        "completedAt": "2026-11-24T08:00:01Z",
    }
    answer = answer_decoder(model).decode(json.dumps(body).encode())
    answer.delivery = DeliveryRecord(correlation_id="corr-1", **delivery)
    return answer


def bulk(address: str, *statuses: dict[str, Any]) -> dict[str, Any]:
    return {"subscriberIdString": address, "statuses": list(statuses)}


REFUSED = {
    "status": "error",
    "category": "VALIDATION_ERROR",
    "message": "Contact is a HubSpot user",
    "id": "err-7",
    "context": {"ids": [A]},
}

# name: (answer, expected (outcome, reason) for A)
CASES = {
    "changed": (
        envelope(BatchUnsubscribeAllResponse, [bulk(A, status(A, "UNSUBSCRIBE_FROM_ALL_OCCURRED"))]),
        (Outcome.UNSUBSCRIBED, "UNSUBSCRIBE_FROM_ALL_OCCURRED"),
    ),
    "already so": (
        envelope(BatchUnsubscribeAllResponse, [bulk(A, status(A, "NO_STATUS_CHANGE", LONG_BEFORE))]),
        (Outcome.ALREADY_UNSUBSCRIBED, "NO_STATUS_CHANGE"),
    ),
    "changed by the attempt whose answer was lost": (
        envelope(BatchUnsubscribeAllResponse, [bulk(A, status(A, "NO_STATUS_CHANGE"))], uncertain_since=SENT),
        (Outcome.UNSUBSCRIBED, LOST_ANSWER_REASON),
    ),
    "already so before the lost attempt": (
        envelope(
            BatchUnsubscribeAllResponse,
            [bulk(A, status(A, "NO_STATUS_CHANGE", LONG_BEFORE))],
            uncertain_since=SENT,
        ),
        (Outcome.ALREADY_UNSUBSCRIBED, "NO_STATUS_CHANGE"),
    ),
    "answered without statuses": (
        envelope(BatchUnsubscribeAllResponse, [bulk(A)]),
        (Outcome.UNSUBSCRIBED, None),
    ),
    "still processing": (
        envelope(BatchUnsubscribeAllResponse, [], state="PENDING"),
        (Outcome.SUBMITTED, "accepted; HubSpot is still processing"),
    ),
    "canceled": (
        envelope(BatchUnsubscribeAllResponse, [], state="CANCELED"),
        (Outcome.FAILED, "HubSpot canceled the operation"),
    ),
    "refused by name": (
        envelope(
            BatchUnsubscribeAllResponse,
            [bulk(B, status(B, "UNSUBSCRIBE_FROM_ALL_OCCURRED"))],
            errors=[REFUSED],
        ),
        (Outcome.FAILED, "Contact is a HubSpot user"),
    ),
    "not mentioned": (
        envelope(BatchUnsubscribeAllResponse, [bulk(B, status(B, "UNSUBSCRIBE_FROM_ALL_OCCURRED"))]),
        (Outcome.FAILED, "HubSpot returned no result for this input"),
    ),
    "a single status, changed": (
        envelope(StatusesResponse, [status(A, "REQUESTED_CHANGE_OCCURRED")]),
        (Outcome.UNSUBSCRIBED, "REQUESTED_CHANGE_OCCURRED"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_an_answer_gives_each_input_its_row(name):
    answer, (outcome, reason) = CASES[name]
    rows = classify(
        [(7, A), (8, B)], answer, applied=Outcome.UNSUBSCRIBED, unchanged=Outcome.ALREADY_UNSUBSCRIBED
    )
    assert [r.line for r in rows] == [7, 8]  # every input, in order, once
    (row,) = [r for r in rows if r.line == 7]
    assert (row.outcome, row.reason, row.correlation_id) == (outcome, reason, "corr-1")
    if name == "refused by name":
        assert (row.category, row.error_id) == ("VALIDATION_ERROR", "err-7")


def test_inputs_of_one_contact_are_told_apart_by_subscription():
    answer = envelope(
        BatchWriteResponse,
        [
            status(A, "REQUESTED_CHANGE_OCCURRED", subscription=1001),
            status(A, "NO_STATUS_CHANGE", LONG_BEFORE, 1004),
        ],
        errors=[{**REFUSED, "context": {"ids": [A]}}],
    )
    rows = classify(
        [(1, A), (2, A), (3, A)],
        answer,
        applied=Outcome.STATUS_SET,
        unchanged=Outcome.ALREADY_IN_STATE,
        subscription_of={1: 1001, 2: 1004, 3: 1002},
    )
    assert [(r.line, r.outcome) for r in rows] == [
        (1, Outcome.STATUS_SET),
        (2, Outcome.ALREADY_IN_STATE),
        (3, Outcome.FAILED),  # HubSpot named the contact and gave no status of 1002
    ]


def test_an_unknown_result_shape_is_an_error_not_a_guess():
    with pytest.raises(TypeError):
        statuses_of({"subscriberIdString": A})


def test_a_request_that_failed_for_good_says_whether_it_may_have_applied():
    error = HubSpotTransportError("RemoteProtocolError", method="POST", endpoint="/statuses/batch/write")
    (plain,) = failed_rows([(1, A)], error)
    error.delivery = DeliveryRecord(uncertain_since=SENT)
    (uncertain,) = failed_rows([(1, A)], error)
    assert "may have applied" not in str(plain.reason) and "may have applied" in str(uncertain.reason)
