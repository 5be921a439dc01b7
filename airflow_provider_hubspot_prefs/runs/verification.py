"""Is HubSpot done? Reads the contacts back and compares them with the state a write asked for.

Used by the sensor (poke mode) and the trigger (deferred mode) alike, with the async client, so
that both wait in exactly the same way. Only idempotent batch reads are sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..client.async_client import AsyncHubSpotPreferencesClient
from ..client.models import OperationStatus, StatusState, coerce_enum
from ..client.validation import check_positive_int
from ..ledger.files import confirm_submitted, submitted_addresses
from ..ledger.outcomes import Outcome

UNSUBSCRIBED_FROM_ALL = "unsubscribed_from_all"
SUBSCRIPTION_STATUS = "subscription_status"


@dataclass(frozen=True)
class Expectation:
    """The state the contacts must reach: opted out of all email, or one subscription's status."""

    kind: str = UNSUBSCRIBED_FROM_ALL
    subscription_id: int | None = None
    status_state: StatusState | None = None

    @classmethod
    def build(
        cls, subscription_id: int | None = None, status_state: StatusState | str | None = None
    ) -> Expectation:
        if subscription_id is None and status_state is None:
            return cls()
        if subscription_id is None or status_state is None:
            from .errors import HubSpotInputError

            raise HubSpotInputError(
                "subscription_id",
                subscription_id,
                "and status_state must be given together to wait for a subscription status",
            )
        return cls(
            SUBSCRIPTION_STATUS,
            check_positive_int(subscription_id, "subscription_id"),
            coerce_enum(StatusState, status_state, "status_state"),
        )

    def describe(self) -> str:
        if self.kind == UNSUBSCRIBED_FROM_ALL:
            return "unsubscribed from all email"
        assert self.status_state is not None
        return f"{self.status_state.value} for subscription {self.subscription_id}"


@dataclass
class CheckResult:
    """Outcome of one round of reads."""

    pending: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    operation_statuses: set[str] = field(default_factory=set)
    # Lower-cased address -> epoch seconds of the status HubSpot reports in the expected state.
    reached_at: dict[str, float] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return not self.pending and not self.canceled


async def check_state(
    client: AsyncHubSpotPreferencesClient,
    subscriber_ids: Iterable[str],
    expectation: Expectation,
    *,
    business_unit_id: int | None = None,
    batch_size: int = 100,
) -> CheckResult:
    """Read ``subscriber_ids`` in chunks; list those not yet in the expected state or canceled."""
    result = CheckResult()
    chunk: list[str] = []

    async def flush() -> None:
        if not chunk:
            return
        response: Any
        if expectation.kind == UNSUBSCRIBED_FROM_ALL:
            response = await client.batch_read_unsubscribe_all(chunk, business_unit_id=business_unit_id)
            reached = {
                r.subscriber_id_string.lower(): max(
                    w.timestamp.timestamp() for w in r.wide_statuses if w.status is StatusState.UNSUBSCRIBED
                )
                for r in response.results
                if any(w.status is StatusState.UNSUBSCRIBED for w in r.wide_statuses)
            }
        else:
            response = await client.batch_read_statuses(chunk, business_unit_id=business_unit_id)
            reached = {}
            for r in response.results:
                matching = [
                    s.timestamp.timestamp()
                    for s in r.statuses
                    if s.subscription_id == expectation.subscription_id
                    and s.status is expectation.status_state
                ]
                if matching:
                    reached[r.subscriber_id_string.lower()] = max(matching)
        result.operation_statuses.add(response.status.value)
        if response.status is OperationStatus.COMPLETE:
            result.reached_at.update(reached)
        if response.status is OperationStatus.CANCELED:
            result.canceled.extend(a for a in chunk if a.lower() not in reached)
        elif response.status is OperationStatus.COMPLETE:
            result.pending.extend(a for a in chunk if a.lower() not in reached)
        else:
            result.pending.extend(chunk)
        chunk.clear()

    for subscriber in subscriber_ids:
        chunk.append(subscriber)
        if len(chunk) >= batch_size:
            await flush()
    await flush()
    return result


def outcomes_for(expectation: Expectation) -> tuple[Outcome, Outcome]:
    """Ledger outcomes ``(applied, unchanged)`` of a write that asked for ``expectation``."""
    if expectation.kind == UNSUBSCRIBED_FROM_ALL:
        return Outcome.UNSUBSCRIBED, Outcome.ALREADY_UNSUBSCRIBED
    return Outcome.STATUS_SET, Outcome.ALREADY_IN_STATE


async def confirm_ledger(
    client: AsyncHubSpotPreferencesClient,
    ledger: str,
    expectation: Expectation,
    *,
    business_unit_id: int | None = None,
) -> dict[str, int]:
    """Read back the contacts a ledger says are ``submitted`` and record what HubSpot now reports.

    A contact in the expected state with a status dated from the row's first send on is this run's
    change; an older status means it was already so. Contacts not there yet stay ``submitted``.
    Returns how many rows took each outcome.
    """
    import asyncio

    addresses = await asyncio.to_thread(submitted_addresses, ledger)
    if not addresses:
        return {}
    result = await check_state(client, addresses, expectation, business_unit_id=business_unit_id)
    applied, unchanged = outcomes_for(expectation)
    changed = await asyncio.to_thread(confirm_submitted, ledger, result.reached_at, applied, unchanged)
    return dict(changed)
