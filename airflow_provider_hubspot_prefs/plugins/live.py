"""What HubSpot holds now for one address: a live read through the connections its ledgers used.

The read runs on the api-server with the same hook the tasks use (``HubSpotPreferencesHook``): it
finds its connection through the Task SDK, which in the api-server reads the configured secrets
backends and the metadata database. Both reads are batch reads, so the address travels in the
request body to HubSpot too, not in a URL of HubSpot's access logs. A read that fails says why; it
never reads as "not subscribed".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..client.redaction import redact_text


@dataclass(frozen=True)
class Source:
    """One place to ask: a connection and the business unit its ledgers wrote to."""

    conn_id: str | None
    business_unit_id: int | None
    api_version: str | None


def sources(entries: Iterable[Any]) -> list[Source]:
    """The distinct (connection, business unit) pairs of ledger entries, in first-seen order.

    Several runs through one connection are one read; the API version is the first entry's (one
    connection's entries normally share it, and any version reads the same state).
    """
    seen: dict[tuple[str | None, int | None], Source] = {}
    for entry in entries:
        key = (entry.hubspot_conn_id, entry.business_unit_id)
        seen.setdefault(key, Source(entry.hubspot_conn_id, entry.business_unit_id, entry.api_version))
    return list(seen.values())


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def read_now(address: str, source: Source) -> dict[str, Any]:
    """HubSpot's current subscription statuses and unsubscribe-all status of ``address``.

    ``{"connection", "business_unit_id", "ok", "error", "subscriptions", "wide", "unknown"}``:
    ``ok`` false with ``error`` when the read failed; ``unknown`` lists what HubSpot answered
    about the address instead of a status (a contact it does not know, for one).
    """
    answer: dict[str, Any] = {
        "connection": source.conn_id,
        "business_unit_id": source.business_unit_id,
        "ok": False,
        "error": None,
        "subscriptions": [],
        "wide": [],
        "unknown": [],
    }
    if not source.conn_id:
        answer["error"] = "the ledger's index entry names no connection: HubSpot was not asked"
        return answer
    from ..hooks.hubspot_prefs import HubSpotPreferencesHook

    try:
        # Inside the try: a connection that cannot be loaded is a failed read, said as such.
        hook = HubSpotPreferencesHook(source.conn_id, api_version=source.api_version, redact_emails=True)
    except Exception as exc:
        answer["error"] = redact_text(f"{type(exc).__name__}: {exc}")
        return answer
    try:
        client = hook.get_conn()
        # The task's own business unit, else the connection's, as the task itself wrote with.
        unit = source.business_unit_id if source.business_unit_id is not None else hook.business_unit_id
        answer["business_unit_id"] = unit
        statuses = client.batch_read_statuses([address], business_unit_id=unit)
        wide = client.batch_read_unsubscribe_all([address], business_unit_id=unit)
    except Exception as exc:  # any failure is shown, named; the view never guesses a state
        answer["error"] = redact_text(f"{type(exc).__name__}: {exc}")
        return answer
    finally:
        hook.close()
    answer["ok"] = True
    answer["subscriptions"] = [
        {
            "subscription_id": s.subscription_id,
            "name": s.subscription_name,
            "status": s.status.value,
            "source": s.source,
            "legal_basis": s.legal_basis.value if s.legal_basis else None,
            "timestamp": _when(s.timestamp),
            "business_unit_id": s.business_unit_id,
        }
        for result in statuses.results
        for s in result.statuses
    ]
    answer["wide"] = [
        {
            "type": w.wide_status_type.value,
            "status": w.status.value,
            "timestamp": _when(w.timestamp),
            "business_unit_id": w.business_unit_id,
        }
        for result in wide.results
        for w in result.wide_statuses
    ]
    answer["unknown"] = sorted(
        {redact_text(f"{e.category}: {e.message}") for e in [*statuses.errors, *wide.errors]}
    )
    return answer
