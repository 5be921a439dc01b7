"""The shared body of the batch operators: claim the state, send, write the ledger, apply the policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from .base import HubSpotBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..client import AsyncHubSpotPreferencesClient
    from ..ledger import InputRecord
    from ..ledger.checkpoint import BatchState, TaskIdentity
    from ..ledger.deadlines import Deadline
    from ..ledger.store import WorkStore
    from ..runs.final_ledger import LedgerOwner


class HubSpotBatchBaseOperator(HubSpotBaseOperator):
    """Batch behaviour over the ledger package's state; subclasses say what to read and send.

    :param ledger_path: where the result ledger (CSV, one row per input line) is written: a local
        path or an object-storage URI. Default
        ``$AIRFLOW_HOME/hubspot_prefs/ledgers/<dag>/<run>/<task>.csv``. Put it on shared or object
        storage when a retry may run on another worker: its checkpoint lives next to it.
    :param batch_size: inputs per request (at most the API's batch maximum, 100 by default).
    :param max_in_flight: requests in flight at once inside the task.
    :param max_failure_ratio: share of sent inputs that may fail before the task fails (0 by default:
        any failure fails the task, after the ledger is written).
    :param fail_on_empty_input: an input without a single valid address fails the task (default
        True), after the ledger says why each line was refused.
    :param checkpoint_interval: seconds between ledger checkpoints while sending (default 60; 0
        writes the ledger only at the end, on kill and when sending stops).
    :param dry_run: validate, de-duplicate and count without sending anything.
    :param opt_out_deadline: how long an opt-out may take from the person's request to HubSpot
        holding it: business days (``10``, ``"10 business days"``: CAN-SPAM; 15 for CCPA) or a
        duration (``"72h"``, ``"P3D"``, a ``timedelta``). The request time comes from the input's
        ``requested_at`` (see the operator); the summary, the asset event and the ledger's view
        then list the rows past or near it. Default: no deadline.
    :param deadline_warning: how long before the deadline a row counts as near (default
        ``"2 business days"``; same forms).
    :param deadline_timezone: the time zone whose weekdays count as business days (default UTC).
    """

    # Ledger outcomes (``ledger.Outcome`` values) of a change made / already in place.
    applied_outcome = "unsubscribed"
    unchanged_outcome = "already_unsubscribed"
    # A dry run of an operator that plans (the consent sync) still reads HubSpot through ``_send``.
    plans_in_dry_run = False
    # Whether a retry whose input changed since the checkpoint starts over (``BatchState``).
    replans_on_changed_input = False

    def __init__(
        self,
        *,
        ledger_path: str | None = None,
        batch_size: int = 100,
        max_in_flight: int = 4,
        max_failure_ratio: float = 0.0,
        fail_on_empty_input: bool = True,
        checkpoint_interval: float = 60.0,
        dry_run: bool = False,
        opt_out_deadline: int | str | timedelta | None = None,
        deadline_warning: int | str | timedelta = "2 business days",
        deadline_timezone: str = "UTC",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.opt_out_deadline = opt_out_deadline
        self.deadline_warning = deadline_warning
        self.deadline_timezone = deadline_timezone
        self.ledger_path = ledger_path
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_failure_ratio = max_failure_ratio
        self.fail_on_empty_input = fail_on_empty_input
        self.checkpoint_interval = checkpoint_interval
        # BaseOperator has a dry_run() method: keep the flag under another attribute name.
        self.writes_nothing = dry_run
        self._kill_target: tuple[TaskIdentity, str, Path] | None = None
        self._in_on_kill = False  # on_kill is running (a signal handler: a second SIGTERM may re-enter it)

    # -- subclasses -------------------------------------------------------------------------------

    def records(self, context: Context) -> Iterable[InputRecord]:
        """The numbered input records (see ``ledger.inputs``)."""
        raise NotImplementedError

    def sender(self, client: AsyncHubSpotPreferencesClient) -> Callable[[list[tuple[int, str]]], Any]:
        """Sends one chunk of ``(line, address)`` pairs and returns HubSpot's answer (awaitable)."""
        raise NotImplementedError

    def completion_expectation(self) -> dict[str, Any]:
        """Expectation arguments of the trigger (subscription_id/status_state), {} for unsubscribe-all."""
        return {}

    # -- the run ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        return self.run_batch(context)

    def run_batch(self, context: Context) -> dict[str, Any]:
        from ..ledger import Outcome, UnreadableInputError
        from ..ledger.checkpoint import BatchState, CheckpointError
        from ..ledger.ingestion import InputStopped
        from ..ledger.private_files import UnsafeFolderError
        from ..ledger.store import StaleTryError
        from ..runs.batching import BatchAborted
        from .context import default_ledger_path, task_identity

        self.checked_batch_size(self.batch_size)
        deadlines = self.deadlines()  # a deadline that cannot be read fails before anything is sent
        ledger = str(self.ledger_path or default_ledger_path(context))
        identity = task_identity(context)
        state = BatchState(
            identity,
            ledger,
            flush_interval=float(self.checkpoint_interval),
            window_lines=int(self.batch_size) * int(self.max_in_flight) * 10,
            replan_on_change=self.replans_on_changed_input,
        )
        self._kill_target = (identity, ledger, state.work_dir)
        try:
            store = state.open(lambda: self.records(context))
        except (UnreadableInputError, CheckpointError, UnsafeFolderError) as exc:
            state.close()
            raise AirflowFailException(str(exc)) from exc
        except StaleTryError as exc:
            state.close()
            raise AirflowFailException(f"Not writing anything: {exc}") from exc
        except ValueError as exc:  # a CSV column that is not there, an input changed since a checkpoint
            state.close()
            raise AirflowFailException(f"Cannot use the input {self._input_name()}: {exc}") from exc
        self._announce(context, ledger, deadlines)
        if state.resumed == "local":
            self.log.info("Resuming from this worker's work store (%d inputs)", store.total)
        elif state.resumed == "checkpoint":
            self.log.info("Resuming from the checkpoint next to the ledger (%d inputs)", store.total)
        aborted: BatchAborted | None = None
        try:
            if self.writes_nothing and not self.plans_in_dry_run:
                self._read_rest(state)
                store.mark_remaining(Outcome.NOT_ATTEMPTED, "dry run: not sent")
            else:
                try:
                    asyncio.run(self._send(store, state))
                except BatchAborted as exc:
                    aborted = exc
            outcomes = state.finish()  # the ledger first: it is complete a moment after the last answer
            nothing_to_send = self._check_not_empty(outcomes)
            summary = self._summary(outcomes, ledger)
        except StaleTryError as exc:
            state.close()
            raise AirflowFailException(f"Stopped without writing: {exc}") from exc
        except InputStopped as exc:
            rows = self._write_ledger_after_error(state, exc)
            state.close()
            self.index_ledger(context, ledger, deadlines)
            why = exc.cause.reason if isinstance(exc.cause, UnreadableInputError) else exc.cause
            raise AirflowFailException(
                f"Cannot read the input {self._input_name()} after line {exc.read_through}: {why}. "
                f"Nothing after that line was sent; the ledger at {ledger} lists the {rows} line(s) read "
                "and what happened to each."
            ) from exc
        except BaseException as exc:
            try:  # every line gets its row, even if the error came before the input was read to its end
                self._read_rest(state)
            except Exception as unread:
                self.log.warning("The ledger lists only the lines read: %s", unread)
            self._write_ledger_after_error(state, exc)
            state.close()
            self.index_ledger(context, ledger, deadlines)
            raise
        summary.update(self.index_ledger(context, ledger, deadlines))
        if nothing_to_send is not None:
            raise AirflowFailException(nothing_to_send)
        if aborted is not None:
            raise AirflowException(
                f"Batch stopped: {aborted}. The ledger at {ledger} lists every input's outcome; "
                "a retry of this task run sends only the inputs not done yet."
            )
        self.publish_output(context, ledger, summary)
        self._apply_policy(summary)
        if (
            self.wait_for_completion
            and summary["outcomes"].get(Outcome.SUBMITTED.value)
            and not self.writes_nothing
        ):
            return self.wait_or_defer(
                context, result=summary, ledger_path=ledger, **self.completion_expectation()
            )
        return summary

    def deadlines(self) -> tuple[Deadline | None, Deadline]:
        """The opt-out deadline (None: none set) and its warning, or a failure a retry cannot fix."""
        from ..ledger.deadlines import Deadline

        try:
            zone = str(self.deadline_timezone or "UTC")
            warning = Deadline.parse(self.deadline_warning, zone)
            if self.opt_out_deadline in (None, ""):
                return None, warning
            return Deadline.parse(self.opt_out_deadline, zone), warning
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc

    def _owner(self, context: Context) -> LedgerOwner:
        from ..runs.final_ledger import LedgerOwner
        from .context import task_identity

        identity = task_identity(context)
        return LedgerOwner(
            dag_id=identity.dag_id,
            run_id=identity.run_id,
            task_id=identity.task_id,
            map_index=identity.map_index,
            hubspot_conn_id=self.hubspot_conn_id,
            # As given to the task; None: the connection's (the views' live read asks it then). Not
            # resolved here: a dry run, or an input with nothing to send, needs no connection.
            business_unit_id=None if self.business_unit_id in (None, "") else int(self.business_unit_id),
            api_version=self.api_version or None,
        )

    def _announce(self, context: Context, ledger: str, deadlines: tuple[Deadline | None, Deadline]) -> None:
        """The ledger's placeholder in the lookup index, before anything is sent (never fails the task)."""
        from ..runs.final_ledger import announce_ledger

        try:
            announce_ledger(ledger, self._owner(context), *deadlines)
        except Exception as exc:  # the index serves the views; the opt-outs must go out regardless
            self.log.warning("The ledger %s is not announced in the lookup index: %s", ledger, exc)

    def index_ledger(
        self, context: Context, ledger: str, deadlines: tuple[Deadline | None, Deadline]
    ) -> dict[str, Any]:
        """The final ledger's deadline report and lookup-index entry (``runs.final_ledger``), for the
        summary; never raises: the ledger is written, and it is the record."""
        from ..runs.final_ledger import index_final_ledger, report_deadlines

        deadline, warning = deadlines
        try:
            report = report_deadlines(ledger, deadline, warning)
        except Exception as exc:  # the ledger is final and HubSpot's writes are done: say it, go on
            self.log.warning("The deadline report of %s could not be made: %s", ledger, exc)
            report = {"deadlines": {"error": str(exc)}}
        late = report.get("deadlines", {}).get("counts", {})
        if late.get("overdue") or late.get("missed") or late.get("near") or late.get("unknown"):
            self.log.warning(
                "Opt-out deadline (%s): %d overdue, %d missed, %d near, %d with an unreadable "
                "requested_at; the summary lists their lines",
                report["deadlines"]["deadline"],
                late.get("overdue", 0),
                late.get("missed", 0),
                late.get("near", 0),
                late.get("unknown", 0),
            )
        try:
            indexed = index_final_ledger(ledger, self._owner(context), deadline, warning)
        except Exception as exc:
            self.log.warning("The ledger %s is not in the lookup index: %s", ledger, exc)
            indexed = {"index": {"written": False, "why": str(exc)}}
        return {**report, **indexed}

    @staticmethod
    def _read_rest(state: BatchState) -> None:
        if state.ingestion is not None:
            state.ingestion.read_to_end()

    def _write_ledger_after_error(self, state: BatchState, error: BaseException) -> int:
        """Write the final ledger of a try that ends on ``error``: every row still without an outcome
        ends now (``WorkStore.end_unanswered``: ``failed`` if its request was in flight, else
        ``not_attempted``), so that none says ``pending``. Returns its number of rows."""
        try:
            if state.store is not None:
                state.store.end_unanswered(str(error) or type(error).__name__)
            # From the store alone: the signal that ended the try (a timeout) may have cut the spool.
            return state.write_ledger(partial_input=True, spooled=False)
        except Exception:
            self.log.exception("Could not write the ledger after the error below")
            return 0

    def _input_name(self) -> str:
        return str(getattr(self, "input_path", None) or "given as a list")

    def _check_not_empty(self, counts: Mapping[str, int]) -> str | None:
        """Why there is nothing to send, when that should fail the task (after the ledger is written)."""
        from ..ledger import Outcome

        if not self.fail_on_empty_input:
            return None
        total = sum(counts.values())
        if total == 0:
            return (
                f"The input {self._input_name()} holds no line at all: nothing to do "
                "(fail_on_empty_input=True)."
            )
        if counts.get(Outcome.INVALID_INPUT.value, 0) == total:
            return self._nothing_valid(total)
        return None

    def _nothing_valid(self, total: int) -> str:
        return (
            f"None of the {total} line(s) of the input {self._input_name()} is a valid email "
            "address (fail_on_empty_input=True); the ledger gives each line's reason."
        )

    async def _send(self, store: WorkStore, state: BatchState) -> None:
        from ..ledger import Outcome
        from ..runs.batching import send_pending
        from ..runs.classify import classify

        if (state.ingestion is None or state.ingestion.done) and store.pending_count() == 0:
            return  # nothing to send: no connection needed
        client = await self.hook.get_async_conn()
        try:
            await send_pending(
                store,
                self.sender(client),
                batch_size=int(self.batch_size),
                max_in_flight=int(self.max_in_flight),
                classify_answer=partial(
                    classify, applied=Outcome(self.applied_outcome), unchanged=Outcome(self.unchanged_outcome)
                ),
                before_send=state.before_send,
                after_answer=state.after_answer,
                resumed=state.resumed is not None,
                ingestion=state.ingestion,
            )
        finally:
            await client.aclose()

    def _summary(self, outcomes: Mapping[str, int], ledger: str) -> dict[str, Any]:
        from ..ledger import Outcome

        counts = dict(outcomes)
        rows = sum(counts.values())
        sent = rows - counts.get(Outcome.INVALID_INPUT.value, 0) - counts.get(Outcome.DUPLICATE.value, 0)
        summary = {
            "total_inputs": rows,
            "outcomes": counts,
            "failed": counts.get(Outcome.FAILED.value, 0),
            "sent": 0 if self.writes_nothing else sent,
            "ledger_path": ledger,
            "dry_run": bool(self.writes_nothing),
        }
        self.log.info("Ledger written to %s: %d rows, outcomes %s", ledger, rows, counts)
        if counts.get(Outcome.INVALID_INPUT.value):
            self.log.warning(
                "%d input line(s) are not valid addresses and were not sent; see the ledger",
                counts[Outcome.INVALID_INPUT.value],
            )
        return summary

    def _apply_policy(self, summary: dict[str, Any]) -> None:
        failed = summary["failed"]
        if not failed:
            return
        ratio = failed / max(summary["sent"], 1)
        if ratio > float(self.max_failure_ratio):
            raise AirflowException(
                f"{failed} of {summary['sent']} sent input(s) failed ({ratio:.2%} > max_failure_ratio "
                f"{float(self.max_failure_ratio):.2%}). Reasons are in the ledger at "
                f"{summary['ledger_path']}."
            )
        self.log.warning("%d input(s) failed (%.2f%%), within max_failure_ratio", failed, ratio * 100)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from ..ledger import summarize
        from ..ledger.checkpoint import BatchState
        from .context import task_identity

        done = super().execute_complete(context, event)
        ledger = done["ledger_path"]
        BatchState(task_identity(context), ledger).check_still_current()
        self.confirm_ledger(ledger, **self.completion_expectation())
        counted = summarize(ledger)
        result = {**done, "outcomes": counted["outcomes"], "total_inputs": counted["total_inputs"]}
        result.update(self.index_ledger(context, ledger, self.deadlines()))
        self.publish_output(context, ledger, result)
        return result

    def on_kill(self) -> None:
        """Write the ledger as it stands, if this try still owns the state (a stale try only logs).

        Airflow calls this from a SIGTERM handler, on the main thread, wherever that thread was: it
        never raises into the interrupted code, and a second SIGTERM while it runs adds nothing.
        """
        if self._kill_target is None or self._in_on_kill:
            return
        from ..ledger.checkpoint import write_ledger_on_kill

        self._in_on_kill = True
        try:
            self.log.warning("Killed: %s", write_ledger_on_kill(*self._kill_target))
        except Exception:
            self.log.exception("Killed: the ledger could not be written as it stands")
        finally:
            self._in_on_kill = False
