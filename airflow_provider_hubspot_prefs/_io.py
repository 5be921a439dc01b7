"""Files the tasks read and write: local paths or any ``ObjectStoragePath`` URI (s3://, gs://, ...)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

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
def open_text(location: Any, mode: str = "r") -> Iterator[IO[str]]:
    path = storage_path(location)
    if "w" in mode and isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8", newline="") as handle:
        yield handle


def exists(location: Any) -> bool:
    return bool(storage_path(location).exists())


def read_addresses(location: Any) -> list[str]:
    """One address per line (blank lines skipped)."""
    with open_text(location) as handle:
        return [line.strip() for line in handle if line.strip()]


def safe_segment(value: object) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip("_") or "_"


def task_key(context: Any) -> list[str]:
    ti = context["ti"]
    task = safe_segment(ti.task_id) + (f"-{ti.map_index}" if getattr(ti, "map_index", -1) >= 0 else "")
    return [safe_segment(ti.dag_id), safe_segment(ti.run_id), task]


def default_ledger_path(context: Any) -> str:
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    dag, run, task = task_key(context)
    return str(Path(home) / "hubspot_prefs" / "ledgers" / dag / run / f"{task}.csv")


def work_store_path(context: Any) -> Path:
    """Local and stable across tries of the same task instance, so that a retry resumes."""
    dag, run, task = task_key(context)
    return Path(tempfile.gettempdir()) / "hubspot_prefs_work" / dag / run / f"{task}.sqlite"


def sample(addresses: list[str], redact: bool, size: int = 5) -> list[str]:
    """A few addresses for a message, redacted unless redaction is off."""
    return [redact_email(a) if redact else a for a in addresses[:size]]
