"""Which tries of a task instance claimed its ledger: one marker per try, which no other try writes.

The checkpoint next to the ledger is rewritten by load-check-write, which neither a shared
filesystem nor an object store makes atomic here: a stale try that checked it just before a newer
try claimed it can still write its own state back over the newer claim. A claim marker
(``<ledger>.claim-<task instance>-try-<n>``, no addresses) is written once by its own try and never
over another, so the newest claim stays known whatever the checkpoint says. A try writes its
marker before it reads the state it resumes from, and checks the markers before and after each
checkpoint it writes: a stale try whose write landed after a newer claim finds that claim, and
stops before it sends anything the newer try could not know of.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .files import write_atomically


def _prefix(ledger: str, owner: str) -> str:
    from .storage import storage_path

    return f"{storage_path(ledger).name}.claim-{owner[:16]}-try-"


def claim(ledger: str, owner: str, try_number: int, task: str) -> None:
    """Write try ``try_number``'s marker next to ``ledger`` (``owner``: the task instance's key)."""
    from .storage import storage_path

    marker = {"owner": owner, "task": task, "try_number": try_number, "claimed_at": time.time()}
    name = f"{_prefix(ledger, owner)}{try_number}"
    write_atomically(storage_path(ledger).with_name(name), lambda out: json.dump(marker, out))


def newest_claim(ledger: str, owner: str) -> int:
    """The highest try number with a marker next to ``ledger`` (0 if none)."""
    from .storage import storage_path

    prefix = _prefix(ledger, owner)
    folder: Any = storage_path(ledger).parent
    try:
        names = [str(path.name) for path in folder.iterdir()]  # a listing: names may hold '[' (mapped)
    except (FileNotFoundError, NotADirectoryError):  # nothing written next to the ledger yet
        return 0
    tries = (re.fullmatch(r"\d+", name[len(prefix) :]) for name in names if name.startswith(prefix))
    return max((int(found.group()) for found in tries if found), default=0)
