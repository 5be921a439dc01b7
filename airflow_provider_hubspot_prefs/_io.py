"""Files the tasks read and write: local paths or any ``ObjectStoragePath`` URI (s3://, gs://, ...)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from .client.redaction import redact_email


def storage_path(location: Any) -> Any:
    """A ``Path`` for plain local paths, an ``ObjectStoragePath`` for URIs (imported only then)."""
    if isinstance(location, Path):
        return location
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        from airflow.sdk import ObjectStoragePath

        return location if isinstance(location, ObjectStoragePath) else ObjectStoragePath(text)
    return Path(text.removeprefix("file://"))


@contextmanager
def open_text(location: Any) -> Iterator[IO[str]]:
    """Read a UTF-8 text file (files are written by ``ledger.files.write_atomically``, privately)."""
    with storage_path(location).open("r", encoding="utf-8", newline="") as handle:
        yield handle


def read_addresses(location: Any) -> list[str]:
    """One address per line, read as the batch operators read their input (``ledger.inputs``: BOM,
    encodings, invisible characters); blank lines skipped. A line that is no address is kept as its
    text, so that a wait names it instead of passing over it."""
    from .ledger.inputs import open_input, records_from_text

    with open_input(location) as stream:
        return [r.address or r.text for r in records_from_text(stream) if r.problem != "empty line"]


def safe_segment(value: object) -> str:
    """A file-name segment that keeps ``value`` distinct: different values never share one.

    Characters outside ``[A-Za-z0-9_-]`` are percent-encoded (``:`` -> ``%3A``, ``+`` -> ``%2B``),
    and a leading dot too, so that ``.`` and ``..`` stay names.
    """
    text = quote(str(value), safe="-_.~")
    return "%2E" + text[1:] if text.startswith(".") else text or "%00"


def task_key(context: Any) -> list[str]:
    ti = context["ti"]
    # "[" never appears in a safe_segment, so the map index cannot collide with a task id.
    task = safe_segment(ti.task_id) + (f"[{ti.map_index}]" if getattr(ti, "map_index", -1) >= 0 else "")
    return [safe_segment(ti.dag_id), safe_segment(ti.run_id), task]


def default_ledger_path(context: Any) -> str:
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    dag, run, task = task_key(context)
    return str(Path(home) / "hubspot_prefs" / "ledgers" / dag / run / f"{task}.csv")


def sample(addresses: list[str], redact: bool, size: int = 5) -> list[str]:
    """A few addresses for a message, redacted unless redaction is off."""
    return [redact_email(a) if redact else a for a in addresses[:size]]


def task_identity(context: Any) -> Any:
    """The task instance and try of ``context``, with the deployment it runs in (its API server URL)."""
    from airflow.sdk import conf

    from .ledger.checkpoint import TaskIdentity

    ti = context["ti"]
    deployment = conf.get("core", "execution_api_server_url", fallback="") or conf.get(
        "api", "base_url", fallback=""
    )
    map_index = getattr(ti, "map_index", None)
    return TaskIdentity(
        deployment=str(deployment or ""),
        dag_id=str(ti.dag_id),
        run_id=str(ti.run_id),
        task_id=str(ti.task_id),
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(getattr(ti, "try_number", 1) or 1),
    )
