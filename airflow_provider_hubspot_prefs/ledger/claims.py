"""Which tries of a task instance claimed its ledger: one marker per try, which no other try writes.

The checkpoint next to the ledger is rewritten by load-check-write, which neither a shared
filesystem nor an object store makes atomic here: a stale try that checked it just before a newer
try claimed it can still write its own state back over the newer claim. A claim marker
(``<ledger>.claim-<task instance>-<lineage>-try-<n>``, no addresses) is written once by its own
try and never over another, so the newest claim stays known whatever the checkpoint says. A try
writes its marker before it reads the state it resumes from, and checks the markers before and
after each checkpoint it writes: a stale try whose write landed after a newer claim finds that
claim, and stops before it sends anything the newer try could not know of.

A marker guards one checkpoint's *lineage*: the state a try created when it found no checkpoint,
named in that checkpoint and in the markers of every try that claims it. A run deleted and created
again has the same identity and numbers its tries from 1 again: once its ledger and checkpoint are
moved aside, its first try starts a new lineage, which the old run's markers do not guard. A
checkpoint written before lineages existed has the lineage "" (markers
``<ledger>.claim-<task instance>-try-<n>``, as then).

When a try ends, the markers of the tries before it go: its own claim is newer, so they guard
nothing. Its own stays: a stale try whose checkpoint write landed after this try ended would,
without it, find no newer claim and take the state over again.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .files import write_atomically


def _prefix(ledger: str, owner: str, lineage: str) -> str:
    from .storage import storage_path

    return f"{storage_path(ledger).name}.claim-{owner[:16]}-{lineage + '-' if lineage else ''}try-"


def _marker(ledger: str, owner: str, lineage: str, try_number: int) -> Any:
    from .storage import storage_path

    return storage_path(ledger).with_name(f"{_prefix(ledger, owner, lineage)}{try_number}")


def claim(ledger: str, owner: str, lineage: str, try_number: int, task: str) -> None:
    """Write try ``try_number``'s marker next to ``ledger`` (``owner``: the task instance's key)."""
    marker = {
        "owner": owner,
        "task": task,
        "lineage": lineage,
        "try_number": try_number,
        "claimed_at": time.time(),
    }
    write_atomically(_marker(ledger, owner, lineage, try_number), lambda out: json.dump(marker, out))


def _names(ledger: str, prefix: str) -> Iterator[str]:
    """Names next to ``ledger`` that may start with ``prefix`` (some others too, filtered by the caller).

    On an object store that lists by key prefix (S3, GCS, ...: ``find(path, prefix=...)``) only the
    markers are listed, not the whole folder; elsewhere the folder is.
    """
    from .storage import storage_path

    folder: Any = storage_path(ledger).parent
    if not isinstance(folder, Path) and "prefix" in inspect.signature(folder.fs.find).parameters:
        for found in folder.fs.find(folder.path, prefix=prefix):
            yield str(found).rsplit("/", 1)[-1]
        return
    try:
        for path in folder.iterdir():  # a listing, not a glob: names may hold '[' (mapped tasks)
            yield str(path.name)
    except (FileNotFoundError, NotADirectoryError):  # nothing written next to the ledger yet
        return


def claims(ledger: str, owner: str, lineage: str) -> dict[int, Any]:
    """The markers of ``lineage`` next to ``ledger``, by try number."""
    prefix = _prefix(ledger, owner, lineage)
    tries = (
        re.fullmatch(r"\d+", name[len(prefix) :])
        for name in _names(ledger, prefix)
        if name.startswith(prefix)
    )
    return {
        int(found.group()): _marker(ledger, owner, lineage, int(found.group())) for found in tries if found
    }


def newest_claim(ledger: str, owner: str, lineage: str) -> tuple[int, Any]:
    """The highest try number with a marker of ``lineage`` next to ``ledger``, and that marker
    (``(0, None)`` if none)."""
    found = claims(ledger, owner, lineage)
    newest = max(found, default=0)
    return newest, found.get(newest)


def release_older(ledger: str, owner: str, lineage: str, try_number: int) -> None:
    """Remove the markers of the tries before ``try_number`` (see the module's doc)."""
    for number, marker in claims(ledger, owner, lineage).items():
        if number < try_number:
            try:
                marker.unlink()
            except FileNotFoundError:  # removed meanwhile by another try that ended
                continue
