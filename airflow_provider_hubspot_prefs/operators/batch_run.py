"""The shared body of the batch operators: ingest, send, write the ledger, apply the policy."""

from __future__ import annotations

import asyncio
import csv
import tempfile
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from .base import HubSpotBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..client import AsyncHubSpotPreferencesClient
    from ..client.batching import WorkStore


class HubSpotBatchBaseOperator(HubSpotBaseOperator):
    """Batch behaviour over the work store (``client.batching``); subclasses say what to send.

    :param ledger_path: where the result ledger (CSV, one row per input) is written: a local
        path or an object-storage URI. Default ``$AIRFLOW_HOME/hubspot_prefs/ledgers/<dag>/<run>/<task>.csv``.
    :param batch_size: inputs per request (at most the API's batch maximum, 100 by default).
    :param max_in_flight: requests in flight at once inside the task.
    :param max_failure_ratio: share of sent inputs that may fail before the task fails (0 by default:
        any failure fails the task, after the ledger is written).
    :param fail_on_empty_input: an input without a single address fails the task (default True).
    :param dry_run: validate, de-duplicate and count without sending anything.
    """

    # Ledger outcomes (``client.batching.Outcome`` values) of a change made / already in place.
    applied_outcome = "unsubscribed"
    unchanged_outcome = "already_unsubscribed"

    def __init__(
        self,
        *,
        ledger_path: str | None = None,
        batch_size: int = 100,
        max_in_flight: int = 4,
        max_failure_ratio: float = 0.0,
        fail_on_empty_input: bool = True,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ledger_path = ledger_path
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_failure_ratio = max_failure_ratio
        self.fail_on_empty_input = fail_on_empty_input
        # BaseOperator has a dry_run() method: keep the flag under another attribute name.
        self.is_dry_run = dry_run
        self._work_path: str | None = None
        self._ledger_target: str | None = None

    # -- subclasses -------------------------------------------------------------------------------

    def inputs(self, context: Context) -> Iterable[object]:
        raise NotImplementedError

    def sender(self, client: AsyncHubSpotPreferencesClient) -> Callable[[list[str]], Any]:
        raise NotImplementedError

    def first_line(self) -> int:
        """Number of the first input in the ledger (a fan-out chunk starts where its range starts)."""
        return 1

    def wait_target(self) -> dict[str, Any]:
        """Expectation arguments of the trigger (subscription_id/status_state), {} for unsubscribe-all."""
        return {}

    # -- the run ------------------------------------------------------------------------------------

    def run_batch(self, context: Context) -> dict[str, Any]:
        from .._io import default_ledger_path, work_store_path
        from ..client import HubSpotInputError
        from ..client.batching import BatchAborted, Outcome, WorkStore

        if not 1 <= int(self.batch_size) <= self.hook.max_batch_size:
            raise AirflowFailException(
                f"batch_size must be between 1 and {self.hook.max_batch_size}, not {self.batch_size}"
            )
        ledger = str(self.ledger_path or default_ledger_path(context))
        work = work_store_path(context)
        self._work_path, self._ledger_target = str(work), ledger
        store = WorkStore(work)
        aborted: BatchAborted | None = None
        try:
            if store.ingested:
                self.log.info("Resuming from the checkpoint of an earlier try (%d inputs)", store.total)
            try:
                store.ingest(self.inputs(context), first_line=self.first_line())
            except (HubSpotInputError, FileNotFoundError) as exc:
                raise AirflowFailException(f"Cannot read the input: {exc}") from exc
            if store.total == 0 and self.fail_on_empty_input:
                raise AirflowFailException(
                    "The input holds no address: nothing to do (fail_on_empty_input=True)."
                )
            if self.is_dry_run:
                store.mark_remaining(Outcome.NOT_ATTEMPTED, "dry run: not sent")
            else:
                try:
                    asyncio.run(self._send(store))
                except BatchAborted as exc:
                    aborted = exc
            summary = self._finish(store, ledger)
        finally:
            store.close()
        if aborted is not None:
            raise AirflowException(
                f"Batch stopped: {aborted}. The ledger at {ledger} lists every input's outcome; "
                "a retry of this task run sends only the inputs not done yet."
            )
        self._apply_policy(summary)
        work.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            work.with_name(work.name + suffix).unlink(missing_ok=True)
        if self.wait_for_completion and summary["outcomes"].get("submitted") and not self.is_dry_run:
            return self.wait_or_defer(
                context, result=summary, subscribers_path=summary["pending_path"], **self.wait_target()
            )
        return summary

    async def _send(self, store: WorkStore) -> None:
        from ..client.batching import Outcome, send_pending

        client = await self.hook.get_async_conn()
        try:
            await send_pending(
                store,
                self.sender(client),
                batch_size=int(self.batch_size),
                max_in_flight=int(self.max_in_flight),
                applied=Outcome(self.applied_outcome),
                unchanged=Outcome(self.unchanged_outcome),
            )
        finally:
            await client.aclose()

    def _finish(self, store: WorkStore, ledger: str) -> dict[str, Any]:
        from .._io import open_text
        from ..client.batching import Outcome

        with open_text(ledger, "w") as out:
            rows = store.export(out)
        counts = store.counts()
        pending_path = None
        if counts.get(Outcome.SUBMITTED.value):
            pending_path = ledger + ".pending.txt"
            with open_text(pending_path, "w") as out:
                for address in store.addresses_with([Outcome.SUBMITTED]):
                    out.write(address + "\n")
        sent = rows - counts.get(Outcome.INVALID_INPUT.value, 0) - counts.get(Outcome.DUPLICATE.value, 0)
        summary = {
            "total_inputs": rows,
            "outcomes": counts,
            "failed": counts.get(Outcome.FAILED.value, 0),
            "sent": 0 if self.is_dry_run else sent,
            "ledger_path": ledger,
            "pending_path": pending_path,
            "dry_run": bool(self.is_dry_run),
        }
        self.log.info("Ledger written to %s: %d rows, outcomes %s", ledger, rows, counts)
        if counts.get(Outcome.INVALID_INPUT.value):
            self.log.warning(
                "%d input(s) are not valid addresses and were not sent; see the ledger",
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
        done = super().execute_complete(context, event)
        confirm_submitted(done["ledger_path"], self.applied_outcome)
        outcomes = dict(done["outcomes"])
        outcomes[self.applied_outcome] = outcomes.get(self.applied_outcome, 0) + outcomes.pop("submitted", 0)
        return {**done, "outcomes": outcomes}

    def on_kill(self) -> None:
        """Write the ledger as it stands, so that a killed task still says what was done and what not."""
        if not self._work_path or not self._ledger_target:
            return
        from .._io import open_text
        from ..client.batching import WorkStore

        store = WorkStore(self._work_path)
        try:
            with open_text(self._ledger_target, "w") as out:
                rows = store.export(out)
            self.log.warning(
                "Killed: ledger with %d rows written to %s (unsent inputs say 'pending')",
                rows,
                self._ledger_target,
            )
        finally:
            store.close()


def confirm_submitted(ledger: str, outcome: str) -> int:
    """Rewrite ``submitted`` rows of a ledger once HubSpot confirmed them, streaming through a temp file."""
    from .._io import open_text

    changed = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as tmp:
        with open_text(ledger) as src:
            reader = csv.reader(src)
            writer = csv.writer(tmp)
            header = next(reader)
            writer.writerow(header)
            col, reason, status = (
                header.index("outcome"),
                header.index("reason"),
                header.index("operation_status"),
            )
            for row in reader:
                if row[col] == "submitted":
                    row[col], row[reason], row[status] = outcome, "confirmed COMPLETE by HubSpot", "COMPLETE"
                    changed += 1
                writer.writerow(row)
        tmp.seek(0)
        with open_text(ledger, "w") as dst:
            while block := tmp.read(1 << 16):
                dst.write(block)
    return changed
