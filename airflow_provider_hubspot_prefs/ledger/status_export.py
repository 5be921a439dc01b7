"""The status export's file: one row per status HubSpot holds for a contact, CSV or JSON lines.

A contact has one row per subscription of the business unit (``kind`` = ``subscription``), one
per unsubscribed-from-all scope (``kind`` = ``unsubscribe_all``: the portal, or a business unit),
or, when HubSpot does not know the address, a single ``not_found`` row with HubSpot's message. A
read that did not give a contact (an error for it, or an answer that left it out) is an ``error``
row in place of what was not read: the file never passes over what it does not know.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any, Protocol

EXPORT_COLUMNS = (
    "subscriber_id",
    "kind",
    "subscription_id",
    "subscription_name",
    "business_unit_id",
    "status",
    "timestamp",
    "legal_basis",
    "legal_basis_explanation",
    "source",
    "wide_status_type",
    "message",
)
FORMATS = ("csv", "jsonl")


def format_of(location: str, chosen: str | None) -> str:
    """``chosen`` if given, else ``jsonl`` for ``.jsonl``/``.ndjson`` paths and ``csv`` otherwise."""
    if chosen:
        if chosen not in FORMATS:
            raise ValueError(f"output_format {chosen!r} is not one of {', '.join(FORMATS)}")
        return chosen
    return "jsonl" if location.lower().endswith((".jsonl", ".ndjson")) else "csv"


class ExportWriter(Protocol):
    def write(self, rows: Iterable[dict[str, Any]]) -> None: ...


class CsvExport:
    """CSV with a header row; empty cells for values HubSpot did not give."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.DictWriter(out, EXPORT_COLUMNS)
        self._writer.writeheader()

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        self._writer.writerows(rows)


class JsonLinesExport:
    """One JSON object a line, with every column (null for values HubSpot did not give)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        self._out.writelines(json.dumps({c: row.get(c) for c in EXPORT_COLUMNS}) + "\n" for row in rows)


def export_writer(out: IO[str], output_format: str) -> ExportWriter:
    return JsonLinesExport(out) if output_format == "jsonl" else CsvExport(out)


def _text(value: Any) -> Any:
    """Enums as their value, datetimes in ISO 8601 UTC, everything else as it is."""
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return getattr(value, "value", value)


def subscription_row(status: Any) -> dict[str, Any]:
    """A row from a ``PublicStatus``."""
    return {
        "subscriber_id": status.subscriber_id_string.lower(),
        "kind": "subscription",
        "subscription_id": status.subscription_id,
        "subscription_name": status.subscription_name,
        "business_unit_id": status.business_unit_id,
        "status": _text(status.status),
        "timestamp": _text(status.timestamp),
        "legal_basis": _text(status.legal_basis),
        "legal_basis_explanation": status.legal_basis_explanation,
        "source": status.source,
    }


def unsubscribe_all_row(status: Any) -> dict[str, Any]:
    """A row from a ``PublicWideStatus``."""
    return {
        "subscriber_id": status.subscriber_id_string.lower(),
        "kind": "unsubscribe_all",
        "business_unit_id": status.business_unit_id,
        "status": _text(status.status),
        "timestamp": _text(status.timestamp),
        "wide_status_type": _text(status.wide_status_type),
    }


def not_found_row(address: str, message: str) -> dict[str, Any]:
    return {"subscriber_id": address, "kind": "not_found", "message": message}


def error_row(address: str, part: str, answer: Any, problem: str | None) -> dict[str, Any]:
    """A row saying that one read did not give this contact (``part``: ``statuses``,
    ``unsubscribe_all``, or ``subscription <id>``): HubSpot's error, or that its answer left it
    out; with the correlation id."""
    what = {"statuses": "subscription statuses", "unsubscribe_all": "unsubscribe-from-all status"}.get(
        part, f"status of {part}"
    )
    why = f"HubSpot answered {problem}" if problem else "HubSpot's answer left it out"
    correlation = answer.delivery.correlation_id
    return {
        "subscriber_id": address,
        "kind": "error",
        "message": f"{what} not read: {why}" + (f" (correlation id {correlation})" if correlation else ""),
    }
