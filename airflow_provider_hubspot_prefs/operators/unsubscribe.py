"""Opt contacts out of all email: one contact, or any number of them in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from .base import HubSpotBaseOperator
from .batch_run import HubSpotBatchBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..client import AsyncHubSpotPreferencesClient
    from ..ledger import InputRecord


class HubSpotUnsubscribeAllOperator(HubSpotBaseOperator):
    """Unsubscribe one contact from all email (POST /statuses/{subscriberIdString}/unsubscribe-all).

    Returns ``{"subscriber", "outcome", "operation_status"}`` with the address redacted unless
    ``redact_emails=False``; outcome is ``unsubscribed``, ``already_unsubscribed`` or
    ``submitted`` (HubSpot still processing; ``wait_for_completion=True`` waits for it).

    :param subscriber_id: the contact's email address (templated).

    See ``HubSpotBaseOperator`` for the connection, business unit and waiting parameters.
    """

    template_fields: Sequence[str] = ("subscriber_id", "business_unit_id", "hubspot_conn_id", "api_version")

    def __init__(self, *, subscriber_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subscriber_id = subscriber_id

    def execute(self, context: Context) -> Any:
        from ..client import HubSpotAPIError, HubSpotError, HubSpotInputError
        from ..client.redaction import sample_addresses
        from ..ledger import Outcome, examine
        from ..runs.classify import classify

        address, problem = examine(self.subscriber_id, empty="empty")
        if address is None:
            (shown,) = sample_addresses([str(self.subscriber_id)], self.redact_emails)
            raise AirflowFailException(f"subscriber_id {shown!r} is {problem}")
        try:
            response = self.hook.get_conn().unsubscribe_all(
                address, business_unit_id=self.resolved_business_unit(), verbose=True
            )
        except HubSpotInputError as exc:
            raise AirflowFailException(str(exc)) from exc
        except (HubSpotAPIError, HubSpotError) as exc:
            raise AirflowException(f"HubSpot refused the unsubscribe: {exc}") from exc
        (row,) = classify(
            [(1, address)], response, applied=Outcome.UNSUBSCRIBED, unchanged=Outcome.ALREADY_UNSUBSCRIBED
        )
        if row.outcome is Outcome.FAILED:
            raise AirflowException(f"HubSpot did not unsubscribe the contact: {row.reason}")
        (shown,) = sample_addresses([address], self.redact_emails)
        result = {
            "subscriber": shown,
            "outcome": row.outcome.value,
            "operation_status": response.status.value,
        }
        self.log.info("%s: %s (operation %s)", shown, row.outcome.value, response.status.value)
        if self.wait_for_completion and row.outcome is Outcome.SUBMITTED:
            return self.wait_or_defer(context, result=result, subscriber_ids=[address])
        return result

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        done = super().execute_complete(context, event)
        return {**done, "outcome": "unsubscribed"}


class HubSpotBatchUnsubscribeAllOperator(HubSpotBatchBaseOperator):
    """Unsubscribe any number of contacts from all email, in batches, with a result ledger.

    Input comes from ``subscribers`` (a list, or an upstream task's XCom) or from ``input_path``
    (a local path or object-storage URI: one address a line, or the ``csv_column`` of a CSV),
    read as a stream. Every line (CSV record) is one input with its own line number: blank lines,
    empty cells, undecodable bytes and malformed addresses go to the ledger as ``invalid_input``
    with the reason and are never sent; a byte-order mark, surrounding spaces and invisible
    characters are dropped. Addresses are lower-cased and de-duplicated. Chunks of ``batch_size`` go to
    POST /statuses/batch/unsubscribe-all with at most ``max_in_flight`` requests at once.

    The ledger (see ``airflow_provider_hubspot_prefs.ledger``) has one row per input line, outcome
    one of ``unsubscribed``, ``already_unsubscribed``, ``submitted``, ``invalid_input``,
    ``duplicate``, ``failed``, ``not_attempted``. XCom gets a summary (counts, ledger path), never
    the addresses.

    :param subscribers: addresses (templated; an XComArg works).
    :param input_path: instead, a file of addresses (templated).
    :param csv_column: read this column of a CSV with a header row.
    :param encoding: the file's encoding when it is not UTF-8 (e.g. ``cp1252``); a file with a
        byte-order mark (UTF-8 or UTF-16) is read as its mark says, whatever this is.
    :param input_range: ``[start, stop)`` of the input records (lines, or CSV records) to handle,
        for fan-out over chunks of one file (see ``utils.fanout``).
    :param requested_at_column: the CSV column saying when each person asked to opt out (ISO 8601
        with a time zone, or epoch seconds); default ``requested_at`` when the CSV has one. The
        ledger keeps it as ``requested_at``; ``opt_out_deadline`` counts from it.

    See ``HubSpotBatchBaseOperator`` for the ledger, batching and failure policy, and
    ``HubSpotBaseOperator`` for the connection, business unit and waiting parameters.
    """

    template_fields: Sequence[str] = (
        "subscribers",
        "input_path",
        "csv_column",
        "encoding",
        "input_range",
        "requested_at_column",
        "ledger_path",
        "opt_out_deadline",
        "deadline_warning",
        "deadline_timezone",
        "business_unit_id",
        "hubspot_conn_id",
        "api_version",
    )

    def __init__(
        self,
        *,
        subscribers: Iterable[str] | str | None = None,
        input_path: str | None = None,
        csv_column: str | None = None,
        encoding: str | None = None,
        input_range: Sequence[int] | None = None,
        requested_at_column: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.requested_at_column = requested_at_column
        self.subscribers = subscribers
        self.input_path = input_path
        self.csv_column = csv_column
        self.encoding = encoding
        self.input_range = input_range

    def records(self, context: Context) -> Iterator[InputRecord]:
        from .inputs import input_records

        return input_records(
            self.subscribers,
            self.input_path,
            self.csv_column,
            self.encoding,
            self.input_range,
            self.requested_at_column,
        )

    def sender(self, client: AsyncHubSpotPreferencesClient) -> Callable[[list[tuple[int, str]]], Any]:
        business_unit = self.resolved_business_unit()

        def send(chunk: list[tuple[int, str]]) -> Any:
            addresses = [address for _, address in chunk]
            return client.batch_unsubscribe_all(addresses, business_unit_id=business_unit, verbose=True)

        return send
