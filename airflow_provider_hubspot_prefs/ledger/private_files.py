"""Files and folders that only their owner can read, whatever the process umask.

Ledgers, checkpoints, spools and work stores hold addresses. Each file is created with its mode
(``os.open(..., 0o600)``, ``tempfile.mkstemp``) and each folder with ``mkdir(0o700)``: the process
umask, which every thread shares, is never changed (another thread's files would take the change).
A work folder, whose name in the shared temp dir any local user can predict and create first, is
also checked: a folder of this user that no one else can write to, or it is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import time
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700
# In the name of every temp file this package writes (``*<TEMP_TAG>*.partial``), so that those a
# killed write left can be told from anyone else's and swept (``sweep_partials``).
TEMP_TAG = "hubspot-prefs-"
# A temp file older than this is no write in progress: its process was killed mid-write.
PARTIAL_MAX_AGE = 86400.0
# Seconds between two sweeps of one folder by one process (a ledger folder is written often).
_SWEEP_EVERY = 3600.0
_swept_at: dict[str, float] = {}


class UnsafeFolderError(PermissionError):
    """A folder the work stores would live in could be read or changed by another local user."""


def make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each 0700; folders already there stay as they are."""
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another thread or process
            each.mkdir(mode=FOLDER_MODE)


def private_folder(folder: Path) -> Path:
    """``folder``, created 0700 if missing; ``UnsafeFolderError`` unless it is a real folder of this
    user that no other user can write to (it is then closed to them: 0700)."""
    make_folders(folder)
    info = os.lstat(folder)
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISDIR(info.st_mode) and not stat.S_ISLNK(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif info.st_uid != os.geteuid():
        problem = f"belongs to user id {info.st_uid}, not to this user (id {os.geteuid()})"
    elif mode & 0o022:
        problem = f"can be written by other users (mode {mode:o})"
    if problem is not None:
        raise UnsafeFolderError(
            f"Refusing the work folder {folder}: it {problem}. Another local user may have made it to "
            "read or replace the work stores (they hold addresses). Remove it, or set "
            "HUBSPOT_PREFS_WORK_DIR to a folder only this user can use."
        )
    if mode != FOLDER_MODE:
        os.chmod(folder, FOLDER_MODE)
    return folder


def create_private_file(path: Path, *, exclusive: bool = False) -> int:
    """Open ``path`` for reading and writing, created 0600 if missing (never through a symlink)."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (os.O_EXCL if exclusive else 0)
    return os.open(path, flags, FILE_MODE)


def private_temp_file(folder: Path, name: str) -> tuple[int, Path]:
    """A new 0600 file in ``folder``, named after ``name`` and unique (``tempfile.mkstemp``); a
    write killed before it renamed or removed it leaves it to ``sweep_partials``."""
    sweep_partials(folder)
    handle, path = tempfile.mkstemp(
        prefix=f".{name}.{TEMP_TAG}" if name else f".{TEMP_TAG}", suffix=".partial", dir=folder
    )
    return handle, Path(path)


def sweep_partials(folder: Path, *, max_age: float = PARTIAL_MAX_AGE) -> int:
    """Remove this package's temp files in ``folder`` that are older than ``max_age`` seconds and
    belong to this user: left by writes killed midway (SIGKILL), they hold addresses. A folder is
    looked at once an hour per process at most. Returns how many were removed."""
    key = os.path.abspath(folder)
    now = time.time()
    if now - _swept_at.get(key, 0.0) < _SWEEP_EVERY:
        return 0
    _swept_at[key] = now
    removed = 0
    try:
        found = list(folder.glob(f".*{TEMP_TAG}*.partial"))
    except OSError:
        return 0
    for path in found:
        try:
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_mtime < now - max_age:
                path.unlink()
                removed += 1
        except OSError:  # gone meanwhile (another process swept it), or not ours to remove
            continue
    return removed


# What fsync of a folder fails with where the platform or filesystem cannot sync one (/proc, some
# network and FUSE filesystems): the rename stands, there is nothing more to do. Anything else
# (EIO, ENOSPC, ...) is a write that may not have reached the disk, and is raised.
_CANNOT_SYNC_FOLDER = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


def sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable, where the platform can sync a folder."""
    try:
        handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except PermissionError:  # Windows cannot open a folder (nor can anyone a folder it may not read)
        return
    try:
        os.fsync(handle)
    except OSError as exc:
        if exc.errno not in _CANNOT_SYNC_FOLDER:
            raise
    finally:
        os.close(handle)
