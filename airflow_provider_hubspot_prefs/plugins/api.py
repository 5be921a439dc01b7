"""The plugin's JSON API (``/hubspot-prefs/api/...``): what the pages show, for the pages and for scripts.

Task instances and runs are named by query parameters (``dag_id``, ``run_id``, ``task_id``,
``map_index``): run ids may hold characters a path segment cannot. The address of a lookup comes
only in a JSON body. Every route is synchronous: it reads files, the metadata database or HubSpot,
and FastAPI runs it in its thread pool, off the api-server's event loop.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..ledger.inputs import examine
from . import data, ledger_view, live, reports
from .access import DAG_READ, User, may_see_addresses, readable_dag_ids, require_addresses

router = APIRouter(prefix="/api")

# The report's own page may not run scripts, load anything, or be framed by another site.
REPORT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def map_index_of(text: str) -> int:
    """The UI's ``{MAP_INDEX}``: a number, or the placeholder itself / nothing for an unmapped task."""
    if text in ("", "{MAP_INDEX}"):
        return -1
    try:
        return int(text)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"map_index is no number: {text!r}") from None


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"The ledger index is unavailable: {exc}")


def _entry_or_error(dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    try:
        entry = data.find_entry(dag_id, run_id, task_id, map_index)
    except data.IndexUnavailableError as exc:
        raise _unavailable(exc) from None
    if entry is None:
        entry = _unindexed_entry(dag_id, run_id, task_id, map_index)
    if entry is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "No ledger is indexed for this task instance: it wrote none (not a batch, sync or export "
            "task of this provider), or it has not finished yet.",
        )
    return entry


def _unindexed_entry(dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """An entry for a ledger its task wrote but could not index (its summary says so and where):
    the view reads that file, and says it is not in the index."""
    found = reports.unindexed_ledger(reports.returned(dag_id, run_id, task_id, map_index))
    return None if found is None else _entry_of_unindexed(dag_id, run_id, task_id, map_index, *found)


def _entry_of_unindexed(
    dag_id: str, run_id: str, task_id: str, map_index: int, ledger_path: str, why: str
) -> Any:
    from ..ledger.index import NOT_FINAL, LedgerEntry

    return LedgerEntry(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        ledger_path=ledger_path,
        ledger_size=NOT_FINAL,
        extra={"not_indexed": why},
    )


def _run_ledgers(dag_id: str, run_id: str) -> list[str]:
    """The run's indexed ledgers: its report may be beside one of them."""
    try:
        entries, _ = data.run_entries(dag_id, run_id)
    except data.IndexUnavailableError:
        return []
    return [e.ledger_path for e in entries]


def _report_location(dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    return reports.report_location(dag_id, run_id, task_id, map_index, _run_ledgers(dag_id, run_id))


def entry_json(entry: Any) -> dict[str, Any]:
    """An index entry as the views show it (it holds no address)."""
    return {
        "dag_id": entry.dag_id,
        "run_id": entry.run_id,
        "task_id": entry.task_id,
        "map_index": entry.map_index,
        "ledger_path": entry.ledger_path,
        "hubspot_conn_id": entry.hubspot_conn_id,
        "business_unit_id": entry.business_unit_id,
        "api_version": entry.api_version,
        "written_at": entry.written_at,
        "rows": entry.rows,
        "outcomes": entry.outcomes,
        "ledger_size": entry.ledger_size,
        # Why the ledger is not in the lookup index, when its task said so (read from its summary).
        "not_indexed": entry.extra.get("not_indexed"),
    }


def _ledger_unreadable(entry: Any, exc: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_502_BAD_GATEWAY,
        f"The ledger {entry.ledger_path} cannot be read: {type(exc).__name__}: {exc}",
    )


@router.get("/ti", dependencies=[DAG_READ], response_model=None)
def task_instance(
    user: User, dag_id: str, run_id: str, task_id: str, map_index: str = "-1"
) -> dict[str, Any] | JSONResponse:
    """One task instance's ledger: counts, time to confirmation, deadlines, first page of failures.

    A task instance without a ledger (the UI shows the tab on every task) answers 404 saying so,
    with ``report_available``: a report task has no ledger but may have returned a report.
    """
    index = map_index_of(map_index)
    report = _report_location(dag_id, run_id, task_id, index) is not None
    try:
        entry = _entry_or_error(dag_id, run_id, task_id, index)
    except HTTPException as exc:
        if exc.status_code != status.HTTP_404_NOT_FOUND:
            raise
        return JSONResponse({"detail": exc.detail, "report_available": report}, status.HTTP_404_NOT_FOUND)
    addresses = may_see_addresses(user)
    try:
        first = ledger_view.FirstPage(50, addresses)
        summary = ledger_view.summarize_ledger(entry.ledger_path, data.deadline_reporter(entry), first)
    except (OSError, ValueError) as exc:
        raise _ledger_unreadable(entry, exc) from None
    return {
        "entry": entry_json(entry),
        "summary": asdict(summary),
        # The index counted the file when it was written; a later change (a confirmation not yet
        # re-indexed) shows here rather than silently.
        "index_matches_file": entry.outcomes == summary.outcomes,
        "attention": {"rows": first.rows, "next_after_line": first.cursor},
        "may_see_addresses": addresses,
        "report_available": report,
    }


@router.get("/ti/failures", dependencies=[DAG_READ])
def task_instance_failures(
    user: User,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str = "-1",
    after_line: int | None = None,
    limit: int = Query(50, ge=1, le=ledger_view.MAX_PAGE),
) -> dict[str, Any]:
    """The next page of the rows that failed or were refused, after the row of ``after_line``."""
    entry = _entry_or_error(dag_id, run_id, task_id, map_index_of(map_index))
    try:
        addresses = may_see_addresses(user)
        rows, cursor = ledger_view.attention_page(entry.ledger_path, after_line, limit, addresses)
    except ledger_view.CursorNotFound as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    except (OSError, ValueError) as exc:
        raise _ledger_unreadable(entry, exc) from None
    return {"rows": rows, "next_after_line": cursor}


def _file_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts))[:200]


@router.get("/ti/ledger", dependencies=[DAG_READ])
def download_ledger(
    user: User, dag_id: str, run_id: str, task_id: str, map_index: str = "-1"
) -> StreamingResponse:
    """The ledger file itself, streamed (it holds addresses: only for users who may see them)."""
    require_addresses(user)
    index = map_index_of(map_index)
    entry = _entry_or_error(dag_id, run_id, task_id, index)
    name = _file_name(dag_id, run_id, task_id, *([str(index)] if index >= 0 else [])) + ".csv"
    try:
        chunks = reports.stream_file(entry.ledger_path)
        first = next(chunks, b"")  # open it now: a missing file is an error answer, not a cut stream
    except OSError as exc:
        raise _ledger_unreadable(entry, exc) from None

    def body() -> Any:
        yield first
        yield from chunks

    return StreamingResponse(
        body(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/ti/report", dependencies=[DAG_READ])
def task_report(dag_id: str, run_id: str, task_id: str, map_index: str = "-1") -> StreamingResponse:
    """The HTML report the task returned (``report_html``), sandboxed: no scripts, nothing loaded.

    Readers of the DAG may open it: the report names lines, never addresses (``ledger.report``).
    """
    location = _report_location(dag_id, run_id, task_id, map_index_of(map_index))
    if location is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "This task instance returned no report_html .html file."
        )
    try:
        chunks = reports.stream_file(location)
        first = next(chunks, b"")
    except OSError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"The report cannot be read: {exc}") from None

    def body() -> Any:
        yield first
        yield from chunks

    return StreamingResponse(
        body(), media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": REPORT_CSP}
    )


@router.get("/run", dependencies=[DAG_READ])
def dag_run(dag_id: str, run_id: str) -> dict[str, Any]:
    """Every ledger indexed for one DAG run, with its counts and deadline counts, and the run's
    segments that cannot be read. ``index_matches_file`` false: the ledger changed since it was
    indexed (its counts here are the index's; the task's view counts the file)."""
    try:
        entries, unreadable = data.run_entries(dag_id, run_id)
    except data.IndexUnavailableError as exc:
        raise _unavailable(exc) from None
    return {
        "ledgers": [
            {**entry_json(e), "index_matches_file": data.matches_file(e), "deadlines": _deadline_counts(e)}
            for e in entries
        ],
        "unreadable": [{"path": path, "reason": reason} for path, reason in unreadable],
    }


def _deadline_counts(entry: Any) -> dict[str, Any] | None:
    """The deadline report's counts of one ledger (streamed), ``None`` without a deadline."""
    reporter = data.deadline_reporter(entry)
    if reporter is None:
        return None
    try:
        report = ledger_view.summarize_ledger(entry.ledger_path, reporter).deadlines or {}
    except (OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"deadline": report.get("deadline"), "counts": report.get("counts", {})}


class LookupBody(BaseModel):
    """The lookup's request: the address travels in the body, never in a URL."""

    address: str = Field(min_length=1, max_length=1000)


@router.post("/lookup")
def lookup(request: Request, user: User, body: LookupBody) -> dict[str, Any]:
    """Every ledger row of one address in the DAGs the user may read, and what HubSpot holds now."""
    require_addresses(user)
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send the address as a JSON body.")
    address, problem = examine(body.address)
    if address is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"This is no address to look up: {problem}")
    try:
        result = data.lookup(address, lambda dag_ids: readable_dag_ids(user, dag_ids))
    except data.IndexUnavailableError as exc:
        raise _unavailable(exc) from None
    # Ledgers whose task could not index them (its summary says so): read whole, not passed over.
    from ..ledger.index import Hit

    missing_all = reports.unindexed_ledgers()
    allowed = readable_dag_ids(user, {m["dag_id"] for m in missing_all}) if missing_all else set()
    known = {e.ledger_path for e in result.stale} | {h.entry.ledger_path for h in result.hits}
    for missing in missing_all:
        if missing["dag_id"] not in allowed or missing["ledger_path"] in known:
            continue
        entry = _entry_of_unindexed(**missing)
        known.add(entry.ledger_path)
        result.searched += 1
        try:
            result.hits.extend(Hit(entry, row) for row in data.scan_ledger(entry.ledger_path, address))
            result.stale.append(entry)
        except (OSError, ValueError) as exc:
            why = f"not indexed ({missing['why']}), and unreadable: {exc}"
            result.unreadable.append((entry.ledger_path, why))
    hits = sorted(result.hits, key=lambda h: (h.entry.written_at, h.entry.dag_id, h.entry.run_id))
    rows = [
        {
            "dag_id": hit.entry.dag_id,
            "run_id": hit.entry.run_id,
            "task_id": hit.entry.task_id,
            "map_index": hit.entry.map_index,
            "line": hit.row.get("line"),
            "outcome": hit.row.get("outcome"),
            "reason": hit.row.get("reason"),
            "category": hit.row.get("category"),
            "first_sent_at": hit.row.get("first_sent_at"),
            "confirmed_at": hit.row.get("confirmed_at", ""),
            "requested_at": hit.row.get("requested_at", ""),
            "correlation_id": hit.row.get("correlation_id"),
            "deadline": data.deadline_state(hit.entry, hit.row),
        }
        for hit in hits
    ]
    return {
        "address": address,
        "rows": rows,
        "searched_ledgers": result.searched,
        "stale_ledgers": [entry_json(e) for e in result.stale],
        "unreadable": [{"path": path, "reason": reason} for path, reason in result.unreadable],
        "hubspot_now": [live.read_now(address, s) for s in live.sources(h.entry for h in hits)],
    }
