"""Export what HubSpot holds for a list of contacts: statuses with timestamps and legal basis."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from .base import HubSpotBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..client.models import BatchStatusesResponse, BatchWideStatusesResponse
    from ..ledger.status_export import ExportWriter
    from ..ledger.store import WorkStore


class HubSpotExportSubscriptionStatusesOperator(HubSpotBaseOperator):
    """Write the communication preferences of a list of contacts to a file, for audits and loads.

    For every distinct valid address of the input (read as the batch operators read theirs:
    ``subscribers`` or ``input_path`` with ``csv_column`` and ``encoding``), the file gets one row
    per subscription of the business unit (status, timestamp, legal basis and its explanation,
    source), one row per unsubscribed-from-all scope, or one ``not_found`` row for an address
    HubSpot does not know (columns: ``ledger.status_export.EXPORT_COLUMNS``). Rows follow the
    input's order. Contacts are read ``batch_size`` at a time (POST /statuses/batch/read and
    /statuses/batch/unsubscribe-all/read), paced by the connection's shared rate budget. The file
    appears whole or not at all; a local file is created ``0600`` (it holds addresses).

    A contact one of HubSpot's two reads did not give (an error for that contact, or an answer
    that left it out) gets an ``error`` row naming what was not read and why, in place of the
    missing rows; the file is still written whole, and the task then fails (a retry reads again)
    unless ``fail_on_read_errors=False``.

    Returns ``{"output_path", "output_format", "contacts", "rows", "not_found", "errors",
    "invalid_input", "duplicate"}``; no address goes to XCom.

    :param output_path: where the export goes: a local path or an object-storage URI (templated).
    :param output_format: ``csv`` or ``jsonl``; default from the path (``.jsonl``/``.ndjson``:
        JSON lines, otherwise CSV).
    :param subscribers: addresses (templated; an XComArg works).
    :param input_path: instead, a file of addresses (templated).
    :param csv_column: read this column of a CSV with a header row.
    :param encoding: the input file's encoding when it is not UTF-8.
    :param batch_size: contacts per read request (at most the API's batch maximum, 100).
    :param max_in_flight: read requests in flight at once.
    :param fail_on_read_errors: fail the task when the file has ``error`` rows (default True).

    See ``HubSpotBaseOperator`` for the connection and business unit parameters.
    """

    template_fields: Sequence[str] = (
        "output_path",
        "subscribers",
        "input_path",
        "csv_column",
        "encoding",
        "business_unit_id",
        "hubspot_conn_id",
        "api_version",
    )

    def __init__(
        self,
        *,
        output_path: str,
        output_format: str | None = None,
        subscribers: Iterable[str] | str | None = None,
        input_path: str | None = None,
        csv_column: str | None = None,
        encoding: str | None = None,
        batch_size: int = 100,
        max_in_flight: int = 4,
        fail_on_read_errors: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_on_read_errors = fail_on_read_errors
        self.output_path = output_path
        self.output_format = output_format
        self.subscribers = subscribers
        self.input_path = input_path
        self.csv_column = csv_column
        self.encoding = encoding
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight

    def execute(self, context: Context) -> Any:
        import uuid

        from ..ledger import Outcome, UnreadableInputError
        from ..ledger.checkpoint import default_work_dir
        from ..ledger.files import write_atomically
        from ..ledger.private_files import UnsafeFolderError
        from ..ledger.status_export import export_writer, format_of
        from ..ledger.store import WorkStore
        from .inputs import input_records

        try:
            output_format = format_of(str(self.output_path), self.output_format)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        self.checked_batch_size(self.batch_size)
        # The input goes through a private work store: de-duplicated without holding it in memory.
        try:
            work = WorkStore(default_work_dir() / f"export-{uuid.uuid4().hex}.sqlite")
        except UnsafeFolderError as exc:
            raise AirflowFailException(str(exc)) from exc
        try:
            records = input_records(self.subscribers, self.input_path, self.csv_column, self.encoding)
            try:
                work.ingest(records)
            except ValueError as exc:  # UnreadableInputError, a CSV column that is not there
                name = self.input_path or "given as a list"
                reason = exc.reason if isinstance(exc, UnreadableInputError) else exc
                raise AirflowFailException(f"Cannot use the input {name}: {reason}") from exc
            counts = work.counts()
            summary: dict[str, Any] = write_atomically(
                self.output_path,
                lambda out: asyncio.run(self._export(work, export_writer(out, output_format))),
            )
        finally:
            work.remove()
        summary.update(
            output_path=str(self.output_path),
            output_format=output_format,
            invalid_input=counts.get(Outcome.INVALID_INPUT.value, 0),
            duplicate=counts.get(Outcome.DUPLICATE.value, 0),
        )
        self.log.info("Exported %s", summary)
        if summary["errors"] and self.fail_on_read_errors:
            raise AirflowException(
                f"The export at {self.output_path} has {summary['errors']} error row(s): HubSpot did not "
                "give some contacts' statuses or opt-outs (each row names what and why). A retry reads "
                "them again; fail_on_read_errors=False accepts the file as it is."
            )
        self.publish_output(context, str(self.output_path), summary)
        return summary

    async def _export(self, work: WorkStore, writer: ExportWriter) -> dict[str, int]:
        from ..client import HubSpotError, HubSpotInputError, HubSpotPermissionError

        client = await self.hook.get_async_conn()
        business_unit = self.resolved_business_unit()
        totals = {"contacts": 0, "rows": 0, "not_found": 0, "errors": 0}

        expected: set[int] = set()

        async def read(chunk: list[str]) -> list[dict[str, Any]]:
            statuses = await client.batch_read_statuses(chunk, business_unit_id=business_unit)
            wide = await client.batch_read_unsubscribe_all(chunk, business_unit_id=business_unit)
            return rows_for(chunk, statuses, wide, expected)

        def write(rows: list[dict[str, Any]]) -> None:
            writer.write(rows)
            totals["rows"] += len(rows)
            totals["not_found"] += sum(1 for r in rows if r["kind"] == "not_found")
            totals["errors"] += sum(1 for r in rows if r["kind"] == "error")

        # Reads overlap, rows are written in the input's order: the oldest read is awaited first.
        reading: deque[asyncio.Task[list[dict[str, Any]]]] = deque()
        try:
            # Every contact HubSpot knows has a status of each active subscription of the unit (one
            # nobody set is NOT_SPECIFIED): one missing from an answer was not read, and says so.
            definitions = await client.get_definitions(business_unit_id=business_unit or 0)
            expected.update(int(d.id) for d in definitions.results if d.is_active and str(d.id).isdigit())
            for chunk in work.pending_chunks(int(self.batch_size)):
                addresses = [address for _, address in chunk]
                totals["contacts"] += len(addresses)
                reading.append(asyncio.create_task(read(addresses)))
                if len(reading) >= int(self.max_in_flight):
                    write(await reading.popleft())
            while reading:
                write(await reading.popleft())
        except (HubSpotInputError, HubSpotPermissionError) as exc:  # a retry would meet the same answer
            raise AirflowFailException(f"Nothing was written: {exc}") from exc
        except HubSpotError as exc:
            raise AirflowException(f"HubSpot did not answer a read; nothing was written: {exc}") from exc
        finally:
            for task in reading:
                task.cancel()
            await asyncio.gather(*reading, return_exceptions=True)
            await client.aclose()
        return totals


def rows_for(
    chunk: list[str],
    statuses: BatchStatusesResponse,
    wide: BatchWideStatusesResponse,
    expected: set[int] | frozenset[int] = frozenset(),
) -> list[dict[str, Any]]:
    """The export rows of ``chunk``'s contacts, in its order, from HubSpot's two batch answers.

    A contact HubSpot has no subscriber for (OBJECT_NOT_FOUND in both answers) is one ``not_found``
    row. A contact one of the reads did not give (a per-contact error, or left out of the answer)
    gets what the other read gave and an ``error`` row saying what is missing, and so does each
    ``expected`` subscription missing from a contact's statuses: never a silent gap.
    """
    from ..ledger.status_export import error_row, not_found_row, subscription_row, unsubscribe_all_row

    status_errors, status_absent = _contact_errors(statuses)
    wide_errors, wide_absent = _contact_errors(wide)
    per_subscription = {r.subscriber_id_string.lower(): r.statuses for r in statuses.results}
    per_scope = {r.subscriber_id_string.lower(): r.wide_statuses for r in wide.results}
    rows: list[dict[str, Any]] = []
    for address in chunk:
        if address in status_absent and address in wide_absent:
            rows.append(not_found_row(address, status_absent[address]))
            continue
        if address in per_subscription:
            ordered = sorted(per_subscription[address], key=lambda s: s.subscription_id)
            rows += [subscription_row(s) for s in ordered]
            given = {s.subscription_id for s in ordered}
            rows += [
                error_row(address, f"subscription {missing}", statuses, None)
                for missing in sorted(expected - given)
            ]
        else:
            rows.append(
                error_row(
                    address, "statuses", statuses, status_errors.get(address) or status_absent.get(address)
                )
            )
        if address in per_scope:
            rows += [unsubscribe_all_row(w) for w in per_scope[address]]
        else:
            rows.append(
                error_row(
                    address, "unsubscribe_all", wide, wide_errors.get(address) or wide_absent.get(address)
                )
            )
    return rows


def _contact_errors(answer: Any) -> tuple[dict[str, str], dict[str, str]]:
    """HubSpot's per-contact errors in a batch read: ``(not read, no such subscriber)``, address ->
    HubSpot's category and message."""
    failed: dict[str, str] = {}
    absent: dict[str, str] = {}
    for error in answer.errors:
        for subscriber in error.subscriber_ids:
            if error.category == "OBJECT_NOT_FOUND":
                absent.setdefault(subscriber.strip().lower(), error.message)
            else:
                failed.setdefault(subscriber.strip().lower(), f"{error.category}: {error.message}")
    return failed, absent
