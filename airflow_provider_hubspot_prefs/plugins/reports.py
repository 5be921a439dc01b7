"""The HTML report a task wrote (its XCom return value's ``report_html``), found and opened.

A report task (the flagship example's) returns ``{"report_html": <path or URI>, ...}``; the
task-instance view links to it. XCom is written by DAG code, so the path is checked before anything
is served: an ``.html`` file, no ``..``, no symbolic link, in the folder of a ledger indexed for the
same DAG run (the flagship writes its report beside its ledger), and not itself a ledger.

A batch task's summary (its return value) also says when its ledger could not be indexed
(``index.written`` false): ``unindexed_ledgers`` finds those, so that a lookup reads them instead of
passing over them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

from ..ledger.outcomes import LEDGER_COLUMNS
from ..ledger.storage import storage_path

CHUNK = 64 * 1024


def returned(dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any] | None:
    """The task instance's return value, when it is a mapping (a batch task's summary)."""
    query = XComModel.get_many(
        run_id=run_id, key="return_value", task_ids=task_id, dag_ids=dag_id, map_indexes=map_index, limit=1
    )
    with create_session() as session:
        row = session.scalars(query).first()
        value: Any = XComModel.deserialize_value(row) if row is not None else None
    return value if isinstance(value, dict) else None


def _folder(location: str) -> str:
    """The folder of a file, spelled the same way for a path, a ``file://`` URI and any other URI."""
    return posixpath.dirname(str(storage_path(location)).rstrip("/"))


def report_location(
    dag_id: str, run_id: str, task_id: str, map_index: int, ledgers: Iterable[str] = ()
) -> str | None:
    """``report_html`` of the task instance's return value, when it is a file the view may serve:
    an ``.html`` file, named without ``..``, no symbolic link, in the folder of one of ``ledgers``
    (the run's indexed ledgers), and no ledger."""
    value = returned(dag_id, run_id, task_id, map_index)
    location = value.get("report_html") if value else None
    if not isinstance(location, str) or not location.lower().endswith(".html"):
        return None
    where = storage_path(location)
    if ".." in PurePosixPath(str(where)).parts or ".." in location.split("/"):
        return None
    if _folder(location) not in {_folder(ledger) for ledger in ledgers}:
        return None
    if isinstance(where, Path):
        try:
            if where.is_symlink() or any(p.is_symlink() for p in where.parents):
                return None
        except OSError:
            return None
    try:
        with storage_path(location).open("rb") as handle:
            head = handle.read(200)
    except OSError:
        return location  # named as it must be; the view says it cannot be read
    if head.lstrip(b"\xef\xbb\xbf").startswith(",".join(LEDGER_COLUMNS[:3]).encode()):
        return None  # a ledger under another name: addresses, not a report
    return location


def unindexed_ledger(summary: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """``(ledger_path, why)`` when a task's summary says its ledger could not be indexed, else None."""
    index = summary.get("index") if summary else None
    if summary and isinstance(index, dict) and index.get("written") is False and summary.get("ledger_path"):
        return str(summary["ledger_path"]), str(index.get("why", ""))
    return None


def unindexed_ledgers() -> list[dict[str, Any]]:
    """Every ledger whose task said it could not index it (``unindexed_ledger`` of its summary),
    with the task instance: ``dag_id``, ``run_id``, ``task_id``, ``map_index``, ``ledger_path``, ``why``."""
    from sqlalchemy import String, cast, select

    query = select(XComModel).where(
        XComModel.key == "return_value",
        # A prefilter the database can run on the summary's JSON text (stored as an object, or as a
        # string holding one: its quotes escaped); each match is checked below.
        cast(XComModel.value, String).like("%written%false%"),
    )
    found: list[dict[str, Any]] = []
    with create_session() as session:
        for row in session.scalars(query).all():
            missing = unindexed_ledger(XComModel.deserialize_value(row))
            if missing is not None:
                ids = {"dag_id": row.dag_id, "run_id": row.run_id, "task_id": row.task_id}
                found.append(
                    {**ids, "map_index": row.map_index, "ledger_path": missing[0], "why": missing[1]}
                )
    return found


def stream_file(location: str) -> Iterator[bytes]:
    """The file's bytes in chunks (a local path or an ``ObjectStoragePath`` URI)."""
    with storage_path(location).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
