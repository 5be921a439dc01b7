"""HubSpot's answers to writes, read into ledger rows: one row per input line, never one dropped.

A write's answer is an operation envelope: a ``status`` (CANCELED, PENDING or PROCESSING, or
COMPLETE with results), ``errors`` naming refused contacts, and ``results`` whose shape depends on
the endpoint (``statuses_of``). Whether a NO_STATUS_CHANGE was really this run's change is the
answer's ``delivery`` (see ``delivery.DeliveryRecord``) set against each status's timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..client.errors import HubSpotAPIError, HubSpotError
from ..client.models import (
    OperationResponse,
    OperationStatus,
    PublicBulkOptOutFromAllResponse,
    PublicStatus,
    PublicStatusBulkResponse,
    SetStatusSuccessReason,
    StandardError,
)
from ..ledger.files import attribute
from ..ledger.outcomes import Outcome, Row

# NO_STATUS_CHANGE, but HubSpot's status dates from this input's first send on: another attempt of
# this task run applied it first (an answer that was lost, a killed try, an overlapping try).
LOST_ANSWER_REASON = "changed by an earlier attempt of this request whose answer was lost"

Chunk = list[tuple[int, str]]  # (line, address) of each input sent together


def statuses_of(result: object) -> list[PublicStatus]:
    """The statuses one result reports: a contact's list (batch answers) or the status itself."""
    match result:
        case PublicStatusBulkResponse() | PublicBulkOptOutFromAllResponse():
            return list(result.statuses)
        case PublicStatus():
            return [result]
    raise TypeError(f"not a write result: {type(result).__name__}")


def classify(
    chunk: Chunk,
    response: OperationResponse[Any],
    *,
    applied: Outcome,
    unchanged: Outcome,
    subscription_of: Mapping[int, int] | None = None,
) -> list[Row]:
    """One row per chunk input from a write's answer: applied, unchanged, submitted or failed.

    ``applied`` is the outcome when HubSpot reports a change (UNSUBSCRIBE_FROM_ALL_OCCURRED,
    REQUESTED_CHANGE_OCCURRED, RESUBSCRIBE_OCCURRED); ``unchanged`` when it reports
    NO_STATUS_CHANGE, unless the status is dated from an earlier attempt of this very write whose
    answer was lost: then this run changed it. An input is matched on its address, or with
    ``subscription_of`` (line -> subscription id) on its address and subscription, so that one
    contact may have several inputs in a chunk. Inputs HubSpot does not mention at all are failed,
    never dropped. Every row carries the request's correlation id.
    """
    status, correlation = response.status, response.delivery.correlation_id
    key_of = {line: _key(address, line, subscription_of) for line, address in chunk}
    found = _statuses_by_key(response.results, subscription_of is not None)
    refused = _refusals(response.errors)
    rows: list[Row] = []
    for line, address in chunk:
        error = refused.get(address)
        statuses = found.get(key_of[line])
        if error is not None and (subscription_of is None or statuses is None):
            rows.append(
                Row(line, Outcome.FAILED, error.message, error.category, correlation, error_id=error.id)
            )
        elif status is OperationStatus.CANCELED:
            rows.append(
                Row(
                    line,
                    Outcome.FAILED,
                    "HubSpot canceled the operation",
                    "CANCELED",
                    correlation,
                    status.value,
                )
            )
        elif status in (OperationStatus.PENDING, OperationStatus.PROCESSING):
            rows.append(
                Row(
                    line,
                    Outcome.SUBMITTED,
                    "accepted; HubSpot is still processing",
                    None,
                    correlation,
                    status.value,
                )
            )
        elif statuses is None:
            rows.append(
                Row(
                    line,
                    Outcome.FAILED,
                    "HubSpot returned no result for this input",
                    None,
                    correlation,
                    status.value,
                )
            )
        else:
            outcome, reason = _verdict(statuses, response.delivery.uncertain_since, applied, unchanged)
            rows.append(Row(line, outcome, reason, None, correlation, status.value))
    return rows


def _key(address: str, line: int, subscription_of: Mapping[int, int] | None) -> tuple[str, int | None]:
    return (address, None if subscription_of is None else subscription_of[line])


def _statuses_by_key(
    results: Iterable[object], per_subscription: bool
) -> dict[tuple[str, int | None], list[PublicStatus]]:
    """The statuses reported per key; a contact answered with no status at all is there, empty."""
    found: dict[tuple[str, int | None], list[PublicStatus]] = {}
    for result in results:
        address = str(getattr(result, "subscriber_id_string", "")).lower()
        if not per_subscription:
            found.setdefault((address, None), [])
        for status in statuses_of(result):
            key = (address, status.subscription_id if per_subscription else None)
            found.setdefault(key, []).append(status)
    return found


def _refusals(errors: Iterable[StandardError]) -> dict[str, StandardError]:
    refused: dict[str, StandardError] = {}
    for error in errors:
        for subscriber in error.subscriber_ids:
            refused.setdefault(subscriber.strip().lower(), error)
    return refused


def _verdict(
    statuses: list[PublicStatus], uncertain_since: float | None, applied: Outcome, unchanged: Outcome
) -> tuple[Outcome, str | None]:
    reasons = {s.set_status_success_reason for s in statuses}
    changed = sorted(str(r.value) for r in reasons if r and r is not SetStatusSuccessReason.NO_STATUS_CHANGE)
    if changed or not statuses:  # a contact answered without statuses: the write went through
        return applied, ",".join(changed) or None
    if uncertain_since is not None and any(
        attribute(uncertain_since, s.timestamp.timestamp()) for s in statuses
    ):
        return applied, LOST_ANSWER_REASON
    return unchanged, "NO_STATUS_CHANGE"


def error_source(error: HubSpotError) -> tuple[str | None, str | None]:
    """The ledger's ``category`` and ``correlation_id`` of a failed request."""
    if isinstance(error, HubSpotAPIError):
        return error.category, error.correlation_id
    return type(error).__name__, None


def failed_rows(chunk: Chunk, error: HubSpotError) -> list[Row]:
    """Every input of a chunk whose request failed for good, with the error's reason."""
    category, correlation = error_source(error)
    reason = str(error)
    if error.may_have_applied:
        reason += (
            "; an answer was lost or unreadable, so HubSpot may have applied it: a rerun resends it safely"
        )
    return [Row(line, Outcome.FAILED, reason, category, correlation) for line, _ in chunk]
