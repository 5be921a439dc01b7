"""Ledger files: written whole or not at all, read back, summed up, merged and confirmed.

A local ledger is written beside its target and renamed over it (readers never see half a file);
for object storage it is written to a private local file first and uploaded once whole. Files are
created 0600 in folders created 0700 (``private_files``): a ledger holds addresses.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from .outcomes import EARLIER_LEDGER_COLUMNS, LEDGER_COLUMNS, Outcome
from .private_files import make_folders, private_temp_file, sync_folder
from .store import SAME_CHANGE_PREFIX, iso_utc, parse_iso_utc

T = TypeVar("T")

# How far HubSpot's clock may run behind ours when telling "changed by this run" from "was already
# so": a misjudgement only swaps the two, never loses a row.
CLOCK_SKEW_TOLERANCE = 2.0


# The files this process is writing, with the threads writing them: ``on_kill`` runs on the main
# thread (from a signal handler) and must not start a write of a file that thread was writing.
# Single dict operations are atomic, and a signal handler must not wait for a lock its thread holds.
_writes: dict[tuple[str, int, int], None] = {}
_write_ids = itertools.count()


def _target(location: Any) -> str:
    from .storage import storage_path

    path = storage_path(location)
    return os.path.abspath(path) if isinstance(path, Path) else str(path)


@contextlib.contextmanager
def _writing(location: Any) -> Iterator[None]:
    key = (_target(location), threading.get_ident(), next(_write_ids))
    _writes[key] = None
    try:
        yield
    finally:
        del _writes[key]


def writers_of(location: Any) -> set[int]:
    """The ids of the threads of this process writing ``location`` (``write_atomically``) right now."""
    target = _target(location)
    return {thread for written, thread, _ in list(_writes) if written == target}


def write_atomically(location: Any, write: Callable[[IO[str]], T]) -> T:
    """Call ``write`` with a text stream whose content replaces ``location`` only once complete.

    The stream goes to a new 0600 file of its own beside ``location`` (a unique name: two writes of
    the same file, on two threads or one interrupted by a signal, never share it), which is synced
    and renamed over ``location``; the folder is synced after the rename where the platform allows.
    """
    from .storage import storage_path

    path = storage_path(location)
    # Registered before the temp file exists: a signal handler (``on_kill``) that sees this write's
    # temp file also sees the write, and never starts one of its own beneath it.
    with _writing(location):
        if not isinstance(path, Path):
            # Object stores have no folders (a no-op there); a filesystem behind a URI needs them.
            with contextlib.suppress(OSError, NotImplementedError):
                path.parent.mkdir(parents=True, exist_ok=True)
            # An object-store file publishes what was written when it is closed, even after an
            # error: write a private local copy first and upload it once whole.
            handle, local = private_temp_file(Path(tempfile.gettempdir()), "")
            try:
                with open(handle, "w", encoding="utf-8", newline="") as out:
                    result = write(out)
                path.fs.put_file(str(local), path.path)
            finally:
                os.unlink(local)
            return result
        make_folders(path.parent)
        handle, aside = private_temp_file(path.parent, path.name)
        try:
            with open(handle, "w", encoding="utf-8", newline="") as out:
                result = write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(aside, path)
            sync_folder(path.parent)
        finally:
            aside.unlink(missing_ok=True)
        return result


def read_rows(location: Any) -> Iterator[dict[str, str]]:
    """The rows of a ledger of this provider, streamed; ``ValueError`` for any other CSV.

    A ledger of an earlier version (without ``requested_at`` and ``confirmed_at``) reads with those
    two empty: nothing was recorded for them.
    """
    from .storage import open_text

    with open_text(location) as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        if header not in (LEDGER_COLUMNS, EARLIER_LEDGER_COLUMNS):
            raise ValueError(f"{location} is not a ledger of this provider version (header {list(header)})")
        missing = dict.fromkeys(LEDGER_COLUMNS[len(header) :], "")
        for row in reader:
            yield {**dict(zip(header, row, strict=True)), **missing}  # a short row is a damaged file


def summarize(location: Any) -> dict[str, Any]:
    """Counts of a ledger: ``{"ledger_path", "total_inputs", "outcomes": {outcome: n}}``."""
    counts: Counter[str] = Counter(row["outcome"] for row in read_rows(location))
    return {"ledger_path": str(location), "total_inputs": sum(counts.values()), "outcomes": dict(counts)}


def merge_ledgers(ledger_paths: Iterable[str], out_path: str) -> dict[str, Any]:
    """Concatenate chunk ledgers (given in range order) into ``out_path``; return its summary."""
    counts: Counter[str] = Counter()

    def write(out: IO[str]) -> None:
        writer = csv.writer(out)
        writer.writerow(LEDGER_COLUMNS)
        for path in ledger_paths:
            for row in read_rows(path):
                counts[row["outcome"]] += 1
                writer.writerow(row[c] for c in LEDGER_COLUMNS)

    write_atomically(out_path, write)
    return {"ledger_path": out_path, "total_inputs": sum(counts.values()), "outcomes": dict(counts)}


def submitted_addresses(location: Any) -> list[str]:
    """Addresses whose rows still say ``submitted``: what a wait has to confirm."""
    return [row["subscriber_id"] for row in read_rows(location) if row["outcome"] == Outcome.SUBMITTED.value]


def attribute(first_sent_at: float | None, changed_at: float | None) -> bool:
    """Whether a state HubSpot reports was reached by this run: its timestamp is not older than our send."""
    if changed_at is None:
        return False
    if first_sent_at is None:
        return True
    return changed_at >= first_sent_at - CLOCK_SKEW_TOLERANCE


def confirm_submitted(
    location: Any,
    reached_at: Mapping[str, float],
    applied: Outcome,
    unchanged: Outcome,
    seen_at: float | None = None,
) -> Counter[str]:
    """Bring ``submitted`` rows whose contact HubSpot now reports in the requested state to their outcome.

    ``reached_at`` maps an address to the timestamp HubSpot gives that state. A state dated from this
    run's first send on was this run's change (``applied``); an older one was already so
    (``unchanged``), whatever the write's answer said. Rows not in ``reached_at`` stay submitted.
    Confirmed rows, and the ``duplicate`` rows of the same address (the same change, sent once),
    get ``confirmed_at``: ``seen_at`` (default now), which is no earlier than the read that saw it.
    Returns how many rows took each outcome.
    """
    changed: Counter[str] = Counter()
    seen = iso_utc(time.time() if seen_at is None else seen_at) or ""
    confirmed: set[str] = set()

    def rows() -> Iterator[dict[str, str]]:
        for row in read_rows(location):
            address = row["subscriber_id"]
            when = reached_at.get(address) if row["outcome"] == Outcome.SUBMITTED.value else None
            if when is not None:
                mine = attribute(parse_iso_utc(row["first_sent_at"]), when)
                row["outcome"] = (applied if mine else unchanged).value
                row["reason"] = (
                    "confirmed COMPLETE by HubSpot"
                    if mine
                    else "confirmed COMPLETE; HubSpot's status dates from before this run sent it"
                )
                row["operation_status"] = "COMPLETE"
                row["confirmed_at"] = seen
                confirmed.add(address)
                changed[row["outcome"]] += 1
            elif (
                address in confirmed
                and row["outcome"] == Outcome.DUPLICATE.value
                and row["reason"].startswith(SAME_CHANGE_PREFIX)
                and not row["confirmed_at"]
            ):
                row["confirmed_at"] = seen
            yield row

    def write(out: IO[str]) -> None:
        # The new file is complete before it replaces the one being read (see write_atomically).
        writer = csv.writer(out)
        writer.writerow(LEDGER_COLUMNS)
        writer.writerows([row[c] for c in LEDGER_COLUMNS] for row in rows())

    if reached_at:
        write_atomically(location, write)
    return changed
