"""Wait until HubSpot reports the operation COMPLETE and the contacts are in the expected state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..hooks.hubspot_prefs import HubSpotPreferencesHook
    from ..runs.verification import CheckResult


class HubSpotOperationStatusSensor(BaseSensorOperator):
    """Poll HubSpot until the contacts reached the state a write asked for.

    By default it waits until every contact is unsubscribed from all email (portal-wide, or in
    ``business_unit_id``); with ``subscription_id`` and ``status_state`` it waits for that
    subscription status instead. It succeeds only when the reads report the operation COMPLETE;
    CANCELED fails the task at once, naming the contacts; a timeout says what is still pending.

    :param subscriber_ids: an address or a list of addresses (templated; an XComArg works).
    :param subscribers_path: instead, a file of addresses, one a line (local path or URI); an
        empty string means there is nothing to wait for.
    :param ledger_path: instead, a batch operator's ledger (templated, e.g. from its XCom): the
        sensor waits for its ``submitted`` rows and, once HubSpot reports them COMPLETE, rewrites
        them with their real outcome (changed by the run, or already so before it, told apart by
        HubSpot's status timestamps against each row's first send).
    :param subscription_id: subscription to check (with ``status_state``).
    :param status_state: SUBSCRIBED, UNSUBSCRIBED or NOT_SPECIFIED (with ``subscription_id``).
    :param business_unit_id: business unit of the reads; default the connection's.
    :param hubspot_conn_id: the ``hubspot_prefs`` connection.
    :param api_version: overrides the connection's API version.
    :param deferrable: wait in the triggerer instead of holding a worker slot; default
        ``[operators] default_deferrable``.
    :param redact_emails: redact addresses in log lines and messages (default True).
    """

    template_fields: Sequence[str] = (
        "subscriber_ids",
        "subscribers_path",
        "ledger_path",
        "subscription_id",
        "status_state",
        "business_unit_id",
        "hubspot_conn_id",
        "api_version",
    )

    def __init__(
        self,
        *,
        subscriber_ids: str | list[str] | None = None,
        subscribers_path: str | None = None,
        ledger_path: str | None = None,
        subscription_id: int | None = None,
        status_state: str | None = None,
        business_unit_id: int | None = None,
        hubspot_conn_id: str = "hubspot_prefs_default",
        api_version: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        redact_emails: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.subscriber_ids = subscriber_ids
        self.subscribers_path = subscribers_path
        self.ledger_path = ledger_path
        self.subscription_id = subscription_id
        self.status_state = status_state
        self.business_unit_id = business_unit_id
        self.hubspot_conn_id = hubspot_conn_id
        self.api_version = api_version
        self.deferrable = deferrable
        self.redact_emails = redact_emails
        self._pending: list[str] | None = None
        self._last: CheckResult | None = None

    def _subscribers(self) -> list[str]:
        if self.ledger_path:
            from ..ledger import submitted_addresses

            return submitted_addresses(self.ledger_path)
        if self.subscribers_path:
            from ..ledger.inputs import read_addresses

            return read_addresses(self.subscribers_path)
        if self.subscriber_ids is None:
            if self.subscribers_path is None:
                raise AirflowException(
                    "Give subscriber_ids or subscribers_path: there is nothing to wait for."
                )
            return []  # an empty path (e.g. no write was left pending upstream): nothing to wait for
        if isinstance(self.subscriber_ids, str):
            return [self.subscriber_ids]
        return [str(s) for s in self.subscriber_ids]

    @cached_property
    def hook(self) -> HubSpotPreferencesHook:
        """One hook per task run: the connection is looked up once, not on every poke."""
        from ..hooks.hubspot_prefs import HubSpotPreferencesHook

        return HubSpotPreferencesHook(
            self.hubspot_conn_id, api_version=self.api_version, redact_emails=self.redact_emails
        )

    def _business_unit(self) -> int | None:
        if self.business_unit_id is not None:
            return int(self.business_unit_id)
        return self.hook.business_unit_id

    async def _check(self, pending: list[str]) -> CheckResult:
        from ..runs.verification import Expectation, check_state

        client = await self.hook.get_async_conn()
        try:
            expectation = Expectation.build(self.subscription_id, self.status_state)
            return await check_state(client, pending, expectation, business_unit_id=self._business_unit())
        finally:
            await client.aclose()

    def poke(self, context: Context) -> bool:
        from ..client.redaction import sample_addresses

        pending = self._pending if self._pending is not None else self._subscribers()
        result = asyncio.run(self._check(pending))
        self._last = result
        if result.canceled:
            raise AirflowFailException(
                f"HubSpot canceled the operation for {len(result.canceled)} contact(s), e.g. "
                f"{sample_addresses(result.canceled, self.redact_emails)}; the change was not applied."
            )
        self._pending = result.pending
        if result.done:
            self._confirm_ledger()
            return True
        self.log.info(
            "%d contact(s) still pending (operation status %s)",
            len(result.pending),
            ", ".join(sorted(result.operation_statuses)),
        )
        return False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout as exc:
                raise AirflowSensorTimeout(f"{exc} {self._pending_message()}") from exc
        if self.poke(context):
            return None
        from ..triggers.operation_status import HubSpotOperationStatusTrigger

        by_file = bool(self.subscribers_path or self.ledger_path)
        self.defer(
            trigger=HubSpotOperationStatusTrigger(
                hubspot_conn_id=self.hubspot_conn_id,
                subscriber_ids=None if by_file else self._subscribers(),
                subscribers_path=str(self.subscribers_path) if self.subscribers_path else None,
                ledger_path=str(self.ledger_path) if self.ledger_path else None,
                subscription_id=None if self.subscription_id is None else int(self.subscription_id),
                status_state=self.status_state,
                business_unit_id=self._business_unit(),
                api_version=self.api_version,
                poll_interval=float(self.poke_interval),
                end_time=time.time() + float(self.timeout),
                redact_emails=self.redact_emails,
            ),
            method_name="execute_complete",
        )

    def _pending_message(self) -> str:
        from ..client.redaction import sample_addresses

        pending = self._pending or []
        return (
            f"Still pending: {len(pending)} contact(s), e.g. {sample_addresses(pending, self.redact_emails)}."
        )

    def _confirm_ledger(self) -> None:
        if not self.ledger_path:
            return
        from ..runs.verification import Expectation

        expectation = Expectation.build(self.subscription_id, self.status_state)
        confirmed = self.hook.confirm_ledger(
            str(self.ledger_path), expectation, business_unit_id=self._business_unit()
        )
        self.log.info("Ledger %s confirmed: %s", self.ledger_path, confirmed)
        self._reindex(str(self.ledger_path))

    def _reindex(self, ledger: str) -> None:
        """The confirmed ledger replaces its entry in the lookup index, as its writer's (the task the
        ledger's checkpoint names; its connection and deadline stay those it indexed)."""
        from ..ledger.checkpoint import ledger_writer
        from ..runs.final_ledger import LedgerOwner, index_final_ledger

        try:
            writer = ledger_writer(ledger)
            if writer is None:
                self.log.warning(
                    "The confirmed ledger %s is not re-indexed: its checkpoint does not say which task "
                    "wrote it; a lookup reads it whole (it is stale in the index)",
                    ledger,
                )
                return
            owner = LedgerOwner(
                dag_id=writer["dag_id"],
                run_id=writer["run_id"],
                task_id=writer["task_id"],
                map_index=writer["map_index"],
                hubspot_conn_id=self.hubspot_conn_id,
                business_unit_id=None if self.business_unit_id is None else int(self.business_unit_id),
                api_version=self.api_version or None,
            )
            index_final_ledger(ledger, owner, None, None)
        except Exception as exc:  # the ledger is confirmed and written: it stays the record
            self.log.warning("The confirmed ledger %s is not re-indexed: %s", ledger, exc)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        from ..triggers.operation_status import raise_for_event

        self.log.info(raise_for_event(event))
        self._confirm_ledger()
