"""What follows a ledger once it is final: its deadline report, and its entry in the lookup index.

A batch task announces its ledger before it sends anything (a placeholder segment), and calls
``index_final_ledger`` after each final write of it (at its end, after an error, after a wait
confirmed its submitted rows; the sensor after it confirmed another task's ledger). No step may fail
the task: HubSpot's writes are done and recorded in the ledger, which stays the record; an index that
could not be written is said in the summary (``index.written`` false, with why) and in the log, and
the lookup reads that ledger whole meanwhile.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ..ledger.deadlines import Deadline, deadline_report
from ..ledger.files import read_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerOwner:
    """The task instance a ledger belongs to, and the connection its rows were written through."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    hubspot_conn_id: str | None
    business_unit_id: int | None
    api_version: str | None


def report_deadlines(
    ledger: str, deadline: Deadline | None, warning: Deadline, now: float | None = None
) -> dict[str, Any]:
    """``{"deadlines": report}`` of the ledger's rows against ``deadline``; {} without one."""
    if deadline is None:
        return {}
    at = time.time() if now is None else now
    return {"deadlines": deadline_report(read_rows(ledger), deadline, warning, at)}


def _entry(owner: LedgerOwner, ledger: str, deadline: Deadline | None, warning: Deadline | None) -> Any:
    from ..ledger.index import LedgerEntry

    return LedgerEntry(
        dag_id=owner.dag_id,
        run_id=owner.run_id,
        task_id=owner.task_id,
        map_index=owner.map_index,
        ledger_path=ledger,
        hubspot_conn_id=owner.hubspot_conn_id,
        business_unit_id=owner.business_unit_id,
        api_version=owner.api_version,
        deadline=None if deadline is None else deadline.to_json(),
        warning=None if warning is None else warning.to_json(),
    )


def announce_ledger(
    ledger: str, owner: LedgerOwner, deadline: Deadline | None, warning: Deadline | None
) -> None:
    """Before anything is sent: the ledger's placeholder in the index (``ledger.index.write_placeholder``),
    so that a task killed before its end, or unable to index its final ledger, leaves a ledger the
    lookup still reads. A placeholder that cannot be written is logged."""
    from ..ledger.index import IndexUnavailable, index_root, write_placeholder

    try:
        write_placeholder(_entry(owner, ledger, deadline, warning), index_root())
    except (IndexUnavailable, OSError, ValueError) as exc:
        log.warning("The ledger %s is not announced in the lookup index: %s", ledger, exc)


def index_final_ledger(
    ledger: str, owner: LedgerOwner, deadline: Deadline | None, warning: Deadline | None
) -> dict[str, Any]:
    """Write (or replace) the ledger's segment of the lookup index; ``{"index": {...}}`` says how it went."""
    from ..ledger.index import IndexUnavailable, index_root, index_secret, write_segment

    try:
        root = index_root()
        entry = write_segment(_entry(owner, ledger, deadline, warning), index_secret(root), root)
    except (IndexUnavailable, OSError, ValueError) as exc:
        log.warning("The ledger %s is not in the lookup index: %s", ledger, exc)
        return {"index": {"written": False, "why": str(exc)}}
    return {"index": {"written": True, "rows": entry.rows}}
