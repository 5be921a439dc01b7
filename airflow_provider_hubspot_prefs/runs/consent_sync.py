"""The consent sync's run: read what HubSpot holds, decide each desired row, write only what differs.

The desired rows wait in the work store (``ledger.store``), each with its normalized form
(``DesiredStatus.payload``), parsed once when the input was read. A run has three steps:

1. **Subscriptions**: every business unit's definitions are read (``GET /definitions``); a row
   whose subscription is not one of its unit's is refused, naming the id, before anything is sent.
2. **Plan**, a window of rows at a time: HubSpot's statuses of the window's contacts are read in
   batches (per business unit), and, for rows that would subscribe, their opt-outs of all email;
   each row is decided (``sync_plan.decide``), taking the sync's own earlier writes from the
   journal (``ledger.sync_journal``). A row whose state was not read (a failed read, a contact or
   subscription missing from HubSpot's answer, a per-contact error) is never decided: it fails
   with what was not read. Rows needing no write get their outcome; the others are planned.
3. **Write**: ``max_changes`` is checked against the whole plan before the first write; then the
   planned rows are written in full batches through ``batching.send_pending``, each batch's
   contacts read once more just before it is sent (one round trip), so that a change made in
   HubSpot since the plan is seen. The journal gets each batch's intents just before it is sent,
   and HubSpot's answers when the run ends.

Nothing here imports Airflow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..client.errors import HubSpotError
from ..client.models import (
    BatchStatusesResponse,
    BatchWideStatusesResponse,
    OperationResponse,
    PublicStatus,
    PublicWideStatus,
    SetStatusSuccessReason,
    StatusState,
)
from ..ledger.desired_state import DesiredStatus
from ..ledger.files import attribute
from ..ledger.outcomes import Outcome, Row
from ..ledger.store import PendingRow, WorkStore
from ..ledger.sync_journal import JournalEntry, KeyHistory, SyncJournal, journal_key
from .batching import BatchAborted, is_fatal, send_pending
from .classify import LOST_ANSWER_REASON, Chunk, classify, error_source
from .sync_plan import Decision, Verdict, decide

log = logging.getLogger(__name__)

# Where each verdict ends when no write is needed.
_SETTLED = {
    Verdict.IN_SYNC: Outcome.ALREADY_IN_STATE,
    Verdict.NEWER_IN_HUBSPOT: Outcome.KEPT_NEWER_IN_HUBSPOT,
    Verdict.NEEDS_OPT_IN: Outcome.NEEDS_OPT_IN,
}
# A status HubSpot holds that an earlier try of the same task run wrote, its answer recorded.
EARLIER_TRY_REASON = "changed by an earlier try of this task run"
# HubSpot's way of saying, per input of a batch read, that it has no subscriber with that address:
# then nothing was ever set for it, which is known, not unknown.
_NO_SUBSCRIBER = "OBJECT_NOT_FOUND"


@dataclass(frozen=True)
class NotRead:
    """Why a contact's state is not known: the ledger's reason, category and correlation id;
    ``error`` is the failed request's error, which may stop the whole run."""

    reason: str
    category: str | None = None
    correlation_id: str | None = None
    error: HubSpotError | None = None

    def row(self, line: int) -> Row:
        """A row whose state was not read: nothing was written for it. It fails (a retry reads it
        again), or is not attempted when the error stops the whole run (failed all the same if an
        earlier try may have written it: ``WorkStore.record``)."""
        fatal = self.error is not None and is_fatal(self.error)
        outcome = Outcome.NOT_ATTEMPTED if fatal else Outcome.FAILED
        return Row(line, outcome, f"nothing written: {self.reason}", self.category, self.correlation_id)

    @classmethod
    def failed_request(cls, what: str, error: HubSpotError) -> NotRead:
        category, correlation = error_source(error)
        return cls(f"{what} was not read ({error})", category, correlation, error)


@dataclass
class Holdings:
    """What HubSpot was read to hold for some contacts of one business unit (``unit``), and what it
    was not: every question about a contact either has HubSpot's answer or a ``NotRead``."""

    unit: int = 0
    statuses: dict[tuple[str, int], PublicStatus] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)  # contacts HubSpot answered with their statuses
    absent: set[str] = field(default_factory=set)  # HubSpot has no subscriber with that address
    unread: dict[str, NotRead] = field(default_factory=dict)
    wide: dict[str, list[PublicWideStatus]] = field(default_factory=dict)  # opt-out statuses given
    wide_absent: set[str] = field(default_factory=set)
    wide_unread: dict[str, NotRead] = field(default_factory=dict)

    def not_read(self, batch: list[str], problem: NotRead, *, wide: bool) -> None:
        (self.wide_unread if wide else self.unread).update(dict.fromkeys(batch, problem))

    def add_statuses(self, batch: list[str], answer: BatchStatusesResponse) -> None:
        for result in answer.results:
            address = result.subscriber_id_string.strip().lower()
            self.read.add(address)
            for status in result.statuses:
                self.statuses[(address, status.subscription_id)] = status
        _account(batch, self.read, self.absent, self.unread, answer, "HubSpot's statuses")

    def add_wide(self, batch: list[str], answer: BatchWideStatusesResponse) -> None:
        for result in answer.results:
            address = result.subscriber_id_string.strip().lower()
            self.wide.setdefault(address, []).extend(result.wide_statuses)
        _account(
            batch, set(self.wide), self.wide_absent, self.wide_unread, answer, "the opt-out of all email"
        )

    def current(self, desired: DesiredStatus) -> PublicStatus | NotRead | None:
        """HubSpot's status of the row's subscription; None when HubSpot has no such subscriber."""
        address, subscription = desired.subscriber or "", desired.subscription_id or 0
        if address in self.unread:
            return self.unread[address]
        if address in self.absent:
            return None
        found = self.statuses.get((address, subscription))
        if found is None:
            return NotRead(f"HubSpot's answer has no status of subscription {subscription} for this contact")
        if found.timestamp.tzinfo is None:  # its moment is not known: it cannot be weighed
            return NotRead(
                f"HubSpot's status of subscription {subscription} is dated {found.timestamp.isoformat()}, "
                "without a time zone"
            )
        return found

    def opt_out(self, desired: DesiredStatus) -> PublicWideStatus | NotRead | None:
        """The contact's latest opt-out of all email in this unit, None if it has none."""
        address = desired.subscriber or ""
        if address in self.wide_unread:
            return self.wide_unread[address]
        if address in self.wide_absent:
            if address in self.absent:
                return None  # HubSpot has no such subscriber: it opted out of nothing
            # The statuses read found the contact, the opt-out read did not: the answers disagree.
            return NotRead(
                "the opt-out of all email not read: HubSpot found no such subscriber, "
                "though it gave its statuses"
            )
        given = [w for w in self.wide.get(address, []) if w.business_unit_id in (None, self.unit)]
        if not given:
            return NotRead(f"HubSpot's answer gives no opt-out status of business unit {self.unit}")
        if any(w.timestamp.tzinfo is None for w in given):
            return NotRead("HubSpot's opt-out status is dated without a time zone")
        opted_out = [w for w in given if w.status is StatusState.UNSUBSCRIBED]
        return max(opted_out, key=lambda w: w.timestamp) if opted_out else None  # the latest speaks


def _account(
    batch: list[str],
    read: set[str],
    absent: set[str],
    unread: dict[str, NotRead],
    answer: OperationResponse[Any],
    what: str,
) -> None:
    """Every contact of ``batch`` that HubSpot's answer did not give, or gave and also named in an
    error: absent (HubSpot has no such subscriber, and gave nothing for it) or not read, with
    HubSpot's error or the fact that the answer left it out."""
    correlation = answer.delivery.correlation_id
    named: dict[str, NotRead] = {}
    unnamed: NotRead | None = None
    for error in answer.errors:
        why = NotRead(
            f"{what} not read: HubSpot answered {error.category}: {error.message}",
            error.category,
            correlation,
        )
        for subscriber in error.subscriber_ids:
            address = subscriber.strip().lower()
            if error.category == _NO_SUBSCRIBER and address not in read:
                absent.add(address)
            else:  # an error, or "no such subscriber" for a contact it also gave: not known
                named[address] = why
        if not error.subscriber_ids:
            unnamed = why
    for address in batch:
        if address in named:
            unread[address] = named[address]
        elif address not in read and address not in absent:
            unread[address] = unnamed or NotRead(
                f"{what} missing from HubSpot's answer (it named neither a result nor an error "
                "for this contact)",
                None,
                correlation,
            )


def fatal_error(problems: Iterable[NotRead]) -> HubSpotError | None:
    """The first of ``problems`` that stops the whole run (auth, scopes, daily limit, unreachable)."""
    return next((p.error for p in problems if p.error is not None and is_fatal(p.error)), None)


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
    max_changes: int | None = None


class TooManyChanges(Exception):
    """The plan writes more rows than ``max_changes`` allows: nothing was written."""

    def __init__(self, planned: int, earlier: int, limit: int) -> None:
        self.planned, self.earlier, self.limit = planned, earlier, limit
        earlier_text = f" besides {earlier} written by earlier tries of this task run" if earlier else ""
        super().__init__(
            f"the plan writes {planned} row(s){earlier_text}, more than max_changes={limit}; nothing was "
            "written (a snapshot that would change that much is more likely broken than true)"
        )


@dataclass
class _Planned:
    """A row to write: its desired state, why, when this task instance first sent it (if it did)."""

    desired: DesiredStatus
    decision: Decision
    first_sent: float | None


class SyncRun:
    """One try's sync of the pending rows of ``store`` with ``client`` (an async client).

    ``journal`` is the sync journal (loaded); ``task`` names this task instance in it, so that a
    retry knows what an earlier try of the same task run sent, whatever the input's order now.
    """

    def __init__(
        self,
        store: WorkStore,
        client: Any,
        settings: SyncSettings,
        journal: SyncJournal,
        *,
        task: str = "",
        before_send: Callable[[list[int]], None] | None = None,
        after_answer: Callable[[], None] | None = None,
        resumed: bool = False,
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.journal = journal
        self.task = task
        self.before_send = before_send
        self.after_answer = after_answer
        self.resumed = resumed
        self.read_requests = 0  # every read, those of the plan and the re-reads before writes
        self.reread_requests = 0  # the re-reads just before writes
        self.write_requests = 0
        self.planned = 0
        # Per write batch: seconds from its contacts' re-read to HubSpot's answer to the write (the
        # write was applied in between): how long a change made in HubSpot could go unseen.
        self.read_to_write: list[float] = []
        self._results: list[JournalEntry] = []  # HubSpot's answers, for the journal at the end

    async def run(self) -> None:
        """Check the subscriptions, plan every row, then write the plan. ``BatchAborted`` when HubSpot
        stops answering for good; ``TooManyChanges`` when the plan is larger than ``max_changes``."""
        failed = True
        try:
            await self._check_subscriptions()
            await self._plan()
            self.planned = self.store.planned_count()
            if self.settings.dry_run:
                self._mark_planned(lambda why: f"dry run, would write: {why}")
            self._check_max_changes()
            if not self.settings.dry_run:
                await self._write()
            failed = False
        finally:
            try:
                self.journal.append(self._results)
            except Exception:
                if not failed:  # the next run would take these writes for a person's changes: say so
                    raise
                log.exception("The sync journal could not record this try's answers")
            self._results = []

    # -- helpers -------------------------------------------------------------------------------------

    def unit_of(self, desired: DesiredStatus) -> int:
        """The row's business unit: its own, else the operator's or connection's, else the default 0."""
        if desired.business_unit_id is not None:
            return desired.business_unit_id
        return self.settings.business_unit_id or 0

    def _desired(self, row: PendingRow) -> DesiredStatus:
        assert row.payload is not None, f"line {row.line} has no parsed form"
        return DesiredStatus.from_payload(row.line, row.raw, row.payload)

    def _key(self, desired: DesiredStatus) -> str:
        return journal_key(self.unit_of(desired), desired.subscriber or "", desired.subscription_id or 0)

    def _rows_after(self, after: int) -> Iterable[list[PendingRow]]:
        while rows := self.store.pending_rows(after, self.settings.window):
            yield rows
            after = rows[-1].line

    def _stop_if_fatal(self, problems: Iterable[NotRead]) -> None:
        fatal = fatal_error(problems)
        if fatal is not None:  # every row not decided yet stays unsent
            raise BatchAborted(fatal, self.store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {fatal}"))

    # -- 1. the subscriptions of each business unit -----------------------------------------------

    async def _check_subscriptions(self) -> None:
        units = {self.unit_of(self._desired(row)) for rows in self._rows_after(0) for row in rows}
        known: dict[int, set[int] | NotRead] = {}
        for unit in sorted(units):
            self.read_requests += 1
            try:
                answer = await self.client.get_definitions(business_unit_id=unit)
            except HubSpotError as error:
                what = f"the subscriptions of business unit {unit} (GET /definitions)"
                known[unit] = NotRead.failed_request(what, error)
                continue
            known[unit] = {int(d.id) for d in answer.results if str(d.id).isdigit()}
        for rows in self._rows_after(0):
            # The journal says what earlier tries sent before any row ends: one this try stops
            # before writing ends failed if an earlier try may have written it (``WorkStore``).
            desired_rows = {row.line: self._desired(row) for row in rows}
            self._align_first_sent(rows, desired_rows)
            refused: list[Row] = []
            for row in rows:
                desired = desired_rows[row.line]
                unit = self.unit_of(desired)
                subscriptions = known[unit]
                if isinstance(subscriptions, NotRead):
                    refused.append(subscriptions.row(row.line))
                elif desired.subscription_id not in subscriptions:
                    listed = ", ".join(map(str, sorted(subscriptions)[:12])) + (
                        ", ..." if len(subscriptions) > 12 else ""
                    )
                    refused.append(
                        Row(
                            row.line,
                            Outcome.INVALID_INPUT,
                            f"subscription_id {desired.subscription_id} is not a subscription of business "
                            f"unit {unit} (GET /definitions lists {listed or 'none'}); give the row's "
                            "business_unit_id if it belongs to another unit",
                        )
                    )
            self.store.record(refused)
        self._stop_if_fatal(k for k in known.values() if isinstance(k, NotRead))

    # -- 2. the plan ---------------------------------------------------------------------------------

    async def _plan(self) -> None:
        self.store.clear_plans()
        for rows in self._rows_after(0):
            desired = {row.line: self._desired(row) for row in rows}
            # The store's first send times were aligned with the journal by _check_subscriptions.
            first_sent = {row.line: row.sent_at for row in rows}
            settled, to_write, problems = await self._assess(desired, first_sent)
            self.store.record(settled)
            self.store.set_plans((line, plan.decision.reason) for line, plan in to_write.items())
            self._stop_if_fatal(problems)
            if self.after_answer is not None:
                self.after_answer()

    def _align_first_sent(self, rows: list[PendingRow], desired: dict[int, DesiredStatus]) -> None:
        """When this task instance first sent each row in a write that may have been applied. The
        journal decides for every row this task wrote to it (a write HubSpot refused, or one not
        sent after all, counts for nothing), the work store for the others; the store is brought in
        line, so that the plan, the ending of rows and the writes' own attribution (``send_pending``)
        all read the same times from it."""
        histories = self.journal.histories(self._key(d) for d in desired.values())
        corrected: list[tuple[int, float | None]] = []
        for row in rows:
            history = histories[self._key(desired[row.line])]
            first = history.sent_by(self.task) if history.knows(self.task) else row.sent_at
            if first != row.sent_at:
                corrected.append((row.line, first))
        self.store.set_sent(corrected)

    async def _assess(
        self, desired: dict[int, DesiredStatus], first_sent: dict[int, float | None]
    ) -> tuple[list[Row], dict[int, _Planned], list[NotRead]]:
        """Read HubSpot for ``desired`` and decide each row: the rows settled now, the rows to write,
        and what was not read."""
        by_unit: dict[int, dict[int, DesiredStatus]] = {}
        for line, d in desired.items():
            by_unit.setdefault(self.unit_of(d), {})[line] = d
        settled: list[Row] = []
        to_write: dict[int, _Planned] = {}
        problems: list[NotRead] = []
        histories = self.journal.histories(self._key(d) for d in desired.values())
        for unit, rows in by_unit.items():
            holdings = Holdings(unit)
            await self._read(unit, [d.subscriber or "" for d in rows.values()], holdings, wide=False)
            first: dict[int, Decision | NotRead] = {}
            for line, d in rows.items():
                current = holdings.current(d)
                first[line] = (
                    current if isinstance(current, NotRead) else self._decide(d, current, None, histories)
                )
            wanted = [
                rows[line].subscriber or ""
                for line, verdict in first.items()
                if isinstance(verdict, Decision) and needs_opt_out_read(rows[line], verdict)
            ]
            await self._read(unit, wanted, holdings, wide=True)
            for line, d in rows.items():
                verdict = first[line]
                if isinstance(verdict, Decision) and needs_opt_out_read(d, verdict):
                    opt_out = holdings.opt_out(d)
                    current = holdings.current(d)
                    assert not isinstance(current, NotRead)
                    verdict = (
                        opt_out
                        if isinstance(opt_out, NotRead)
                        else self._decide(d, current, opt_out, histories)
                    )
                if isinstance(verdict, NotRead):
                    problems.append(verdict)
                    settled.append(verdict.row(line))
                elif verdict.verdict is Verdict.WRITE:
                    to_write[line] = _Planned(d, verdict, first_sent.get(line))
                else:
                    settled.append(self._settled(line, d, verdict, first_sent.get(line)))
        return settled, to_write, problems

    def _decide(
        self,
        desired: DesiredStatus,
        current: PublicStatus | None,
        opted_out: PublicWideStatus | None,
        histories: dict[str, KeyHistory],
    ) -> Decision:
        written = basis_tried = None
        if current is not None:
            history = histories[self._key(desired)]
            held_at = current.timestamp.timestamp()
            written = history.sync_write(
                current.status.value, held_at, current.source, self.journal.api_sources
            )
            basis = current.legal_basis.value if current.legal_basis else None
            basis_tried = history.basis_attempt(current.status.value, held_at, basis)
        return decide(
            desired,
            current,
            opted_out,
            written=written,
            basis_tried=basis_tried,
            allow_resubscribe=self.settings.allow_resubscribe,
        )

    def _settled(
        self, line: int, desired: DesiredStatus, decision: Decision, first_sent: float | None
    ) -> Row:
        """The outcome of a row that needs no write. HubSpot already holding it was this task run's
        change when its journal says so (an earlier try's answer, or its write whose answer never
        came), or when the status dates from this task's first send of it (a lost answer)."""
        if decision.verdict is Verdict.IN_SYNC:
            mine = decision.written is not None and decision.written.task == self.task
            if mine and decision.written is not None and decision.written.applied:
                return Row(line, Outcome.STATUS_SET, f"{EARLIER_TRY_REASON} ({decision.reason})")
            held_since = decision.held_since
            if mine or (
                first_sent is not None and held_since is not None and attribute(first_sent, held_since)
            ):
                return Row(line, Outcome.STATUS_SET, f"{LOST_ANSWER_REASON} ({decision.reason})")
        return Row(line, _SETTLED[decision.verdict], decision.reason)

    async def _read(self, unit: int, addresses: list[str], holdings: Holdings, *, wide: bool) -> None:
        """Read the statuses (or opt-outs) of ``addresses`` into ``holdings``, ``max_in_flight`` at
        once; a failed request makes each of its contacts not read, with the error."""
        slots = asyncio.Semaphore(self.settings.max_in_flight)
        stopped: list[HubSpotError] = []
        what = "the opt-out of all email" if wide else "HubSpot's statuses"

        async def one(batch: list[str]) -> None:
            async with slots:
                if stopped:  # no read after a fatal error: its batch shares that error
                    holdings.not_read(batch, NotRead.failed_request(what, stopped[0]), wide=wide)
                    return
                self.read_requests += 1
                try:
                    if wide:
                        holdings.add_wide(
                            batch, await self.client.batch_read_unsubscribe_all(batch, business_unit_id=unit)
                        )
                    else:
                        holdings.add_statuses(
                            batch, await self.client.batch_read_statuses(batch, business_unit_id=unit)
                        )
                except HubSpotError as error:
                    if is_fatal(error):
                        stopped.append(error)
                    holdings.not_read(batch, NotRead.failed_request(what, error), wide=wide)

        await asyncio.gather(*(one(b) for b in batches_of_contacts(addresses, self.settings.batch_size)))

    # -- 3. the writes -------------------------------------------------------------------------------

    def _mark_planned(self, reason: Callable[[str], str]) -> None:
        after = 0
        while planned := self.store.planned_rows(after, self.settings.window):
            self.store.record(Row(row.line, Outcome.NOT_ATTEMPTED, reason(why)) for row, why in planned)
            after = planned[-1][0].line

    def _check_max_changes(self) -> None:
        limit = self.settings.max_changes
        if limit is None:
            return
        # What earlier tries of this task run wrote: the journal knows it whatever the input's order
        # now; the work store, what this machine's tries wrote.
        earlier = max(
            self.journal.keys_written_by(self.task),
            self.store.count_with((Outcome.STATUS_SET, Outcome.SUBMITTED)),
        )
        if self.planned + earlier > limit:
            error = TooManyChanges(self.planned, earlier, limit)
            self._mark_planned(lambda why: f"not written: {error} (plan: {why})")  # a dry run marked them
            raise error

    async def _write(self) -> None:
        reads_before = self.read_requests
        try:
            await self._write_groups()
        finally:
            self.reread_requests = self.read_requests - reads_before

    async def _write_groups(self) -> None:
        after = 0
        while group := self.store.planned_rows(after, self.settings.window):
            plans = {
                row.line: _Planned(self._desired(row), Decision(Verdict.WRITE, why), row.sent_at)
                for row, why in group
            }
            await self._write_group(plans, after=after, through=group[-1][0].line)
            after = group[-1][0].line

    async def _write_group(self, plans: dict[int, _Planned], *, after: int, through: int) -> None:
        from ..client import status_request

        reread_at: dict[int, float] = {}

        async def recheck(chunk: Chunk) -> Chunk:
            """Read the chunk's contacts again right before writing: what changed since the plan wins."""
            started = time.monotonic()  # a change made after this moment may go unseen
            desired = {line: plans[line].desired for line, _ in chunk}
            settled, to_write, problems = await self._assess(
                desired, {line: plans[line].first_sent for line, _ in chunk}
            )
            fatal = fatal_error(problems)
            if fatal is not None:
                raise fatal  # the chunk stays unsent; send_pending stops the rest
            self.store.record(settled)
            self._results.extend(  # not sent after all
                self._entry(plans[row.line].desired, row.line, applied=False) for row in settled
            )
            for line, fresh in to_write.items():
                plans[line] = fresh
            # What is about to be sent goes into the journal before it leaves: if the answer is lost
            # or this try dies, the retry and the next runs know these were the sync's.
            sending = time.time()
            self.journal.append(
                [self._entry(p.desired, line, applied=None, at=sending) for line, p in to_write.items()]
            )
            reread_at.update(dict.fromkeys(to_write, started))
            return [(line, address) for line, address in chunk if line in to_write]

        async def send(chunk: Chunk) -> Any:
            self.write_requests += 1
            try:
                return await self.client.batch_write_statuses(
                    [
                        status_request(
                            address,
                            status_state=str(plans[line].desired.status),
                            subscription_id=int(plans[line].desired.subscription_id or 0),
                            legal_basis=plans[line].desired.legal_basis,
                            legal_basis_explanation=plans[line].desired.legal_basis_explanation,
                        )
                        for line, address in chunk
                    ]
                )
            except HubSpotError as error:
                if not error.may_have_applied:  # refused, or never sent: the intents were not applied
                    self._results.extend(
                        self._entry(plans[line].desired, line, applied=False) for line, _ in chunk
                    )
                raise

        def classify_answer(chunk: Chunk, answer: OperationResponse[Any]) -> list[Row]:
            self.read_to_write.append(time.monotonic() - min(reread_at[line] for line, _ in chunk))
            rows = classify_writes(
                chunk, answer, {line: (plans[line].desired, plans[line].decision) for line, _ in chunk}
            )
            self._note_answers(rows, answer, plans)
            return rows

        await send_pending(
            self.store,
            send,
            batch_size=self.settings.batch_size,
            max_in_flight=self.settings.max_in_flight,
            before_send=self.before_send,
            after_answer=self.after_answer,
            resumed=self.resumed,
            after=after,
            through=through,
            recheck=recheck,
            classify_answer=classify_answer,
        )

    def _note_answers(
        self, rows: list[Row], answer: OperationResponse[Any], plans: dict[int, _Planned]
    ) -> None:
        """The journal's record of each written row: what HubSpot's answer shows it holding and
        whether this write changed it, or that HubSpot refused it; a row whose answer is not known
        keeps its intent."""
        held = written_statuses(answer)
        for row in rows:
            desired = plans[row.line].desired
            status = held.get((desired.subscriber or "", desired.subscription_id or 0))
            if row.outcome in (Outcome.STATUS_SET, Outcome.ALREADY_IN_STATE) and status is not None:
                self._results.append(
                    self._entry(
                        desired, row.line, applied=True, status=status, changed=self._changed(row, status)
                    )
                )
            elif row.outcome is Outcome.FAILED and row.category is not None:  # refused or canceled
                self._results.append(self._entry(desired, row.line, applied=False))

    def _changed(self, row: Row, status: PublicStatus) -> bool:
        """Whether this write (or this task's earlier attempt of it) set the status HubSpot holds:
        HubSpot said it changed it, or a NO_STATUS_CHANGE dated from the first send (a lost answer,
        ``classify``) under a source HubSpot gives the sync's own writes."""
        if status.set_status_success_reason not in (None, SetStatusSuccessReason.NO_STATUS_CHANGE):
            return True
        if row.outcome is not Outcome.STATUS_SET:
            return False
        sources = self.journal.api_sources
        return not (status.source and sources and status.source not in sources)

    def _entry(
        self,
        desired: DesiredStatus,
        line: int,
        *,
        applied: bool | None,
        status: PublicStatus | None = None,
        at: float | None = None,
        changed: bool | None = None,
    ) -> JournalEntry:
        assert desired.decided_at is not None and desired.status is not None
        return JournalEntry(
            key=self._key(desired),
            status=status.status.value if status is not None else desired.status,
            decided=desired.decided_at.timestamp(),
            at=time.time() if at is None else at,
            applied=applied,
            timestamp=status.timestamp.timestamp() if status is not None else None,
            source=status.source if status is not None else None,
            basis_sent=desired.legal_basis,
            basis_held=status.legal_basis.value if status is not None and status.legal_basis else None,
            task=self.task,
            line=line,
            changed=changed,
        )


def written_statuses(answer: OperationResponse[Any]) -> dict[tuple[str, int], PublicStatus]:
    """The statuses a batch write's answer reports, by contact and subscription."""
    return {
        (s.subscriber_id_string.strip().lower(), s.subscription_id): s
        for s in answer.results
        if isinstance(s, PublicStatus)
    }


def classify_writes(
    chunk: Chunk, answer: OperationResponse[Any], plans: dict[int, tuple[DesiredStatus, Decision]]
) -> list[Row]:
    """One row per written desired row, matched by contact and subscription (``classify``); the
    reason is HubSpot's answer followed by the plan's (what HubSpot held, since when, and the
    decision's time). A write of a legal basis to a status HubSpot already held says whether
    HubSpot's answer shows the basis stored (``status_set``) or kept its own (``already_in_state``)."""
    rows = classify(
        chunk,
        answer,
        applied=Outcome.STATUS_SET,
        unchanged=Outcome.ALREADY_IN_STATE,
        subscription_of={line: int(plans[line][0].subscription_id or 0) for line, _ in chunk},
    )
    held = written_statuses(answer)
    out = []
    for row in rows:
        desired, decision = plans[row.line]
        status = held.get((desired.subscriber or "", desired.subscription_id or 0))
        if (
            decision.basis_only
            and row.outcome is Outcome.ALREADY_IN_STATE
            and status is not None
            and status.set_status_success_reason is SetStatusSuccessReason.NO_STATUS_CHANGE
        ):
            stored = status.legal_basis is not None and status.legal_basis.value == desired.legal_basis
            kept = status.legal_basis.value if status.legal_basis else "none"
            basis = (
                f"legal basis {desired.legal_basis} recorded with the unchanged status"
                if stored
                else f"HubSpot kept its legal basis {kept}; {desired.legal_basis} was not stored"
            )
            row = replace(
                row,
                outcome=Outcome.STATUS_SET if stored else Outcome.ALREADY_IN_STATE,
                reason=f"{row.reason}, {basis}",
            )
        out.append(replace(row, reason=_with_plan(row, decision.reason)))
    return out


def _with_plan(row: Row, plan: str) -> str:
    if row.outcome in (Outcome.STATUS_SET, Outcome.ALREADY_IN_STATE):
        return f"{row.reason}: {plan}" if row.reason else plan
    return f"{row.reason} (plan: {plan})"
