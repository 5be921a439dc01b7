"""The HTML report a task wrote (its XCom return value's ``report_html``), found and opened.

A report task (the flagship example's) returns ``{"report_html": <path or URI>, ...}``; the
task-instance view links to it. Only a file whose name ends in ``.html`` is served, so that an XCom
naming some other file (a ledger, a key) cannot make the view hand it out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

from ..ledger.storage import storage_path

CHUNK = 64 * 1024


def report_location(dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    """``report_html`` of the task instance's return value, when it names an ``.html`` file."""
    query = XComModel.get_many(
        run_id=run_id, key="return_value", task_ids=task_id, dag_ids=dag_id, map_indexes=map_index, limit=1
    )
    with create_session() as session:
        row = session.scalars(query).first()
        value: Any = XComModel.deserialize_value(row) if row is not None else None
    location = value.get("report_html") if isinstance(value, dict) else None
    if not isinstance(location, str) or not location.lower().endswith(".html"):
        return None
    return location


def stream_file(location: str) -> Iterator[bytes]:
    """The file's bytes in chunks (a local path or an ``ObjectStoragePath`` URI)."""
    with storage_path(location).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
