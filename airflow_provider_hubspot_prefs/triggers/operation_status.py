"""Deferred waiting: polls HubSpot with the async client until the contacts reach a state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from ..runs.verification import Expectation


class HubSpotOperationStatusTrigger(BaseTrigger):
    """Fire once the contacts are in the expected state (or canceled, or out of time).

    Only idempotent batch reads are sent. Everything it holds is a plain value; the contacts come
    either inline (``subscriber_ids``) or from a file (``subscribers_path``, one address a line),
    so that large waits do not put addresses into the metadata database.

    :param hubspot_conn_id: the ``hubspot_prefs`` connection.
    :param subscriber_ids: contacts to check, or None when ``subscribers_path`` is given.
    :param subscribers_path: local path or object-storage URI of a file of addresses.
    :param ledger_path: instead, a batch ledger: its ``submitted`` rows are the contacts to check.
    :param subscription_id: with ``status_state``, wait for that subscription status; without
        both, wait until the contacts are unsubscribed from all email.
    :param business_unit_id: business unit of the reads (None: the portal).
    :param poll_interval: seconds between rounds of reads.
    :param end_time: epoch seconds after which the trigger gives up, naming what is pending.
    :param task_summary: the summary of the task that deferred (plain values), handed back
        unchanged in the event (``event["task_summary"]``). ``carry``, its former name, is still
        taken: a trigger serialized by an earlier version resumes.
    """

    def __init__(
        self,
        *,
        hubspot_conn_id: str,
        subscriber_ids: list[str] | None = None,
        subscribers_path: str | None = None,
        ledger_path: str | None = None,
        subscription_id: int | None = None,
        status_state: str | None = None,
        business_unit_id: int | None = None,
        api_version: str | None = None,
        poll_interval: float = 30.0,
        end_time: float | None = None,
        redact_emails: bool = True,
        task_summary: dict[str, Any] | None = None,
        carry: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.task_summary = task_summary if task_summary is not None else carry
        self.hubspot_conn_id = hubspot_conn_id
        self.subscriber_ids = subscriber_ids
        self.subscribers_path = subscribers_path
        self.ledger_path = ledger_path
        self.subscription_id = subscription_id
        self.status_state = status_state
        self.business_unit_id = business_unit_id
        self.api_version = api_version
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.redact_emails = redact_emails

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "hubspot_conn_id": self.hubspot_conn_id,
                "subscriber_ids": self.subscriber_ids,
                "subscribers_path": self.subscribers_path,
                "ledger_path": self.ledger_path,
                "subscription_id": self.subscription_id,
                "status_state": self.status_state,
                "business_unit_id": self.business_unit_id,
                "api_version": self.api_version,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "redact_emails": self.redact_emails,
                "task_summary": self.task_summary,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ..hooks.hubspot_prefs import HubSpotPreferencesHook
        from ..runs.verification import Expectation

        try:
            expectation = Expectation.build(self.subscription_id, self.status_state)
            pending = await self._subscribers()
            hook = HubSpotPreferencesHook(
                self.hubspot_conn_id, api_version=self.api_version, redact_emails=self.redact_emails
            )
            client = await hook.get_async_conn()
        except Exception as exc:  # a setup problem: one precise event instead of a stack in the triggerer
            failure = {"status": "error", "reason": "setup", "message": f"{type(exc).__name__}: {exc}"}
            yield TriggerEvent({**failure, "task_summary": self.task_summary})
            return
        try:
            yield TriggerEvent(
                {**(await self._poll(client, pending, expectation)), "task_summary": self.task_summary}
            )
        finally:
            await client.aclose()

    async def wait(self) -> dict[str, Any]:
        """The same wait, run to its end in the caller's loop: a non-deferred task's way to wait."""
        async for event in self.run():
            return dict(event.payload)
        raise RuntimeError("the trigger ended without an event")

    async def _subscribers(self) -> list[str]:
        from ..ledger import submitted_addresses
        from ..ledger.inputs import read_addresses

        if self.subscriber_ids is not None:
            return list(self.subscriber_ids)
        if self.ledger_path:
            return await asyncio.to_thread(submitted_addresses, self.ledger_path)
        return await asyncio.to_thread(read_addresses, self.subscribers_path)

    async def _poll(self, client: Any, pending: list[str], expectation: Expectation) -> dict[str, Any]:
        """Read until done, canceled, failed or out of time; return the event's payload."""
        from ..client import HubSpotError
        from ..client.redaction import sample_addresses
        from ..runs.verification import check_state

        total = len(pending)
        target = expectation.describe()
        while True:
            try:
                result = await check_state(
                    client, pending, expectation, business_unit_id=self.business_unit_id
                )
            except HubSpotError as exc:
                return {
                    "status": "error",
                    "reason": "api_error",
                    "message": str(exc),
                    "pending_count": len(pending),
                }
            if result.canceled:
                examples = sample_addresses(result.canceled, self.redact_emails)
                return {
                    "status": "error",
                    "reason": "canceled",
                    "message": f"HubSpot canceled the operation for {len(result.canceled)} of {total} "
                    f"contact(s), e.g. {examples}; they are not {target}.",
                    "pending_count": len(result.pending) + len(result.canceled),
                }
            if result.done:
                message = f"All {total} contact(s) are {target} and HubSpot reports the operation COMPLETE."
                return {"status": "success", "checked": total, "message": message}
            pending = result.pending
            if self.end_time is not None and time.time() >= self.end_time:
                statuses = ", ".join(sorted(result.operation_statuses))
                return {
                    "status": "error",
                    "reason": "timeout",
                    "message": f"Timed out with {len(pending)} of {total} contact(s) not yet {target} "
                    f"(operation status {statuses}), e.g. {sample_addresses(pending, self.redact_emails)}.",
                    "pending_count": len(pending),
                }
            self.log.info(
                "%d of %d contact(s) still pending; next check in %ss",
                len(pending),
                total,
                self.poll_interval,
            )
            await asyncio.sleep(self.poll_interval)


def raise_for_event(event: dict[str, Any]) -> str:
    """Return the success message of a wait, or raise the Airflow exception that fits its failure."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

    if event.get("status") == "success":
        return str(event.get("message", "done"))
    message = str(event.get("message", "waiting for HubSpot failed"))
    if event.get("reason") == "timeout":
        raise AirflowSensorTimeout(message)
    if event.get("reason") == "canceled":
        raise AirflowFailException(message)  # retrying cannot undo a cancellation
    raise AirflowException(message)
