"""Where the ledger's files live: a local path or any ``ObjectStoragePath`` URI (s3://, gs://, ...).

Plain paths stay ``pathlib.Path``; a URI becomes Airflow's ``ObjectStoragePath``, imported only
then, so that the ledger needs Airflow only for the storage Airflow gives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


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
