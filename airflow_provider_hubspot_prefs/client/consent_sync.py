"""The consent sync's run: read what HubSpot holds, decide each desired row, write only what differs.

The desired rows wait in the work store (``ledger.store``), their input text being the row as JSON.
They are taken a window at a time (a few thousand lines): HubSpot's statuses of the window's
contacts are read in batches, each row is decided (``sync_plan.decide``), the rows that need no
write get their ledger outcome at once, and the rows to write are then sent in full batches through
``batching.send_pending``, with the same send windows, uncertainty and failure handling as every
batch write. A window's writes follow its reads by seconds, so a change made in HubSpot meanwhile
is seen unless it falls in those seconds (HubSpot has no conditional write). Nothing here imports
Airflow.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..ledger.desired_state import DesiredStatus, desired_status
from ..ledger.files import attribute
from ..ledger.outcomes import Outcome, Row
from ..ledger.store import WorkStore
from .batching import BatchAborted, is_fatal, send_pending
from .classify import LOST_ANSWER_REASON, Chunk, classify, error_source
from .errors import HubSpotError
from .models import (
    BatchStatusesResponse,
    BatchWideStatusesResponse,
    OperationResponse,
    PublicStatus,
    PublicWideStatus,
    StatusState,
)
from .sync_plan import Decision, Verdict, decide

log = logging.getLogger(__name__)

# Where each verdict ends when no write is needed.
_SETTLED = {
    Verdict.IN_SYNC: Outcome.ALREADY_IN_STATE,
    Verdict.NEWER_IN_HUBSPOT: Outcome.KEPT_NEWER_IN_HUBSPOT,
    Verdict.NEEDS_OPT_IN: Outcome.NEEDS_OPT_IN,
}


@dataclass
class Holdings:
    """What HubSpot holds for some contacts: each subscription's status, and opt-outs of all email."""

    statuses: dict[tuple[str, int], PublicStatus] = field(default_factory=dict)
    opted_out: dict[str, PublicWideStatus] = field(default_factory=dict)

    def add_statuses(self, answer: BatchStatusesResponse) -> None:
        for result in answer.results:
            for status in result.statuses:
                self.statuses[(result.subscriber_id_string.lower(), status.subscription_id)] = status

    def add_wide(self, answer: BatchWideStatusesResponse) -> None:
        for result in answer.results:
            for wide in result.wide_statuses:
                if wide.status is not StatusState.UNSUBSCRIBED:
                    continue
                address = result.subscriber_id_string.lower()
                known = self.opted_out.get(address)
                if known is None or wide.timestamp > known.timestamp:  # the latest opt-out speaks
                    self.opted_out[address] = wide

    def decide(self, desired: DesiredStatus, *, allow_resubscribe: bool, opt_out_read: bool) -> Decision:
        assert desired.subscriber is not None and desired.subscription_id is not None
        current = self.statuses.get((desired.subscriber, desired.subscription_id))
        opted_out = self.opted_out.get(desired.subscriber) if opt_out_read else None
        return decide(desired, current, opted_out, allow_resubscribe=allow_resubscribe)


def needs_opt_out_read(desired: DesiredStatus, decision: Decision) -> bool:
    """Whether the verdict could change once the contact's opt-out of all email is known."""
    return decision.verdict is Verdict.WRITE and desired.status != StatusState.UNSUBSCRIBED.value


def batches_of_contacts(addresses: Sequence[str], size: int) -> list[list[str]]:
    """Distinct addresses in first-seen order, ``size`` a batch."""
    distinct = list(dict.fromkeys(addresses))
    return [distinct[i : i + size] for i in range(0, len(distinct), size)]


@dataclass
class SyncSettings:
    business_unit_id: int | None
    batch_size: int
    max_in_flight: int
    window: int
    allow_resubscribe: bool
    require_legal_basis: bool
    dry_run: bool


class SyncRun:
    """One try's sync of the pending rows of ``store`` with ``client`` (an async client)."""

    def __init__(
        self,
        store: WorkStore,
        client: Any,
        settings: SyncSettings,
        *,
        before_send: Callable[[list[int]], None] | None = None,
        after_answer: Callable[[], None] | None = None,
        resumed: bool = False,
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.before_send = before_send
        self.after_answer = after_answer
        self.resumed = resumed
        self.read_requests = 0
        self.write_requests = 0

    async def run(self) -> None:
        """Plan and write window after window; ``BatchAborted`` when HubSpot stops answering for good."""
        last = 0
        while rows := self.store.pending_rows(last, self.settings.window):
            through = rows[-1][0]
            plans = await self._plan(rows)
            if self.settings.dry_run:
                self.store.record(
                    Row(line, Outcome.NOT_ATTEMPTED, f"dry run, would write: {decision.reason}")
                    for line, (_, decision) in plans.items()
                )
            elif plans:
                await self._write(plans, after=last, through=through)
            if self.after_answer is not None:
                self.after_answer()
            last = through

    # -- reading and deciding ----------------------------------------------------------------------

    async def _plan(
        self, rows: list[tuple[int, str, str, float | None]]
    ) -> dict[int, tuple[DesiredStatus, Decision]]:
        """Decide every row of a window; record those needing no write; return those to write."""
        desired: dict[int, DesiredStatus] = {}
        first_sent: dict[int, float | None] = {}
        refused: list[Row] = []
        for line, text, _, sent_at in rows:
            row = desired_status(
                line, json.loads(text), require_legal_basis=self.settings.require_legal_basis
            )
            if row.problem is not None:  # a retry given other settings (require_legal_basis)
                refused.append(Row(line, Outcome.INVALID_INPUT, row.problem))
                continue
            desired[line], first_sent[line] = row, sent_at
        self.store.record(refused)
        holdings = Holdings()
        size = self.settings.batch_size
        unread = await self._read(
            batches_of_contacts([d.subscriber or "" for d in desired.values()], size),
            lambda batch: self.client.batch_read_statuses(
                batch, business_unit_id=self.settings.business_unit_id
            ),
            holdings.add_statuses,
        )
        decisions = {
            line: holdings.decide(d, allow_resubscribe=self.settings.allow_resubscribe, opt_out_read=False)
            for line, d in desired.items()
            if d.subscriber not in unread
        }
        wanted = [
            desired[line].subscriber or ""
            for line, dec in decisions.items()
            if needs_opt_out_read(desired[line], dec)
        ]
        unread |= await self._read(
            batches_of_contacts(wanted, size),
            lambda batch: self.client.batch_read_unsubscribe_all(
                batch, business_unit_id=self.settings.business_unit_id
            ),
            holdings.add_wide,
        )
        settled: list[Row] = []
        to_write: dict[int, tuple[DesiredStatus, Decision]] = {}
        for line, d in desired.items():
            if d.subscriber in unread:
                settled.append(unread_row(line, unread[d.subscriber or ""]))
                continue
            decision = decisions[line]
            if needs_opt_out_read(d, decision):  # the verdicts the opt-out was read for, and only those
                decision = holdings.decide(
                    d, allow_resubscribe=self.settings.allow_resubscribe, opt_out_read=True
                )
            if decision.verdict is Verdict.WRITE:
                to_write[line] = (d, decision)
                continue
            current = holdings.statuses.get((d.subscriber or "", d.subscription_id or 0))
            if (
                decision.verdict is Verdict.IN_SYNC
                and first_sent[line] is not None
                and current is not None
                and attribute(first_sent[line], current.timestamp.timestamp())
            ):
                # An earlier attempt of this run wrote it and its answer was lost: this run changed it.
                settled.append(Row(line, Outcome.STATUS_SET, f"{LOST_ANSWER_REASON} ({decision.reason})"))
            else:
                settled.append(Row(line, _SETTLED[decision.verdict], decision.reason))
        self.store.record(settled)
        fatal = next((error for error in unread.values() if is_fatal(error)), None)
        if fatal is not None:  # the rows to write, and every row after the window, stay unsent
            raise BatchAborted(fatal, self.store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {fatal}"))
        return to_write

    async def _read(
        self,
        batches: list[list[str]],
        read: Callable[[list[str]], Any],
        keep: Callable[[Any], None],
    ) -> dict[str, HubSpotError]:
        """Run the reads, ``max_in_flight`` at once; the contacts whose read failed, with the error."""
        slots = asyncio.Semaphore(self.settings.max_in_flight)
        failed: dict[str, HubSpotError] = {}

        async def one(batch: list[str]) -> None:
            async with slots:
                stopped = next((e for e in failed.values() if is_fatal(e)), None)
                if stopped is not None:  # no read after a fatal error: its batch shares that error
                    failed.update(dict.fromkeys(batch, stopped))
                    return
                self.read_requests += 1
                try:
                    keep(await read(batch))
                except HubSpotError as error:
                    failed.update(dict.fromkeys(batch, error))

        await asyncio.gather(*(one(batch) for batch in batches))
        return failed

    # -- writing -------------------------------------------------------------------------------------

    async def _write(
        self, plans: dict[int, tuple[DesiredStatus, Decision]], *, after: int, through: int
    ) -> None:
        from . import status_request

        def send(chunk: Chunk) -> Any:
            self.write_requests += 1
            return self.client.batch_write_statuses(
                [
                    status_request(
                        address,
                        status_state=str(plans[line][0].status),
                        subscription_id=int(plans[line][0].subscription_id or 0),
                        legal_basis=plans[line][0].legal_basis,
                        legal_basis_explanation=plans[line][0].legal_basis_explanation,
                    )
                    for line, address in chunk
                ]
            )

        await send_pending(
            self.store,
            send,
            batch_size=self.settings.batch_size,
            max_in_flight=self.settings.max_in_flight,
            before_send=self.before_send,
            resumed=self.resumed,
            after=after,
            through=through,
            classify_answer=lambda chunk, answer: classify_writes(chunk, answer, plans),
        )


def unread_row(line: int, error: HubSpotError) -> Row:
    """A row whose contact's status could not be read: nothing was written for it. It is failed
    (a retry reads it again), or not attempted when the error stops the whole run."""
    category, correlation = error_source(error)
    outcome = Outcome.NOT_ATTEMPTED if is_fatal(error) else Outcome.FAILED
    return Row(
        line, outcome, f"HubSpot's status was not read, nothing written: {error}", category, correlation
    )


def classify_writes(
    chunk: Chunk, answer: OperationResponse[Any], plans: dict[int, tuple[DesiredStatus, Decision]]
) -> list[Row]:
    """One row per written desired row, matched by contact and subscription (``classify``); the
    reason is HubSpot's answer followed by the plan's (what HubSpot held, since when, and the
    decision's time)."""
    rows = classify(
        chunk,
        answer,
        applied=Outcome.STATUS_SET,
        unchanged=Outcome.ALREADY_IN_STATE,
        subscription_of={line: int(plans[line][0].subscription_id or 0) for line, _ in chunk},
    )
    return [replace(row, reason=_with_plan(row, plans[row.line][1].reason)) for row in rows]


def _with_plan(row: Row, plan: str) -> str:
    if row.outcome in (Outcome.STATUS_SET, Outcome.ALREADY_IN_STATE):
        return f"{row.reason}: {plan}" if row.reason else plan
    return f"{row.reason} (plan: {plan})"
