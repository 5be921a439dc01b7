"""Set subscription statuses, with their GDPR legal basis: one contact or many."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from .base import HubSpotBaseOperator, task_summary_of
from .batch_run import HubSpotBatchBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..client import AsyncHubSpotPreferencesClient
    from ..ledger import InputRecord


class HubSpotSetSubscriptionStatusOperator(HubSpotBatchBaseOperator):
    """Set one subscription's status for one contact or for many.

    A single address goes to POST /statuses/{subscriberIdString}; a list goes to
    POST /statuses/batch/write in chunks, with a result ledger (outcomes ``status_set``,
    ``already_in_state``, ``submitted``, ``invalid_input``, ``duplicate``, ``failed``).

    :param subscriber_ids: an address, or a list of addresses (templated; an XComArg works).
    :param subscription_id: the subscription (see GET /definitions).
    :param status_state: SUBSCRIBED, UNSUBSCRIBED or NOT_SPECIFIED.
    :param legal_basis: GDPR legal basis, e.g. CONSENT_WITH_NOTICE or LEGITIMATE_INTEREST_CLIENT.
    :param legal_basis_explanation: free text kept with the status (your evidence).
    :param channel: EMAIL (the only channel HubSpot offers).

    See ``HubSpotBatchBaseOperator`` (ledger, batching, policy) and ``HubSpotBaseOperator``
    (connection, business unit, waiting).
    """

    template_fields: Sequence[str] = (
        "subscriber_ids",
        "subscription_id",
        "status_state",
        "legal_basis",
        "legal_basis_explanation",
        "channel",
        "ledger_path",
        "opt_out_deadline",
        "deadline_warning",
        "deadline_timezone",
        "business_unit_id",
        "hubspot_conn_id",
        "api_version",
    )

    applied_outcome = "status_set"
    unchanged_outcome = "already_in_state"

    def __init__(
        self,
        *,
        subscriber_ids: str | list[str],
        subscription_id: int | str,
        status_state: str,
        legal_basis: str | None = None,
        legal_basis_explanation: str | None = None,
        channel: str = "EMAIL",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.subscriber_ids = subscriber_ids
        self.subscription_id = subscription_id
        self.status_state = status_state
        self.legal_basis = legal_basis
        self.legal_basis_explanation = legal_basis_explanation
        self.channel = channel

    def _request_fields(self) -> dict[str, Any]:
        """Checked once before anything is sent, so that a typo fails the task with the allowed values."""
        from ..client import HubSpotInputError, status_request

        subscription = self.subscription_id
        if isinstance(subscription, str) and subscription.strip().isdigit():
            subscription = int(subscription)
        fields: dict[str, Any] = {
            "status_state": self.status_state,
            "subscription_id": subscription,
            "legal_basis": self.legal_basis or None,
            "legal_basis_explanation": self.legal_basis_explanation or None,
            "channel": self.channel,
        }
        try:
            status_request(None, **fields)
        except HubSpotInputError as exc:
            raise AirflowFailException(str(exc)) from exc
        return fields

    def completion_expectation(self) -> dict[str, Any]:
        fields = self._request_fields()
        return {"subscription_id": fields["subscription_id"], "status_state": str(fields["status_state"])}

    def records(self, context: Context) -> Iterator[InputRecord]:
        from ..ledger.inputs import records_from_values

        items = [self.subscriber_ids] if isinstance(self.subscriber_ids, str) else self.subscriber_ids
        yield from records_from_values(items)

    def sender(self, client: AsyncHubSpotPreferencesClient) -> Callable[[list[tuple[int, str]]], Any]:
        from ..client import status_request

        fields = self._request_fields()

        def send(chunk: list[tuple[int, str]]) -> Any:
            return client.batch_write_statuses([status_request(address, **fields) for _, address in chunk])

        return send

    def execute(self, context: Context) -> Any:
        fields = self._request_fields()
        if not isinstance(self.subscriber_ids, str):
            return self.run_batch(context)
        return self._set_one(context, self.subscriber_ids, fields)

    def _set_one(self, context: Context, subscriber: str, fields: dict[str, Any]) -> Any:
        from ..client import HubSpotError, HubSpotInputError
        from ..client.redaction import sample_addresses
        from ..ledger import Outcome, examine
        from ..runs.classify import classify

        address, problem = examine(subscriber, empty="empty")
        (shown,) = sample_addresses([subscriber], self.redact_emails)
        if address is None:
            raise AirflowFailException(f"subscriber_ids {shown!r} is {problem}")
        if self.writes_nothing:  # dry_run=True: checked and counted, never sent
            self.log.info("%s: dry run, not sent", shown)
            return {
                "subscriber": shown,
                "outcome": Outcome.NOT_ATTEMPTED.value,
                "reason": "dry run: not sent",
            }
        try:
            response = self.hook.get_conn().set_status(address, **fields)
        except HubSpotInputError as exc:
            raise AirflowFailException(str(exc)) from exc
        except HubSpotError as exc:
            raise AirflowException(f"HubSpot refused the status change: {exc}") from exc
        (row,) = classify(
            [(1, address)], response, applied=Outcome.STATUS_SET, unchanged=Outcome.ALREADY_IN_STATE
        )
        if row.outcome is Outcome.FAILED:
            raise AirflowException(f"HubSpot did not set the status: {row.reason}")
        result = {
            "subscriber": shown,
            "outcome": row.outcome.value,
            "operation_status": response.status.value,
            "reason": row.reason,
        }
        self.log.info("%s: %s (operation %s)", shown, row.outcome.value, response.status.value)
        if self.wait_for_completion and row.outcome is Outcome.SUBMITTED:
            return self.wait_or_defer(
                context, result=result, subscriber_ids=[address], **self.completion_expectation()
            )
        return result

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if "ledger_path" in task_summary_of(event):
            return super().execute_complete(context, event)
        done = HubSpotBaseOperator.execute_complete(self, context, event)
        return {**done, "outcome": "status_set"}
