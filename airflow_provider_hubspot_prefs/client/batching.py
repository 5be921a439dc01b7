"""Sending a batch's pending inputs in chunks and classifying HubSpot's answers into ledger rows.

The state (work store, ledger, checkpoint) belongs to ``airflow_provider_hubspot_prefs.ledger``;
this module knows HubSpot's answers. Nothing here imports Airflow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ..ledger.files import attribute
from ..ledger.ingestion import Ingestion
from ..ledger.outcomes import Outcome, Row
from ..ledger.store import StaleTryError, WorkStore
from .errors import (
    HubSpotAPIError,
    HubSpotAuthenticationError,
    HubSpotError,
    HubSpotPermissionError,
    HubSpotRateLimitError,
    HubSpotUnreachableError,
)
from .models import OperationResponse, OperationStatus, SetStatusSuccessReason

log = logging.getLogger(__name__)


class BatchAborted(HubSpotError):
    """Sending stopped early (auth lost, scopes missing, daily limit, HubSpot unreachable)."""

    def __init__(self, cause: HubSpotError, remaining: int) -> None:
        self.cause = cause
        self.remaining = remaining
        super().__init__(f"{remaining} input(s) not attempted after {cause}")


# ---- classification of HubSpot's answers -----------------------------------------------------------

# NO_STATUS_CHANGE, but HubSpot's status dates from this input's first send on: another attempt of
# this task run applied it first (an answer that was lost, a killed try, an overlapping try).
LOST_ANSWER_REASON = "changed by an earlier attempt of this request whose answer was lost"


def _error_rows(
    response: OperationResponse[Any], by_address: dict[str, int], done: set[int]
) -> Iterator[Row]:
    for error in response.errors:
        for subscriber in error.subscriber_ids:
            line = by_address.get(subscriber.strip().lower())
            if line is not None and line not in done:
                done.add(line)
                yield Row(
                    line,
                    Outcome.FAILED,
                    error.message,
                    error.category,
                    response.correlation_id,
                    error_id=error.id,
                )


def classify(
    chunk: list[tuple[int, str]],
    response: OperationResponse[Any],
    *,
    applied: Outcome,
    unchanged: Outcome,
) -> list[Row]:
    """One row per chunk input from a batch answer: applied, unchanged, submitted or failed.

    ``applied`` is the outcome when HubSpot reports a change (UNSUBSCRIBE_FROM_ALL_OCCURRED,
    REQUESTED_CHANGE_OCCURRED, RESUBSCRIBE_OCCURRED); ``unchanged`` when it reports
    NO_STATUS_CHANGE, unless the status is dated from an earlier attempt of this very write whose
    answer was lost (``response.uncertain_since``): then this run changed it. Inputs HubSpot does not
    mention at all are failed, never dropped. Every row carries the request's correlation id.
    """
    by_address = {address: line for line, address in chunk}
    done: set[int] = set()
    rows = list(_error_rows(response, by_address, done))
    status = response.status
    correlation = response.correlation_id

    def rest(outcome: Outcome, reason: str, category: str | None = None) -> list[Row]:
        return [
            Row(line, outcome, reason, category, correlation, status.value)
            for line, _ in chunk
            if line not in done
        ]

    if status is OperationStatus.CANCELED:
        return rows + rest(Outcome.FAILED, "HubSpot canceled the operation", "CANCELED")
    if status in (OperationStatus.PENDING, OperationStatus.PROCESSING):
        return rows + rest(Outcome.SUBMITTED, "accepted; HubSpot is still processing")
    reasons_by_line: dict[int, set[SetStatusSuccessReason | None]] = {}
    changed_by_lost_attempt: set[int] = set()
    since = response.uncertain_since
    for result in response.results:
        # Bulk rows carry ``statuses``; single-contact answers are PublicStatus items themselves.
        line = by_address.get(str(getattr(result, "subscriber_id_string", "")).lower())
        if line is None or line in done:
            continue
        statuses = getattr(result, "statuses", None)
        items = [result] if statuses is None else statuses
        reasons_by_line.setdefault(line, set()).update(
            getattr(item, "set_status_success_reason", None) for item in items
        )
        if since is not None and any(attribute(since, item.timestamp.timestamp()) for item in items):
            changed_by_lost_attempt.add(line)
    for line, reasons in reasons_by_line.items():
        changed = sorted(
            str(r.value) for r in reasons if r and r is not SetStatusSuccessReason.NO_STATUS_CHANGE
        )
        if changed or not reasons:
            reason, outcome = ",".join(changed) or None, applied
        elif line in changed_by_lost_attempt:
            reason, outcome = LOST_ANSWER_REASON, applied
        else:
            reason, outcome = "NO_STATUS_CHANGE", unchanged
        rows.append(Row(line, outcome, reason, None, correlation, status.value))
        done.add(line)
    return rows + rest(Outcome.FAILED, "HubSpot returned no result for this input")


def is_fatal(error: HubSpotError) -> bool:
    """Errors after which no further chunk can succeed: stop sending instead of failing everything."""
    # A 429 the client gave up on (the daily cap, or a wait longer than its patience) ends this try's
    # budget: sending more chunks would only collect more 429s.
    return isinstance(
        error,
        (HubSpotRateLimitError, HubSpotAuthenticationError, HubSpotPermissionError, HubSpotUnreachableError),
    )


def failed_rows(chunk: list[tuple[int, str]], error: HubSpotError) -> list[Row]:
    category = error.category if isinstance(error, HubSpotAPIError) else type(error).__name__
    correlation = error.correlation_id if isinstance(error, HubSpotAPIError) else None
    reason = str(error)
    if error.may_have_applied:
        reason += (
            "; an answer was lost or unreadable, so HubSpot may have applied it: a rerun resends it safely"
        )
    return [Row(line, Outcome.FAILED, reason, category, correlation) for line, _ in chunk]


Chunk = list[tuple[int, str]]  # (line, address) of each input sent together
SendChunk = Callable[[Chunk], Awaitable[OperationResponse[Any]]]
ClassifyAnswer = Callable[[Chunk, OperationResponse[Any]], list[Row]]


async def send_pending(
    store: WorkStore,
    send: SendChunk,
    *,
    batch_size: int,
    max_in_flight: int,
    applied: Outcome,
    unchanged: Outcome,
    before_send: Callable[[list[int]], None] | None = None,
    after_answer: Callable[[], None] | None = None,
    resumed: bool = False,
    ingestion: Ingestion | None = None,
    after: int = 0,
    through: int | None = None,
    classify_answer: ClassifyAnswer | None = None,
) -> None:
    """Send every pending input in chunks, at most ``max_in_flight`` requests at a time.

    ``send(chunk)`` sends the ``(line, address)`` pairs of one chunk; its answer becomes ledger
    rows by ``classify`` (with ``applied`` and ``unchanged``), or by ``classify_answer`` when the
    sender's answers need their own reading. Only lines after ``after`` (up to ``through``) are sent.

    With ``ingestion`` the input is still being read: it is read on in the same event loop, a
    block between answers, and chunks go out as soon as the lines are read. If the input cannot
    be read further, sending stops, the chunks in flight are recorded, the lines read but not sent
    are marked not attempted, and the reading's error (``InputStopped``) is raised.

    A chunk that fails for good marks its inputs failed with the error's reason. A fatal error
    stops the sending; the remaining inputs are marked not attempted and ``BatchAborted`` raised
    (a chunk that may have been applied when it happened is failed instead, saying so).
    ``before_send(lines)`` runs before each chunk goes out and may raise ``StaleTryError`` to stop
    everything; ``after_answer()`` runs after each chunk's rows are recorded.

    HubSpot's NO_STATUS_CHANGE is taken at its word unless another attempt of this task run may
    have applied the change first: an answer was lost, an earlier try sent the input, or
    ``resumed`` (an earlier try, which may still be running, left this state). Then HubSpot's
    status timestamp against the input's first send decides.
    """
    slots = asyncio.Semaphore(max_in_flight)
    running: set[asyncio.Task[None]] = set()
    fatal: list[HubSpotError] = []
    stale: list[StaleTryError] = []

    async def one(chunk: list[tuple[int, str]]) -> None:
        try:
            now = time.time()
            earlier = store.start_attempt([line for line, _ in chunk], now)
            response = await send(chunk)
            if earlier is not None or resumed:
                # With two tries in flight the first sender is not always the first applier.
                first_sent = min(earlier or now, response.uncertain_since or now)
                response.delivery.mark_uncertain(first_sent)
        except HubSpotError as error:
            if not is_fatal(error):
                store.record(failed_rows(chunk, error))
            else:
                fatal.append(error)
                if error.may_have_applied:
                    store.record(failed_rows(chunk, error))
                # otherwise the chunk stays pending: nothing is known about it
        else:
            if classify_answer is not None:
                store.record(classify_answer(chunk, response))
            else:
                store.record(classify(chunk, response, applied=applied, unchanged=unchanged))
        finally:
            slots.release()
        if after_answer is not None:
            after_answer()

    async def guarded(chunk: list[tuple[int, str]]) -> None:
        try:
            await one(chunk)
        except StaleTryError as exc:  # a newer try owns the state: record nothing more, stop
            stale.append(exc)

    unread: list[Exception] = []  # why the input could not be read to its end (InputStopped)
    read_more = asyncio.Event()

    async def read_input() -> None:
        assert ingestion is not None
        try:
            while ingestion.step():
                read_more.set()
                await asyncio.sleep(0)  # the answers in between are handled before the next block
        except Exception as exc:
            unread.append(exc)
        finally:
            read_more.set()

    async def chunks() -> AsyncIterator[list[tuple[int, str]]]:
        last = after
        while not unread:
            everything_read = ingestion is None or ingestion.done
            upto = through if everything_read else store.read_through
            chunk = store.next_pending(last, batch_size, upto)
            if not everything_read and len(chunk) < batch_size:
                read_more.clear()
                await read_more.wait()
                continue
            if not chunk:
                return
            last = chunk[-1][0]
            yield chunk

    reader = None if ingestion is None or ingestion.done else asyncio.create_task(read_input())
    async for chunk in chunks():
        await slots.acquire()
        if fatal or stale or unread:
            slots.release()
            break
        if before_send is not None:
            try:
                before_send([line for line, _ in chunk])
            except StaleTryError as exc:
                stale.append(exc)
                slots.release()
                break
        task = asyncio.create_task(guarded(chunk))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*running)
    if reader is not None:
        if stale:
            reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    if stale:
        raise stale[0]
    if unread:
        store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {unread[0]}")
        raise unread[0]
    if fatal:
        remaining = store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {fatal[0]}")
        raise BatchAborted(fatal[0], remaining)
