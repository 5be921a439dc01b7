"""Mirror a consent table into HubSpot: write only what differs, never undo a newer choice."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException

from .batch_run import HubSpotBatchBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..ledger import InputRecord
    from ..ledger.checkpoint import BatchState
    from ..ledger.desired_state import DesiredStatus
    from ..ledger.store import WorkStore


class HubSpotSyncSubscriptionStatusesOperator(HubSpotBatchBaseOperator):
    """Make HubSpot's subscription statuses match a desired state, row by row, truthfully.

    Each desired row says what a person decided about one subscription: ``subscriber_id`` (the
    address), ``subscription_id``, ``status`` (SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED),
    ``legal_basis``, ``legal_basis_explanation`` and ``decided_at`` (when they decided, with a time
    zone). Rows come from one of: a CSV (header naming the columns) or JSON-lines file at
    ``input_path`` (local or object storage), a list of mappings in ``rows`` (an XComArg works), or
    the query ``sql`` run on the Airflow connection ``conn_id`` (any database with a common SQL
    hook; fetched ``1000`` rows at a time, on a server-side cursor where the driver has one).

    HubSpot's current statuses are read in batches; a row is written only when HubSpot differs
    and holds nothing newer than its ``decided_at``: a status changed in HubSpot after the
    decision, or an opt-out of all email after it, is kept (ledger outcome
    ``kept_newer_in_hubspot``, with both times). Resubscribing a contact who opted out of all email
    needs ``allow_resubscribe=True`` (else ``needs_opt_in``). Several rows for the same contact and
    subscription: the latest decision is used, the others are ``duplicate`` naming it.

    The ledger (one row per input row; ``input`` is the row as JSON) has the batch operators'
    outcomes plus ``already_in_state`` (HubSpot already matched), ``kept_newer_in_hubspot`` and
    ``needs_opt_in``; resume, checkpoints, redaction, the shared rate budget and
    ``max_failure_ratio`` work as for the batch operators. ``dry_run=True`` reads HubSpot and writes
    the plan: rows that would be written are ``not_attempted`` with ``dry run, would write: ...``.
    A row HubSpot answers PENDING stays ``submitted``: the next sync confirms it.

    :param input_path: a CSV or JSON-lines file of desired rows (templated).
    :param input_format: ``csv`` or ``jsonl``; default from the path (``.jsonl``/``.ndjson``: JSON lines).
    :param encoding: the file's encoding when it is not UTF-8.
    :param rows: instead, desired rows as mappings (templated).
    :param conn_id: instead, an Airflow database connection to run ``sql`` on.
    :param sql: the query returning the desired rows, with the column names above (templated;
        ``.sql`` files are read).
    :param parameters: parameters of ``sql``.
    :param require_legal_basis: refuse SUBSCRIBED rows without a legal basis and its explanation,
        before anything is sent (default True).
    :param allow_resubscribe: write SUBSCRIBED for contacts who opted out of all email (default False).
    :param max_changes: the most rows one task run may write (templated); a larger plan fails the task before
        its first write (every planned row ``not_attempted``), without retrying (default: no limit).
        Counted over the whole input, with what earlier tries of the same run already wrote.
    :param journal_path: the folder of the sync journal: what the sync wrote, for which decision,
        so that a later run tells its own writes from a person's change (local path or
        object-storage URI; templated). Default
        ``$AIRFLOW_HOME/hubspot_prefs/sync_journal/<hubspot_conn_id>``; give every sync of a
        portal (and its dry-run plan) the same one, on storage every worker sees.

    See ``HubSpotBatchBaseOperator`` (ledger, batching, policy, dry run) and ``HubSpotBaseOperator``.
    """

    template_fields: Sequence[str] = (
        "input_path",
        "rows",
        "conn_id",
        "sql",
        "parameters",
        "ledger_path",
        "opt_out_deadline",
        "deadline_warning",
        "deadline_timezone",
        "journal_path",
        "max_changes",
        "business_unit_id",
        "hubspot_conn_id",
        "api_version",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}

    applied_outcome = "status_set"
    unchanged_outcome = "already_in_state"
    plans_in_dry_run = True
    # Every row is decided afresh from what HubSpot holds: a retry whose input changed starts over.
    replans_on_changed_input = True

    def __init__(
        self,
        *,
        input_path: str | None = None,
        input_format: str | None = None,
        encoding: str | None = None,
        rows: Sequence[Mapping[str, Any]] | None = None,
        conn_id: str | None = None,
        sql: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        require_legal_basis: bool = True,
        allow_resubscribe: bool = False,
        max_changes: int | str | None = None,
        journal_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("wait_for_completion"):
            raise ValueError(
                "HubSpotSyncSubscriptionStatusesOperator does not wait: HubSpot answers writes COMPLETE, "
                "and a row it left submitted is confirmed by the next sync."
            )
        super().__init__(**kwargs)
        self.input_path = input_path
        self.input_format = input_format
        self.encoding = encoding
        self.rows = rows
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = parameters
        self.require_legal_basis = require_legal_basis
        self.allow_resubscribe = allow_resubscribe
        self.max_changes = max_changes
        self.journal_path = journal_path
        self.requests: dict[str, int] = {"read": 0, "reread_before_write": 0, "write": 0}
        self.planned = 0
        self.read_to_write: float | None = None

    # -- the desired rows ---------------------------------------------------------------------------

    def records(self, context: Context) -> Iterator[InputRecord]:
        from ..ledger import InputRecord

        for row in self._desired_rows():
            valid = row.problem is None and row.decided_at is not None
            yield InputRecord(
                row.line,
                row.text,
                row.subscriber if valid else None,
                row.problem,
                # A refused row with a readable contact and subscription keeps its key and the
                # latest time it can have been decided: if that is the latest, nothing is written.
                key=row.key,
                decided=row.decided,
                payload=row.payload() if valid else None,
                requested=row.requested,
            )

    def _desired_rows(self) -> Iterator[DesiredStatus]:
        from ..ledger.desired_state import desired_from_csv, desired_from_json_lines, desired_from_mappings
        from ..ledger.inputs import open_input

        given = [
            name
            for name, value in (("input_path", self.input_path), ("rows", self.rows), ("sql", self.sql))
            if value not in (None, "")
        ]
        if len(given) != 1:
            raise AirflowFailException(
                "Give the desired state as exactly one of input_path, rows, or conn_id with sql "
                f"(given: {', '.join(given) or 'none'})."
            )
        check = bool(self.require_legal_basis)
        if self.rows is not None:
            yield from desired_from_mappings(self.rows, require_legal_basis=check)
        elif self.sql:
            yield from self._query_rows(check)
        else:
            path = str(self.input_path)
            kind = (
                self.input_format or ("jsonl" if path.lower().endswith((".jsonl", ".ndjson")) else "csv")
            ).lower()
            if kind not in ("csv", "jsonl"):
                raise AirflowFailException(f"input_format must be csv or jsonl, not {self.input_format!r}")
            read = desired_from_json_lines if kind == "jsonl" else desired_from_csv
            with open_input(path, self.encoding or None) as stream:
                yield from read(stream, require_legal_basis=check)

    def _query_rows(self, check: bool) -> Iterator[DesiredStatus]:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        from ..ledger.desired_state import desired_from_cursor

        if not self.conn_id:
            raise AirflowFailException("sql needs conn_id: the database connection to run it on.")
        hook = BaseHook.get_connection(str(self.conn_id)).get_hook()
        if not isinstance(hook, DbApiHook):
            raise AirflowFailException(
                f"Connection {self.conn_id} is not a database (its hook is {type(hook).__name__})."
            )
        connection = hook.get_conn()
        try:
            cursor = streaming_cursor(connection)
            try:
                if self.parameters is None:
                    cursor.execute(str(self.sql))
                else:
                    cursor.execute(str(self.sql), self.parameters)
                yield from desired_from_cursor(cursor, require_legal_basis=check)
            finally:
                cursor.close()
        finally:
            connection.close()

    def _input_name(self) -> str:
        if self.sql:
            return f"query on {self.conn_id}"
        return str(self.input_path or "given as rows")

    # -- the run ---------------------------------------------------------------------------------------

    async def _send(self, store: WorkStore, state: BatchState) -> None:
        from ..ledger import Outcome
        from ..ledger.ingestion import InputStopped
        from ..ledger.sync_journal import JournalError, SyncJournal
        from ..runs.consent_sync import SyncRun, SyncSettings, TooManyChanges

        try:
            self._read_rest(state)  # the latest decision of a repeated row is known only at the end
        except InputStopped as exc:  # nothing was read from HubSpot nor written: say so, then fail
            store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {exc}")
            raise
        if store.pending_count() == 0:
            return
        if state.replanned is not None:
            self.log.warning(
                "The input changed since the last try; every row is planned again: %s", state.replanned
            )
        settings = SyncSettings(
            business_unit_id=self.resolved_business_unit(),
            batch_size=int(self.batch_size),
            max_in_flight=int(self.max_in_flight),
            window=int(self.batch_size) * 100,
            allow_resubscribe=bool(self.allow_resubscribe),
            require_legal_basis=bool(self.require_legal_basis),
            dry_run=bool(self.writes_nothing),
            max_changes=None if self.max_changes in (None, "") else int(self.max_changes),
        )
        try:
            location = self._journal_location()
        except AirflowFailException as exc:
            store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {exc}")
            raise
        journal = SyncJournal(location, state.work_path.with_suffix(".journal.sqlite"))
        try:
            try:
                entries = journal.load()
                if not self.writes_nothing:
                    journal.fold(time.time())
            except (JournalError, OSError) as exc:
                store.mark_remaining(
                    Outcome.NOT_ATTEMPTED, f"not sent: the sync journal cannot be read: {exc}"
                )
                raise AirflowFailException(f"Cannot read the sync journal {journal.location}: {exc}") from exc
            self.log.info("Sync journal %s: %d entries", journal.location, entries)
            if not journal.found:
                self.log.warning(
                    "The sync journal %s does not exist yet: this is its first run, or it was moved or "
                    "lost. Statuses the sync wrote before cannot be told from a person's change, so a "
                    "decision older than such a write is kept out, not written.",
                    journal.location,
                )
            client = await self.hook.get_async_conn()
            run = SyncRun(
                store,
                client,
                settings,
                journal,
                task=state.identity.key,
                before_send=state.before_send,
                after_answer=state.after_answer,
                resumed=state.resumed is not None,
            )
            try:
                await run.run()
            except TooManyChanges as exc:
                raise AirflowFailException(f"Not written: {exc}. The ledger lists the plan.") from exc
            finally:
                self.requests = {
                    "read": run.read_requests,
                    "reread_before_write": run.reread_requests,
                    "write": run.write_requests,
                }
                self.planned = run.planned
                self.read_to_write = max(run.read_to_write, default=None)
                await client.aclose()
        finally:
            journal.close()

    def _journal_location(self) -> str:
        """``journal_path``, or the default folder in ``$AIRFLOW_HOME`` where every try sees it: on a
        LocalExecutor only. Elsewhere each worker would keep a journal of its own, and a run on
        another one would take the sync's earlier writes for a person's changes."""
        if self.journal_path:
            return str(self.journal_path)
        from airflow.sdk import conf

        from .context import airflow_home, safe_segment

        configured = str(conf.get("core", "executor", fallback="LocalExecutor") or "LocalExecutor")
        executor = str(getattr(self, "executor", None) or configured.split(",")[0])
        if executor.strip().rsplit(":", 1)[-1].rsplit(".", 1)[-1] != "LocalExecutor":
            raise AirflowFailException(
                f"journal_path is needed with {executor}: the sync journal (what the sync wrote, so "
                "that a later run tells its own writes from a person's change) must be on storage "
                "every worker sees, e.g. journal_path='s3://compliance/consent-sync/journal'."
            )

        return str(airflow_home() / "hubspot_prefs" / "sync_journal" / safe_segment(self.hubspot_conn_id))

    def _nothing_valid(self, total: int) -> str:
        return (
            f"None of the {total} row(s) of the desired state {self._input_name()} can be synced "
            "(fail_on_empty_input=True): each was refused before anything was sent; the ledger gives "
            "each row's reason."
        )

    def _summary(self, outcomes: Mapping[str, int], ledger: str) -> dict[str, Any]:
        from ..ledger import Outcome

        summary = super()._summary(outcomes, ledger)
        written = sum(outcomes.get(o.value, 0) for o in (Outcome.STATUS_SET, Outcome.SUBMITTED))
        summary.update(
            written=0 if self.writes_nothing else written,
            planned=self.planned,
            requests=dict(self.requests),
            # The longest a change made in HubSpot could go unseen: from a write batch's re-read to
            # HubSpot's answer to the write (None: nothing was written).
            max_read_to_write_seconds=None if self.read_to_write is None else round(self.read_to_write, 3),
        )
        self.log.info(
            "HubSpot requests: %(read)d read(s) (%(reread_before_write)d just before writing), "
            "%(write)d write(s)",
            self.requests,
        )
        return summary


def streaming_cursor(connection: Any) -> Any:
    """A cursor that fetches rows as they are asked for, not the whole answer at once.

    PostgreSQL (psycopg2) streams through a named, server-side cursor; MySQL's mysqlclient and
    PyMySQL buffer the whole answer in a plain cursor and stream with their ``SSCursor``; other
    drivers (SQLite, mysql-connector, Snowflake, ...) stream from a plain cursor.
    """
    driver = type(connection).__module__.split(".")[0]
    if driver in ("MySQLdb", "pymysql"):
        import importlib

        return connection.cursor(importlib.import_module(f"{driver}.cursors").SSCursor)
    try:
        return connection.cursor(name="hubspot_prefs_sync")
    except TypeError:
        return connection.cursor()
