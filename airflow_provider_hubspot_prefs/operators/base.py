"""What every HubSpot operator shares: the connection, the hook (imported lazily), the waiting."""

from __future__ import annotations

import asyncio
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..hooks.hubspot_prefs import HubSpotPreferencesHook


class HubSpotBaseOperator(BaseOperator):
    """Base of the provider's operators.

    :param hubspot_conn_id: the ``hubspot_prefs`` connection.
    :param api_version: ``v4``, ``2026-03`` or ``2026-09``; overrides the connection's.
    :param business_unit_id: business unit the change applies to; default the connection's.
    :param wait_for_completion: after submitting, wait until HubSpot reports COMPLETE and the
        contacts are in the requested state.
    :param check_interval: seconds between reads while waiting.
    :param timeout: seconds to wait before failing with what is still pending.
    :param deferrable: wait in the triggerer instead of a worker slot; default
        ``[operators] default_deferrable``.
    :param redact_emails: redact addresses in log lines, messages and XCom (default True).
    """

    ui_color = "#ff7a59"

    def __init__(
        self,
        *,
        hubspot_conn_id: str = "hubspot_prefs_default",
        api_version: str | None = None,
        business_unit_id: int | None = None,
        wait_for_completion: bool = False,
        check_interval: float = 30.0,
        timeout: float = 3600.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        redact_emails: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hubspot_conn_id = hubspot_conn_id
        self.api_version = api_version
        self.business_unit_id = business_unit_id
        self.wait_for_completion = wait_for_completion
        self.check_interval = check_interval
        self.timeout = timeout
        self.deferrable = deferrable
        self.redact_emails = redact_emails

    @cached_property
    def hook(self) -> HubSpotPreferencesHook:
        from ..hooks.hubspot_prefs import HubSpotPreferencesHook

        return HubSpotPreferencesHook(
            self.hubspot_conn_id, api_version=self.api_version, redact_emails=self.redact_emails
        )

    def resolved_business_unit(self) -> int | None:
        if self.business_unit_id not in (None, ""):
            return int(self.business_unit_id)
        return self.hook.business_unit_id

    def wait_or_defer(
        self,
        context: Context,
        *,
        result: dict[str, Any],
        subscriber_ids: list[str] | None = None,
        ledger_path: str | None = None,
        subscription_id: int | None = None,
        status_state: str | None = None,
    ) -> dict[str, Any]:
        """Wait for HubSpot with the trigger: deferred, or run to its end right here."""
        from ..triggers.operation_status import HubSpotOperationStatusTrigger

        trigger = HubSpotOperationStatusTrigger(
            hubspot_conn_id=self.hubspot_conn_id,
            subscriber_ids=subscriber_ids,
            ledger_path=ledger_path,
            subscription_id=subscription_id,
            status_state=status_state,
            business_unit_id=self.resolved_business_unit(),
            api_version=self.api_version,
            poll_interval=float(self.check_interval),
            end_time=time.time() + float(self.timeout),
            redact_emails=self.redact_emails,
            task_summary=result,
        )
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete")
        return self.execute_complete(context, asyncio.run(trigger.wait()))

    def confirm_ledger(
        self, ledger: str, subscription_id: int | None = None, status_state: str | None = None
    ) -> None:
        """Bring the ledger's ``submitted`` rows to what HubSpot now reports, attributed truthfully."""
        from ..runs.verification import Expectation

        expectation = Expectation.build(subscription_id, status_state)
        confirmed = self.hook.confirm_ledger(
            ledger, expectation, business_unit_id=self.resolved_business_unit()
        )
        self.log.info("Ledger %s confirmed: %s", ledger, confirmed)

    def checked_batch_size(self, batch_size: object) -> int:
        """``batch_size`` as an int within the API's batch maximum, or a failure a retry cannot fix."""
        from airflow.sdk.exceptions import AirflowFailException

        size = int(batch_size)  # type: ignore[call-overload]
        if not 1 <= size <= self.hook.max_batch_size:
            raise AirflowFailException(
                f"batch_size must be between 1 and {self.hook.max_batch_size}, not {batch_size}"
            )
        return size

    def publish_output(self, context: Context, path: str, extra: dict[str, Any]) -> None:
        """Tell Airflow about a file this task wrote: hook-level lineage for ``path``, and ``extra``
        (counts and the path, never an address) on the events of the task's Asset outlets, which a
        DAG scheduled on those assets reads from its inlet events."""
        from airflow.sdk import Asset

        from ..ledger.storage import storage_path

        location = storage_path(path)
        uri = location.resolve().as_uri() if isinstance(location, Path) else str(path)
        try:
            from airflow.sdk.lineage import get_hook_lineage_collector

            get_hook_lineage_collector().add_output_asset(context=self.hook, uri=uri)
        except Exception:  # lineage is a courtesy to lineage readers: it must never fail the task
            self.log.debug("Hook lineage not recorded for %s", uri, exc_info=True)
        events = context.get("outlet_events") if hasattr(context, "get") else None
        if events is None:
            return
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                events[outlet].extra.update({**extra, "uri": uri})

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the wait: the task's summary comes back in ``event["task_summary"]``."""
        from ..triggers.operation_status import raise_for_event

        self.log.info(raise_for_event(event))
        return {
            **task_summary_of(event),
            "operation_status": "COMPLETE",
            "confirmed": event.get("checked", 0),
        }


def task_summary_of(event: dict[str, Any]) -> dict[str, Any]:
    """The summary a trigger event hands back (``carry`` in events of earlier versions)."""
    return dict(event.get("task_summary", event.get("carry")) or {})
