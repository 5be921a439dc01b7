"""Who owns a batch's state, and how it survives a retry on this machine or on another.

Three things hold a batch task instance's state:

- the **work store** (``store.WorkStore``): a private SQLite file on the worker, exact to the
  request (each input's first send time is committed before it is sent);
- the **ledger** (CSV at ``ledger_path``): written at the end, on kill, and every
  ``flush_interval`` seconds while sending; rows not answered yet say ``pending``;
- the **checkpoint** (``<ledger_path>.checkpoint.json``, next to the ledger): which task instance
  and which try own the state, a version bumped on every write, which work store wrote it, and
  the *send windows*: before a
  line is first sent, a window ``[first, last, since]`` covering it is saved, so that a retry that
  cannot see the work store (another worker) knows which unanswered inputs may have been applied and
  from when, and attributes HubSpot's answers truthfully.

A try resumes from its own machine's work store when that store wrote the checkpoint last (it is
then the newest state); otherwise it rebuilds the store from the input, the ledger and the send
windows. A try older than the checkpoint's owner writes nothing (``StaleTryError``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .claims import claim, newest_claim, release_older
from .files import read_rows, write_atomically, writers_of
from .ingestion import Ingestion
from .inputs import InputRecord
from .private_files import private_folder
from .spool import LedgerSpool, SpoolMark, write_ledger
from .store import InputChangedError, StaleTryError, WorkStore, sweep_stale

log = logging.getLogger(__name__)

FORMAT = 1
# Seconds on_kill waits for another thread's write of the ledger (the checkpoint thread) to end.
KILL_WAIT = 10.0


class CheckpointError(ValueError):
    """The checkpoint next to the ledger cannot be used by this task run: retrying will not help."""


class LedgerOwnedElsewhereError(CheckpointError):
    """The ledger path already holds the state of another task instance: it is not this run's."""


CHECKPOINT_SUFFIX = ".checkpoint.json"


@dataclass(frozen=True)
class TaskIdentity:
    """What makes a task instance unique, kept whole (hashed for file names, never lossy)."""

    deployment: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @property
    def key(self) -> str:
        parts = [self.deployment, self.dag_id, self.run_id, self.task_id, self.map_index]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def describe(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id} / {self.run_id} / {self.task_id}{mapped}"


def default_work_dir() -> Path:
    """``$HUBSPOT_PREFS_WORK_DIR``, else a per-user folder in the system temp dir (its name is
    predictable: ``private_files.private_folder`` refuses it unless it is this user's and private)."""
    chosen = os.environ.get("HUBSPOT_PREFS_WORK_DIR")
    return Path(chosen) if chosen else Path(tempfile.gettempdir()) / f"hubspot_prefs_work-{os.getuid()}"


class BatchState:
    """The state of one batch task instance's try: its work store, ledger and checkpoint.

    :param identity: the task instance and try.
    :param ledger: where the ledger goes (local path or object-storage URI).
    :param work_dir: folder of the local work store (default: private folder in the temp dir).
    :param flush_interval: seconds between ledger checkpoints while sending (0: only at the end).
    :param window_lines: how many lines one send window covers ahead of the line being sent.
    """

    # Seconds between looks at the checkpoint for a newer try while sending within a window.
    OWNER_CHECK_INTERVAL = 5.0

    def __init__(
        self,
        identity: TaskIdentity,
        ledger: str,
        *,
        work_dir: Path | None = None,
        flush_interval: float = 60.0,
        window_lines: int = 4000,
        replan_on_change: bool = False,
    ) -> None:
        self.identity = identity
        self.ledger = ledger
        self.checkpoint_path = ledger + CHECKPOINT_SUFFIX
        self.work_dir = work_dir or default_work_dir()
        name = hashlib.sha256(f"{identity.key}\n{ledger}".encode()).hexdigest()[:40]
        self.work_path = self.work_dir / f"{name}.sqlite"
        self.flush_interval = flush_interval
        self.window_lines = window_lines
        # A task that decides every row afresh from what HubSpot holds (the consent sync) can start
        # over when its input changed since the checkpoint; line-by-line resume cannot.
        self.replan_on_change = replan_on_change
        self.replanned: str | None = None  # why this try starts over instead of resuming
        self.store: WorkStore | None = None
        # A fresh start sends while the input is still being read: this reads the rest (see ``open``).
        self.ingestion: Ingestion | None = None
        self.resumed: str | None = None  # how this try found its state: None, "local", "checkpoint"
        self.spool: LedgerSpool | None = None
        self._state: dict[str, Any] = {}
        # The lineage of the checkpoint this try claimed (``claims``); None until it claimed one.
        self._lineage: str | None = None
        self._writer_id = ""  # the work store's id, named in the checkpoints it writes
        self._saving = threading.Lock()  # the sending thread and the ledger checkpoint thread both save
        self._checkpointing: threading.Thread | None = None
        self._checkpoint_error: BaseException | None = None
        self.outcomes: Counter[str] | None = None  # of the last ledger this try wrote
        self._last_flush = time.monotonic()
        self._last_owner_check = time.monotonic()

    # -- the checkpoint file ---------------------------------------------------------------------

    def _load(self) -> dict[str, Any] | None:
        from .storage import open_text

        try:
            with open_text(self.checkpoint_path) as handle:
                state = json.load(handle)
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(
                f"{self.checkpoint_path} is not a readable checkpoint ({exc}); it was damaged or written by "
                "something else. Move it and the ledger aside to start this task over."
            ) from None
        if not isinstance(state, dict) or state.get("owner") != self.identity.key:
            owner = state.get("task") if isinstance(state, dict) else "unknown"
            raise LedgerOwnedElsewhereError(
                f"{self.ledger} already holds the ledger of another task run ({owner}); "
                f"give {self.identity.describe()} a ledger_path of its own"
            )
        return dict(state)

    def _check_current(self, state: dict[str, Any] | None) -> None:
        """``StaleTryError`` if a newer try owns the checkpoint ``state`` (None: the one this try
        wrote last) or claimed its lineage (its marker, named)."""
        lineage = self._lineage if state is None else str(state.get("lineage", ""))
        owner = int((state or {}).get("try_number", 0))
        claimed, marker = (
            (0, None) if lineage is None else newest_claim(self.ledger, self.identity.key, lineage)
        )
        mine = self.identity.try_number
        newest = max(owner, claimed)
        if newest > mine:
            seen = f" (its claim marker: {marker})" if claimed == newest and marker is not None else ""
            raise StaleTryError(
                f"try {newest} took over {self.identity.describe()}; try {mine} writes nothing more{seen}"
            )

    def _claim(self, lineage: str) -> None:
        """Write this try's marker in ``lineage`` (before it reads the state it will trust)."""
        claim(self.ledger, self.identity.key, lineage, self.identity.try_number, self.identity.describe())
        self._lineage = lineage

    def _load_claimed(self) -> dict[str, Any] | None:
        """The checkpoint, read after this try claimed its lineage, and ``StaleTryError`` if a newer
        try owns it. A checkpoint of another lineage than the one claimed (another try created the
        state meanwhile) is claimed too, then read again."""
        state = self._load()
        while state is not None and str(state.get("lineage", "")) != self._lineage:
            self._claim(str(state.get("lineage", "")))
            state = self._load()
        self._check_current(state)
        return state

    def _save(self, **changes: Any) -> None:
        """Write the checkpoint with ``changes``, unless a newer try took over since.

        Load, check and write are not one atomic step: a newer try may claim the ledger in between,
        and this write then lands over its checkpoint. So the claims are looked at again after the
        write: this try stops (``StaleTryError``) before it sends anything the window being saved
        covers, and the newer try writes its checkpoint back when it next looks (``check_still_current``).
        """
        with self._saving:
            current = self._load_claimed()
            state = {**self._state, **changes, "lineage": self._lineage}
            state["version"] = int((current or {}).get("version", 0)) + 1
            state["updated_at"] = time.time()
            state["writer"] = self._writer_id
            write_atomically(self.checkpoint_path, lambda out: json.dump(state, out, indent=1))
            self._state = state
            self._check_current(None)

    # -- a try's life ----------------------------------------------------------------------------

    def open(self, records: Callable[[], Iterable[InputRecord]]) -> WorkStore:
        """Claim the state for this try and return the work store to send from."""
        private_folder(self.work_dir)
        swept = sweep_stale(self.work_dir)
        if swept:
            log.info("Removed %d work store(s) untouched for a week", swept)
        found = self._load()
        self._check_current(found)  # another task run's ledger, or a newer try: claim nothing
        # The claim comes before the state is read: an older try that saved a send window after this
        # read finds the claim right after its write, and sends nothing of that window. Without a
        # checkpoint this try starts a lineage: markers left by a run whose state was moved aside
        # (deleted and created again: the same identity, tries from 1) do not guard it.
        self._claim(uuid.uuid4().hex[:16] if found is None else str(found.get("lineage", "")))
        state = self._load_claimed()
        local = WorkStore.open_existing(self.work_path)
        if local is not None:
            local.check_owner(self.identity.try_number)
        # This machine's store is the newest state when it wrote the checkpoint last: it is always
        # ahead of what it wrote. Otherwise another store (another worker, or a rebuilt one) wrote
        # since, and the checkpoint is the truth to rebuild from.
        if (
            local is not None
            and local.ingested
            and state is not None
            and state.get("writer") == local.store_id
        ):
            self.resumed = "local"
            store = local
        else:
            if local is not None:
                local.remove()
            store = WorkStore(self.work_path)
            try:
                if state is None:
                    # Nothing was sent before: sending may start from the first lines read.
                    self.ingestion = Ingestion(store, records())
                else:
                    store.ingest(records())
                    self.resumed = "checkpoint"
                    if self.replan_on_change:
                        self._replan_if_changed(store, state)
                    else:
                        if state.get("ledger"):
                            store.restore(read_rows(self.ledger), self.checkpoint_path)
                        for first, last, since in state.get("windows", []):
                            store.mark_sent_window(int(first), int(last), float(since))
            except BaseException:
                store.remove()  # half-built from an input that could not be read: nothing to keep
                raise
        store.reopen_retried()
        store.claim(self.identity.try_number)
        self.store = store
        self._writer_id = store.store_id
        self.spool = LedgerSpool(store)
        self._state = {
            "format": FORMAT,
            "owner": self.identity.key,
            "task": self.identity.describe(),
            # Whose ledger this is, whole (``ledger_writer``): a sensor that confirms it re-indexes
            # it for that task, not for itself. ("writer" is the work store that wrote the file.)
            "task_instance": {
                "dag_id": self.identity.dag_id,
                "run_id": self.identity.run_id,
                "task_id": self.identity.task_id,
                "map_index": self.identity.map_index,
            },
            "windows": [],
            "sent_through": 0,
            "ledger": None,
            **(state or {}),
            "try_number": self.identity.try_number,
        }
        self._save()
        return store

    def _replan_if_changed(self, store: WorkStore, state: dict[str, Any]) -> None:
        """Resume from the ledger if the input is the one it describes; else start over.

        A task that replans keeps its own record of what it sent, per contact (the consent sync's
        journal, written before each batch leaves): the send windows, which number lines and cover
        lines ahead of those sent, are not used.
        """
        if not state.get("ledger"):
            return
        try:
            store.restore(read_rows(self.ledger), self.checkpoint_path)
        except InputChangedError as exc:
            self.replanned = str(exc)
            log.warning("Starting over instead of resuming: %s", self.replanned)

    def check_still_current(self) -> None:
        """``StaleTryError`` if a newer try owns the checkpoint (e.g. before rewriting the ledger).

        A try that owns it and finds it written by an older try (whose write landed after this try's
        claim, see ``_save``) writes its own state back.
        """
        state = self._load_claimed() if self._lineage is not None else self._load()
        self._check_current(state)
        older = state is not None and int(state.get("try_number", 0)) < self.identity.try_number
        if older and self._writer_id:
            log.warning("An older try wrote over this try's checkpoint; writing it back")
            self._save()

    def before_send(self, lines: list[int]) -> None:
        """Called before a chunk is sent: stop if a newer try took over; cover it by a send window."""
        assert self.store is not None
        self.store.check_owner(self.identity.try_number)
        last = max(lines)
        through = int(self._state["sent_through"])
        if last > through:
            upto = last + self.window_lines
            self._save(windows=[*self._state["windows"], [through + 1, upto, time.time()]], sent_through=upto)
        elif time.monotonic() - self._last_owner_check >= self.OWNER_CHECK_INTERVAL:
            # A newer try on another machine shows only in the checkpoint: look now and then, not
            # only when the next window is saved (thousands of lines on).
            self.check_still_current()
        else:
            return
        self._last_owner_check = time.monotonic()

    def after_answer(self) -> None:
        """Called after a chunk's outcome is recorded: spool the rows finished since; checkpoint
        the ledger now and then, on a thread of its own so that sending goes on meanwhile."""
        assert self.store is not None
        if self.spool is not None:
            self.spool.advance()
        if self._checkpoint_error is not None:  # the last checkpoint failed: fail as writing it here would
            error, self._checkpoint_error = self._checkpoint_error, None
            raise error
        due = self.flush_interval > 0 and time.monotonic() - self._last_flush >= self.flush_interval
        if not due or (self._checkpointing is not None and self._checkpointing.is_alive()):
            return
        self._last_flush = time.monotonic()
        if not self._input_read():
            return
        mark = self.spool.mark() if self.spool is not None else None
        self._checkpointing = threading.Thread(
            target=self._checkpoint, args=(mark,), name="ledger-checkpoint", daemon=True
        )
        self._checkpointing.start()

    def _input_read(self) -> bool:
        """True once the input is read to its end; a ledger written before would lack lines."""
        assert self.store is not None
        if self.store.ingested:
            return True
        log.info("Ledger not written yet: the input is read through line %d only", self.store.read_through)
        return False

    def _checkpoint(self, mark: SpoolMark | None) -> None:
        """The ledger checkpoint thread: its own connection to the work store reads a consistent state."""
        try:
            reader = WorkStore(self.work_path)
            try:
                self._write(reader, mark)
            finally:
                reader.close()
        except BaseException as exc:
            self._checkpoint_error = exc

    def _wait_for_checkpoint(self) -> None:
        if self._checkpointing is not None:
            self._checkpointing.join()
            self._checkpointing = None
        if self._checkpoint_error is not None:  # the ledger is written again now: that write decides
            log.warning("A ledger checkpoint failed: %s", self._checkpoint_error)
            self._checkpoint_error = None

    def write_ledger(self, *, partial_input: bool = False, spooled: bool = True) -> int:
        """Write the ledger from the work store (never over a complete one with an incomplete one).

        While the input is still being read the ledger would lack the lines not read yet, so it is
        not written then, unless ``partial_input``: the input cannot be read further, and the
        ledger says what happened to each line that was read. ``spooled=False`` writes every row
        from the store, without the spool of finished rows.
        """
        assert self.store is not None
        self._wait_for_checkpoint()
        self._last_flush = time.monotonic()
        if not partial_input and not self._input_read():
            return 0
        spool = self.spool if spooled else None
        if spool is not None:
            spool.advance()
        self.outcomes = self._write(self.store, spool.mark() if spool is not None else None)
        return 0 if self.outcomes is None else sum(self.outcomes.values())

    def _write(self, store: WorkStore, mark: SpoolMark | None) -> Counter[str] | None:
        """Write the ledger and return its outcome counts; None if it was not written."""
        self._check_current(self._load())
        store.check_owner(self.identity.try_number)
        complete = store.pending_count() == 0
        written = self._state.get("ledger") or {}
        if written.get("complete") and not complete:
            log.debug("Ledger checkpoint skipped: %s is complete and this state is not yet", self.ledger)
            return None
        outcomes = write_atomically(self.ledger, lambda out: write_ledger(out, store, mark))
        self._save(ledger={"rows": sum(outcomes.values()), "complete": complete})
        return outcomes

    def finish(self) -> Counter[str]:
        """Write the final ledger, remove the work store, and return the ledger's outcome counts."""
        assert self.store is not None
        self.write_ledger()
        outcomes = self.outcomes if self.outcomes is not None else Counter(self.store.counts())
        self.close(remove=True)
        return outcomes

    def close(self, *, remove: bool = False) -> None:
        self._wait_for_checkpoint()
        if self._lineage is not None:  # this try ends: the claims of the tries before it guard nothing
            try:
                release_older(self.ledger, self.identity.key, self._lineage, self.identity.try_number)
            except OSError as exc:
                log.warning("Older tries' claim markers next to %s were not removed: %s", self.ledger, exc)
            self._lineage = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        if self.store is not None:
            self.store.remove() if remove else self.store.close()
            self.store = None


def ledger_writer(ledger: str) -> dict[str, Any] | None:
    """The task instance that writes ``ledger`` (``dag_id``, ``run_id``, ``task_id``, ``map_index``),
    as its checkpoint says; None when there is no checkpoint or it does not say (written by 0.2)."""
    from .storage import open_text

    try:
        with open_text(f"{ledger}{CHECKPOINT_SUFFIX}") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    writer = state.get("task_instance") if isinstance(state, dict) else None
    if not isinstance(writer, dict) or not all(
        isinstance(writer.get(k), str) for k in ("dag_id", "run_id", "task_id")
    ):
        return None
    return {**writer, "map_index": int(writer.get("map_index", -1))}


def write_ledger_on_kill(identity: TaskIdentity, ledger: str, work_dir: Path | None = None) -> str:
    """What ``on_kill`` does: write the ledger as it stands, only if this try still owns the state.

    Returns what happened, for the log. Never creates a store, never overwrites a newer try's work.
    Airflow runs ``on_kill`` on the main thread from a signal handler: if that thread was writing
    the ledger or checkpoint, this writes nothing (that write finishes whole once the handler
    returns); if another thread is (the checkpoint thread), this waits for it first.
    """
    state = BatchState(identity, ledger, work_dir=work_dir)
    files = (ledger, state.checkpoint_path)
    if any(threading.get_ident() in writers_of(f) for f in files):
        return (
            "ledger untouched: this try was writing its ledger or checkpoint when it was killed, on the "
            "thread on_kill runs on; that write finishes whole"
        )
    deadline = time.monotonic() + KILL_WAIT
    while any(writers_of(f) for f in files):
        if time.monotonic() > deadline:
            return (
                f"ledger untouched: another thread of this try was still writing it after {KILL_WAIT:.0f} s"
            )
        time.sleep(0.01)
    store = WorkStore.open_existing(state.work_path)
    if store is None:
        return "no work store left (the task finished or another try removed it); ledger untouched"
    state.store = store
    state._writer_id = store.store_id
    try:
        loaded = state._load()
        if loaded is None:
            return "no checkpoint was written (nothing was sent); ledger untouched"
        state._state = {**loaded, "try_number": identity.try_number}
        if not store.ingested:
            return (
                f"ledger untouched: the input was still being read (through line {store.read_through}); "
                "the checkpoint's send windows tell a retry what may have been sent"
            )
        rows = state.write_ledger()
    except (StaleTryError, CheckpointError) as exc:
        return f"ledger untouched: {exc}"
    finally:
        state.close()
    return f"ledger with {rows} rows written to {ledger} (unanswered inputs say 'pending')"
