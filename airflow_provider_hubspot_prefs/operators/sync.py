"""Mirror a consent table into HubSpot: write only what differs, never undo a newer choice."""

from __future__ import annotations

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
    See ``HubSpotBatchBaseOperator`` (ledger, batching, policy, dry run) and ``HubSpotBaseOperator``.
    """

    template_fields: Sequence[str] = (
        "input_path",
        "rows",
        "conn_id",
        "sql",
        "parameters",
        "ledger_path",
        "business_unit_id",
        "hubspot_conn_id",
        "api_version",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}

    applied_outcome = "status_set"
    unchanged_outcome = "already_in_state"
    plans_in_dry_run = True

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
        self.requests: dict[str, int] = {"read": 0, "write": 0}

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
                key=f"{row.subscriber} {row.subscription_id}" if valid else None,
                decided=row.decided_at.timestamp() if valid and row.decided_at is not None else None,
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
            try:  # a server-side cursor streams (psycopg); other drivers stream from a plain cursor
                cursor = connection.cursor(name="hubspot_prefs_sync")
            except TypeError:
                cursor = connection.cursor()
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
        from ..client.consent_sync import SyncRun, SyncSettings
        from ..ledger import Outcome
        from ..ledger.ingestion import InputStopped

        try:
            self._read_rest(state)  # the latest decision of a repeated row is known only at the end
        except InputStopped as exc:  # nothing was read from HubSpot nor written: say so, then fail
            store.mark_remaining(Outcome.NOT_ATTEMPTED, f"not sent: {exc}")
            raise
        if store.pending_count() == 0:
            return
        settings = SyncSettings(
            business_unit_id=self.resolved_business_unit(),
            batch_size=int(self.batch_size),
            max_in_flight=int(self.max_in_flight),
            # 100 reads a window: seconds between a row's read and its write, and full write batches.
            window=int(self.batch_size) * 100,
            allow_resubscribe=bool(self.allow_resubscribe),
            require_legal_basis=bool(self.require_legal_basis),
            dry_run=bool(self.writes_nothing),
        )
        client = await self.hook.get_async_conn()
        run = SyncRun(
            store,
            client,
            settings,
            before_send=state.before_send,
            after_answer=state.after_answer,
            resumed=state.resumed is not None,
        )
        try:
            await run.run()
        finally:
            self.requests = {"read": run.read_requests, "write": run.write_requests}
            await client.aclose()

    def _summary(self, outcomes: Mapping[str, int], ledger: str) -> dict[str, Any]:
        from ..ledger import Outcome

        summary = super()._summary(outcomes, ledger)
        written = sum(outcomes.get(o.value, 0) for o in (Outcome.STATUS_SET, Outcome.SUBMITTED))
        summary.update(written=0 if self.writes_nothing else written, requests=dict(self.requests))
        self.log.info("HubSpot requests: %(read)d read(s), %(write)d write(s)", self.requests)
        return summary
