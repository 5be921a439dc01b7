"""Sending a batch's pending inputs in chunks; HubSpot's answers become ledger rows (``classify``).

The state (work store, ledger, checkpoint) belongs to ``airflow_provider_hubspot_prefs.ledger``;
this module knows HubSpot's answers. Nothing here imports Airflow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..client.errors import (
    HubSpotAuthenticationError,
    HubSpotError,
    HubSpotPermissionError,
    HubSpotRateLimitError,
    HubSpotUnreachableError,
)
from ..client.models import OperationResponse
from ..ledger.ingestion import Ingestion
from ..ledger.outcomes import Outcome, Row
from ..ledger.store import StaleTryError, WorkStore
from .classify import Chunk, failed_rows

log = logging.getLogger(__name__)


class BatchAborted(HubSpotError):
    """Sending stopped early (auth lost, scopes missing, daily limit, HubSpot unreachable)."""

    def __init__(self, cause: HubSpotError, remaining: int) -> None:
        self.cause = cause
        self.remaining = remaining
        super().__init__(f"{remaining} input(s) not sent by this try after {cause}")


def is_fatal(error: HubSpotError) -> bool:
    """Errors after which no further chunk can succeed: stop sending instead of failing everything."""
    # A 429 the client gave up on (the daily cap, or a wait longer than its patience) ends this try's
    # budget: sending more chunks would only collect more 429s.
    return isinstance(
        error,
        (HubSpotRateLimitError, HubSpotAuthenticationError, HubSpotPermissionError, HubSpotUnreachableError),
    )


SendChunk = Callable[[Chunk], Awaitable[OperationResponse[Any]]]
ClassifyAnswer = Callable[[Chunk, OperationResponse[Any]], list[Row]]


async def send_pending(
    store: WorkStore,
    send: SendChunk,
    *,
    batch_size: int,
    max_in_flight: int,
    classify_answer: ClassifyAnswer,
    before_send: Callable[[list[int]], None] | None = None,
    after_answer: Callable[[], None] | None = None,
    resumed: bool = False,
    ingestion: Ingestion | None = None,
    after: int = 0,
    through: int | None = None,
    recheck: Callable[[Chunk], Awaitable[Chunk]] | None = None,
) -> None:
    """Send every pending input in chunks, at most ``max_in_flight`` requests at a time.

    ``send(chunk)`` sends the ``(line, address)`` pairs of one chunk; ``classify_answer(chunk,
    answer)`` makes its answer ledger rows (usually ``classify`` with the operation's ``applied``
    and ``unchanged`` outcomes). Only lines after ``after`` (up to ``through``) are sent.

    With ``ingestion`` the input is still being read: it is read on in the same event loop, a
    block between answers, and chunks go out as soon as the lines are read. If the input cannot
    be read further, sending stops, the chunks in flight are recorded, the lines read but not sent
    end (``WorkStore.mark_remaining``), and the reading's error (``InputStopped``) is raised.

    ``recheck(chunk)``, when given, runs right before a chunk is sent: it records the outcome of
    the inputs that no longer need sending and returns those that do (none: nothing is sent). Its
    error is the chunk's: a fatal one stops the sending and leaves the chunk unsent.

    A chunk that fails for good marks its inputs failed with the error's reason. A fatal error
    stops the sending; the remaining inputs are marked not attempted and ``BatchAborted`` raised
    (a chunk that may have been applied when it happened is failed instead, saying so, and so is
    every input an earlier try sent: ``WorkStore.mark_remaining``). An attempt refused whole, or
    never sent, is no send: its inputs keep no first send time of this try.
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
        now: float | None = None  # when this attempt was noted as sent
        try:
            if recheck is not None and not (chunk := await recheck(chunk)):
                return
            now = time.time()
            earlier = store.start_attempt([line for line, _ in chunk], now)
            response = await send(chunk)
            if earlier is not None or resumed:
                # With two tries in flight the first sender is not always the first applier.
                first_sent = min(earlier or now, response.uncertain_since or now)
                response.delivery.mark_uncertain(first_sent)
        except HubSpotError as error:
            if not error.may_have_applied and now is not None:
                # Refused whole, or never sent: this attempt is no send (a row an earlier try sent
                # keeps that try's time, and ends failed if this try does not resend it).
                store.withdraw_attempt([line for line, _ in chunk], now)
            if not is_fatal(error):
                store.record(failed_rows(chunk, error))
            else:
                fatal.append(error)
                if error.may_have_applied:
                    store.record(failed_rows(chunk, error))
                # otherwise the chunk stays pending: nothing is known about it
        else:
            store.record(classify_answer(chunk, response))
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
