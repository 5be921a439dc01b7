"""The views' one door to the ledger index and the deadlines: every call the plugin makes to them.

The index (``ledger.index``) says which ledger a task instance wrote and finds an address across
ledgers; the deadlines (``ledger.deadlines``) judge rows against the deadline the task was given.
Both are imported here only, inside functions, so that importing the plugin stays cheap and a
change of their interfaces touches this module alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..ledger.index import LedgerEntry, LookupResult


class IndexUnavailableError(RuntimeError):
    """The index cannot be read (not configured, no key, storage unreachable); the text says why."""


def _root_and_secret(need_secret: bool) -> tuple[str, bytes | None]:
    from ..ledger import index

    try:
        root = index.index_root()
        return root, index.index_secret(root) if need_secret else None
    except index.IndexUnavailable as exc:
        raise IndexUnavailableError(str(exc)) from None
    except OSError as exc:
        raise IndexUnavailableError(f"the index storage cannot be read: {exc}") from None


def find_entry(dag_id: str, run_id: str, task_id: str, map_index: int) -> LedgerEntry | None:
    """The ledger a task instance wrote, as indexed when it was final; ``None`` when it wrote none."""
    from ..ledger import index

    root, _ = _root_and_secret(need_secret=False)
    try:
        return index.find_entry(root, dag_id, run_id, task_id, map_index)
    except OSError as exc:
        raise IndexUnavailableError(f"the index storage cannot be read: {exc}") from None


def run_entries(dag_id: str, run_id: str) -> tuple[list[LedgerEntry], list[tuple[str, str]]]:
    """Every ledger indexed for one DAG run, by task and map index, and ``(segment, why)`` of the
    segments of the run that cannot be read (said, not passed over)."""
    from ..ledger import index

    root, _ = _root_and_secret(need_secret=False)
    try:
        found, unreadable = index.run_segments(root, dag_id, run_id)
    except OSError as exc:
        raise IndexUnavailableError(f"the index storage cannot be read: {exc}") from None
    return sorted(found, key=lambda e: (e.task_id, e.map_index)), unreadable


def matches_file(entry: LedgerEntry) -> bool | None:
    """Whether the ledger is still the file the entry counted (its size); None when it cannot be read."""
    from ..ledger import index

    try:
        return index.ledger_size(entry.ledger_path) == entry.ledger_size
    except OSError:
        return None


def scan_ledger(location: str, address: str) -> list[dict[str, str]]:
    """The rows of ``address`` in a ledger the index does not hold, read whole."""
    from ..ledger import index

    return index.scan_ledger(location, address)


def lookup(address: str, readable: Callable[[set[str]], set[str]]) -> LookupResult:
    """Every indexed row of ``address`` in the ledgers of the DAGs ``readable`` lets through.

    ``readable`` gets the DAGs that have indexed ledgers (header reads) and returns those the user
    may read; only their segments are searched. The secret is fetched first, so that an index that
    cannot be keyed says so before any storage is touched.
    """
    from ..ledger import index

    root, secret = _root_and_secret(need_secret=True)
    assert secret is not None
    try:
        # The DAG folders decide what is asked, not the headers that could be read: a DAG whose
        # only segment is damaged is still searched, and the damage reported.
        dag_ids = readable(index.dag_ids(root))
        return index.lookup(address, secret, root=root, dag_ids=dag_ids)
    except OSError as exc:
        raise IndexUnavailableError(f"the index storage cannot be read: {exc}") from None


def _deadlines(entry: LedgerEntry) -> tuple[Any, Any] | None:
    """The entry's deadline and warning as ``Deadline`` objects; ``None`` when no deadline was set."""
    if not entry.deadline:
        return None
    from ..ledger.deadlines import Deadline

    deadline = Deadline.from_json(entry.deadline)
    # An entry without a warning (written by hand, or by a writer that had none) warns of nothing:
    # a zero warning makes no row "near"; the past-due rows are listed all the same.
    warning = Deadline.from_json(entry.warning) if entry.warning else Deadline.parse(0, deadline.timezone)
    return deadline, warning


def deadline_reporter(entry: LedgerEntry, now: float | None = None) -> Any:
    """A function of the ledger's rows giving ``ledger.deadlines.deadline_report`` for this entry's
    deadline, or ``None`` when the task set no deadline."""
    judged = _deadlines(entry)
    if judged is None:
        return None
    from ..ledger.deadlines import deadline_report

    deadline, warning = judged
    moment = time.time() if now is None else now

    def report(rows: Iterable[Mapping[str, str]]) -> dict[str, Any]:
        return dict(deadline_report(rows, deadline, warning, moment))

    return report


def deadline_state(entry: LedgerEntry, row: Mapping[str, str], now: float | None = None) -> dict[str, Any]:
    """One row's deadline state (``ledger.deadlines.assess``) and its due time; ``none`` without one."""
    judged = _deadlines(entry)
    if judged is None:  # not "none", which says the row has no requested_at
        return {"state": "no_deadline", "due_at": None}
    from ..ledger.deadlines import assess

    deadline, warning = judged
    state, due = assess(row, deadline, warning, time.time() if now is None else now)
    return {"state": str(getattr(state, "value", state)), "due_at": due}
