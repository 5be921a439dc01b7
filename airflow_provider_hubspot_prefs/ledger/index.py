"""The ledger index: which ledgers hold an address, found without reading every ledger.

One *segment* file per ledger, written when the ledger is final (``write_segment``) and replaced
whole when it is indexed again. It lives on the same storage as the ledgers (a local folder or an
``ObjectStoragePath`` URI, ``[hubspot_prefs] index_path``), so that it needs no database, no
connection and no migration, and is kept, copied and deleted with the ledgers it points at:

    <root>/<quote(dag_id)>/<quote(run_id)>/<sha256(ledger_path)[:24]>.idx

A DAG's segments sit in its own folder, so that a lookup limited to the DAGs a user may read
never opens the others; any run id is one folder (``quote(..., safe="")``, a leading dot encoded).

Segment format, version 1 (all integers big-endian, unsigned)::

    0   8 bytes   magic b"HSPIDX01"
    8   8 bytes   H: length of the header
    16  8 bytes   N: number of records
    24  H bytes   header: ASCII JSON {"format": 1, "key_check": hex, "entry": LedgerEntry fields}
        0-15      zero bytes, so that the records start at a multiple of 16
        N x 16    records: 8-byte key, 8-byte byte offset of the row in the ledger; sorted

A key is HMAC-SHA256(secret, normalized address)[:8]: the index alone is no list of addresses, and
without the secret nobody can test an address against it. ``key_check`` (an HMAC of a fixed text)
tells whether a segment was written with the secret in use; one written with another is searched
by scanning its ledger instead. 8 bytes make a false match between two addresses unlikely
(2**-64 per pair), and a match is never trusted anyway: the row at the offset is read and its
``subscriber_id`` compared with the address.

Lookup: a local segment is searched in place (``mmap``, binary search: a few pages read per
segment). A segment on object storage is downloaded whole into a private local cache (0700 folder
in the work dir, 0600 files) and searched there; the cached copy is used again while the remote
segment's size and header bytes (which include the time it was written) are unchanged. That costs
one small ranged read per segment per lookup and a full download only when a segment changed,
simpler than a binary search by ranged reads (17 round trips per segment at 100,000 rows).

Staleness: the header records the ledger's byte size when indexed. If the ledger's size differs,
or a row at a matched offset does not parse or is not the address, the ledger is scanned for the
address (streaming) and reported in ``LookupResult.stale``. A missing ledger is reported in
``unreadable``. A row that is not the address is never returned.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import json
import logging
import mmap
import os
import posixpath
import secrets
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import quote, unquote

from .checkpoint import default_work_dir
from .files import write_atomically
from .inputs import examine
from .outcomes import LEDGER_COLUMNS
from .private_files import make_folders, private_folder, private_temp_file, sync_folder
from .storage import storage_path

log = logging.getLogger(__name__)

SECTION = "hubspot_prefs"
MAGIC = b"HSPIDX01"
FORMAT = 1
KEY_SIZE = 8
RECORD_SIZE = 16
SUFFIX = ".idx"
# Every ledger this provider ever wrote starts with these columns; newer ones add more at the end.
REQUIRED_COLUMNS = LEDGER_COLUMNS[:10]

_PREFIX = struct.Struct(">8sQQ")
_RECORD = struct.Struct(">8sQ")
_KEY_CHECK_TEXT = b"airflow-provider-hubspot-prefs index key check"
# Enough to hold the prefix and a typical header in one read.
_HEAD_READ = 4096
# Segments on object storage are searched this many at a time (each costs round trips).
_REMOTE_PARALLEL = 8


class IndexUnavailable(RuntimeError):
    """The index cannot be used here: no secret to key it with (the message says what to set)."""


@dataclass(frozen=True)
class LedgerEntry:
    """What a segment says about its ledger: who wrote it, where it is, and its counts (no addresses).

    ``write_segment`` fills ``written_at``, ``rows``, ``outcomes`` and ``ledger_size``.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    ledger_path: str
    hubspot_conn_id: str | None = None
    business_unit_id: int | None = None
    api_version: str | None = None
    deadline: str | None = None
    warning: str | None = None
    written_at: float = 0.0
    rows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    ledger_size: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LedgerEntry:
        """The entry of a segment header; keys it does not know (a newer writer's) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Hit:
    """One ledger row for the address looked up, with the ledger it is in."""

    entry: LedgerEntry
    row: dict[str, str]


@dataclass
class LookupResult:
    """Every row found for one address, and which ledgers could not be searched through the index.

    ``stale``: ledgers changed since they were indexed (or indexed with another key); they were
    scanned instead, and their rows are in ``hits``. ``unreadable``: ``(path, reason)`` of ledgers
    or segments that could not be read at all; their rows, if any, are missing from ``hits``.
    """

    hits: list[Hit] = field(default_factory=list)
    searched: int = 0
    stale: list[LedgerEntry] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


# --- configuration and the secret -------------------------------------------------------------


def _config(key: str) -> str | None:
    # The Task SDK's conf reads airflow.cfg and AIRFLOW__... variables in tasks and in the api-server
    # alike (a worker may have only the Task SDK installed).
    from airflow.sdk import conf

    value = conf.get(SECTION, key, fallback=None)
    return str(value).strip() or None if value is not None else None


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"))


def index_root() -> str:
    """``[hubspot_prefs] index_path`` (``AIRFLOW__HUBSPOT_PREFS__INDEX_PATH``), else
    ``$AIRFLOW_HOME/hubspot_prefs/index``."""
    return _config("index_path") or str(airflow_home() / "hubspot_prefs" / "index")


def key_file() -> Path:
    """Where a local index's key is kept when none is configured: outside the index folder, so
    that a copy of the index alone cannot be tested against addresses."""
    return airflow_home() / "hubspot_prefs" / "index.key"


def index_secret(root: Any = None) -> bytes:
    """The secret that keys the index at ``root`` (default ``index_root()``).

    ``[hubspot_prefs] index_key`` (``AIRFLOW__HUBSPOT_PREFS__INDEX_KEY``; its ``_cmd`` and
    ``_secret`` forms work once the provider declares the option sensitive), stripped of surrounding
    white space. Else, for a local root only, the key file (``key_file()``), created once. An index
    on object storage is read and written by several machines, which would each make a key file
    of their own: it needs the configured key, or ``IndexUnavailable``.
    """
    configured = _config("index_key")
    if configured:
        return configured.encode("utf-8")
    where = storage_path(index_root() if root is None else root)
    if not isinstance(where, Path):
        raise IndexUnavailable(
            f"The ledger index at {where} is on shared storage and needs one key for every machine: "
            f"set [{SECTION}] index_key (environment: AIRFLOW__HUBSPOT_PREFS__INDEX_KEY) on the "
            "workers and the api-server alike, e.g. to the output of `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`."
        )
    keys = key_file()
    if keys.resolve().is_relative_to(where.resolve()):
        raise IndexUnavailable(
            f"The key file {keys} would be inside the index {where} it keys (a copy of the index would "
            f"carry its key): set [{SECTION}] index_key, or give index_path a folder that does not hold it"
        )
    return _local_key(keys)


def _local_key(path: Path) -> bytes:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        _create_key(path)
        text = path.read_text("utf-8")
    key = text.strip()
    if len(key) < 32:
        raise IndexUnavailable(
            f"The index key file {path} holds no key (shorter than 32 characters). Remove it to have "
            f"a new one made (then re-index), or set [{SECTION}] index_key."
        )
    return key.encode("utf-8")


def _create_key(path: Path) -> None:
    """Write a new key to ``path`` unless another process got there first: whoever wins, one key.

    The key is written whole to a private temp file and hard-linked into place: the link fails if
    the file exists, and a reader never sees a half-written key.
    """
    make_folders(path.parent)
    handle, temp = private_temp_file(path.parent, path.name)
    try:
        with open(handle, "w", encoding="utf-8") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    sync_folder(path.parent)


def address_key(address: str, secret: bytes) -> bytes:
    """The index key of a normalized address (``ledger.inputs.examine``): HMAC-SHA256, 8 bytes."""
    return hmac.digest(secret, address.encode("utf-8"), "sha256")[:KEY_SIZE]


def key_check(secret: bytes) -> str:
    """Tells segments written with ``secret`` from those written with another; reveals nothing of it."""
    return hmac.digest(secret, _KEY_CHECK_TEXT, "sha256")[:8].hex()


# --- where segments live ------------------------------------------------------------------------


def _folder_name(value: str) -> str:
    """One folder name per id, distinct for distinct ids, never ``.`` or ``..``."""
    if not value:
        raise ValueError("an empty id has no index folder")
    text = quote(value, safe="")
    # quote() leaves dots alone and never writes "%2E" itself, so this keeps names distinct.
    return "%2E" + text[1:] if text.startswith(".") else text


def segment_location(root: Any, dag_id: str, run_id: str, ledger_path: str) -> Any:
    """Where the segment of ``ledger_path`` (written in that DAG run) lives under ``root``."""
    name = hashlib.sha256(str(ledger_path).encode("utf-8")).hexdigest()[:24] + SUFFIX
    return storage_path(root) / _folder_name(dag_id) / _folder_name(run_id) / name


def _children(folder: Any) -> list[tuple[str, bool]]:
    """``(name, is a folder)`` of what ``folder`` holds; nothing for a missing folder."""
    try:
        if isinstance(folder, Path):
            with os.scandir(folder) as found:
                return [(each.name, each.is_dir()) for each in found]
        listed = folder.fs.ls(folder.path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [(posixpath.basename(str(d["name"]).rstrip("/")), d.get("type") == "directory") for d in listed]


def _segment_locations(
    root: Any, dag_ids: set[str] | None, run_id: str | None, dag_id: str | None
) -> Iterator[Any]:
    base = storage_path(index_root() if root is None else root)
    if dag_id is not None:
        dags = [_folder_name(dag_id)] if dag_ids is None or dag_id in dag_ids else []
    else:
        # Only the allowed DAGs' folders are opened at all (folder names are compared quoted).
        wanted = None if dag_ids is None else {_folder_name(d) for d in dag_ids if d}
        dags = sorted(n for n, is_dir in _children(base) if is_dir and (wanted is None or n in wanted))
    for dag in dags:
        if run_id is not None:
            runs = [_folder_name(run_id)]
        else:
            runs = sorted(n for n, is_dir in _children(base / dag) if is_dir and not n.startswith("."))
        for run in runs:
            for name, is_dir in sorted(_children(base / dag / run)):
                # Skips write_atomically's temp files (".<name>.hubspot-prefs-*.partial").
                if not is_dir and name.endswith(SUFFIX) and not name.startswith("."):
                    yield base / dag / run / name


# --- reading ledgers with byte offsets ----------------------------------------------------------


class _Records:
    """The CSV records of a binary ledger stream from ``start``, each with the byte offset where it
    begins. Physical lines are fed to ``csv.reader`` one at a time and it pulls only as many as a
    record needs (a quoted field may hold line breaks), so after each record ``end`` is where the
    next one begins: the same records ``csv.reader`` finds in the text ``read_rows`` reads."""

    def __init__(self, handle: IO[bytes], start: int) -> None:
        self.end = start
        self._reader = csv.reader(self._lines(handle))

    def _lines(self, handle: IO[bytes]) -> Iterator[str]:
        for line in handle:
            self.end += len(line)
            yield line.decode("utf-8")

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        begin = self.end
        for record in self._reader:
            yield begin, record
            begin = self.end


def _check_header(header: list[str], location: Any) -> list[str]:
    if tuple(header[: len(REQUIRED_COLUMNS)]) != REQUIRED_COLUMNS or len(set(header)) != len(header):
        raise ValueError(f"{location} is not a ledger of this provider (header {header})")
    return header


def _read_header(handle: IO[bytes], location: Any) -> list[str]:
    first = next(iter(_Records(handle, 0)), None)
    return _check_header(first[1] if first else [], location)


def _as_row(header: list[str], record: list[str], offset: int, location: Any) -> dict[str, str]:
    if len(record) != len(header):
        raise ValueError(
            f"{location}: the row at byte {offset} has {len(record)} fields, the header {len(header)}"
        )
    row = dict.fromkeys(LEDGER_COLUMNS, "")  # columns an older ledger lacks read ""
    row.update(zip(header, record, strict=True))
    return row


def _whole(records: _Records, header: list[str], location: Any) -> Iterator[tuple[int, list[str]]]:
    """The records, each as wide as the header (``ValueError`` at the first damaged row)."""
    for offset, record in records:
        if len(record) != len(header):
            _as_row(header, record, offset, location)  # raises: a damaged ledger
        yield offset, record


@contextlib.contextmanager
def _open_ledger(location: Any) -> Iterator[BinaryIO]:
    with storage_path(location).open("rb") as handle:
        yield handle


def ledger_size(location: Any) -> int:
    """The ledger's size in bytes now (an entry's ``ledger_size`` says what it was when indexed)."""
    path = storage_path(location)
    return os.stat(path).st_size if isinstance(path, Path) else int(path.fs.size(path.path))


def _scan(location: Any, address: str) -> list[tuple[int, dict[str, str]]]:
    """Every row of the ledger whose ``subscriber_id`` is ``address``, with its offset (streamed)."""
    found = []
    with _open_ledger(location) as handle:
        header = _read_header(handle, location)
        column = header.index("subscriber_id")
        for offset, record in _whole(_Records(handle, handle.tell()), header, location):
            if record[column] == address:
                found.append((offset, _as_row(header, record, offset, location)))
    return found


def _rows_at(location: Any, offsets: Iterable[int], address: str) -> list[tuple[int, dict[str, str]]] | None:
    """The rows at ``offsets``, or None if any is not a whole row of ``address`` (a stale offset)."""
    found = []
    with _open_ledger(location) as handle:
        header = _read_header(handle, location)
        for offset in offsets:
            if offset <= 0:
                return None
            handle.seek(offset - 1)
            if handle.read(1) != b"\n":  # a row starts after a line break
                return None
            try:
                record = next(iter(_Records(handle, offset)), None)
                row = _as_row(header, record[1], offset, location) if record else None
            except (ValueError, csv.Error):
                return None
            if row is None or row["subscriber_id"] != address:
                return None
            found.append((offset, row))
    return found


# --- writing segments ---------------------------------------------------------------------------


def _binary(stream: IO[str]) -> IO[bytes]:
    # write_atomically hands out a text stream over its new file; a segment is bytes.
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        raise TypeError("write_atomically gave a stream without a binary buffer")
    stream.flush()
    return buffer


def _read_ledger(location: Any, secret: bytes) -> tuple[list[bytes], Counter[str], int]:
    """The sorted records of a ledger, its counts by outcome and its size in bytes (streamed once)."""
    records: list[bytes] = []
    counts: Counter[str] = Counter()
    pack = _RECORD.pack
    try:
        with _open_ledger(location) as handle:
            header = _read_header(handle, location)
            column, outcome = header.index("subscriber_id"), header.index("outcome")
            rows = _Records(handle, handle.tell())
            for offset, record in _whole(rows, header, location):
                counts[record[outcome]] += 1
                if record[column]:
                    key = hmac.digest(secret, record[column].encode("utf-8"), "sha256")[:KEY_SIZE]
                    records.append(pack(key, offset))
    except csv.Error as exc:
        raise ValueError(f"{location} is a damaged ledger: {exc}") from None
    records.sort()
    return records, counts, rows.end


def write_segment(entry: LedgerEntry, secret: bytes, root: Any = None) -> LedgerEntry:
    """Index the ledger ``entry.ledger_path``: write its segment (replacing any), return the entry.

    The ledger is streamed once (10-column ledgers of earlier versions and newer, longer ones alike):
    every row is counted by outcome, and every row with an address gets a record. If a segment of
    this ledger already exists for another task of the run (a sensor confirming a batch task's
    ledger), that task stays its writer; the entry's other fields replace the old ones where given.
    ``ValueError`` if the file is no ledger of this provider or a row is damaged.
    """
    records, counts, size = _read_ledger(entry.ledger_path, secret)
    counted = replace(entry, rows=sum(counts.values()), outcomes=dict(counts), ledger_size=size)
    return _write(counted, key_check(secret), records, root)


# ``ledger_size`` of a placeholder: the ledger is not final yet, its rows are not indexed.
NOT_FINAL = -1


def write_placeholder(entry: LedgerEntry, root: Any = None) -> LedgerEntry:
    """Announce a ledger before it is final: a segment without records (``ledger_size`` NOT_FINAL).

    A batch task writes one before it sends anything, so that a ledger whose task is killed, or whose
    index cannot be written at its end, is still known: a lookup scans it (reported stale) instead
    of passing over it, and the task's view finds it. It needs no key. The final ``write_segment``
    replaces it.
    """
    return _write(replace(entry, rows=0, outcomes={}, ledger_size=NOT_FINAL), "", [], root)


def _write(entry: LedgerEntry, check: str, records: list[bytes], root: Any) -> LedgerEntry:
    """Write ``entry``'s segment (header and sorted ``records``) in place of any, keeping the writer
    and the fields ``entry`` leaves unset of the segment it replaces (``_keep_writer``)."""
    location = segment_location(
        index_root() if root is None else root, entry.dag_id, entry.run_id, entry.ledger_path
    )
    written = replace(entry, written_at=time.time())
    existing = _existing_entry(location)
    if existing is not None:
        written = _keep_writer(existing, written)
    head = json.dumps(
        {"format": FORMAT, "key_check": check, "entry": asdict(written)},
        ensure_ascii=True,
        sort_keys=True,
        separators=(",", ":"),
    ).encode("ascii")
    padding = -(_PREFIX.size + len(head)) % RECORD_SIZE

    def write(out: IO[str]) -> None:
        binary = _binary(out)
        binary.write(_PREFIX.pack(MAGIC, len(head), len(records)))
        binary.write(head + b"\0" * padding)
        binary.write(b"".join(records))

    write_atomically(location, write)
    return written


def _existing_entry(location: Any) -> LedgerEntry | None:
    try:
        return _read_head(location)[0]
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("Replacing the unreadable index segment %s: %s", location, exc)
        return None


def _keep_writer(existing: LedgerEntry, new: LedgerEntry) -> LedgerEntry:
    """``new`` with ``existing``'s fields that ``new`` leaves unset, and ``existing``'s writer (task
    and map index) when another task of the run re-indexes its ledger."""
    unset = {
        name: getattr(existing, name)
        for name in ("hubspot_conn_id", "business_unit_id", "api_version", "deadline", "warning")
        if getattr(new, name) is None
    }
    if (existing.task_id, existing.map_index) == (new.task_id, new.map_index):
        return replace(new, **unset)
    return replace(
        new,
        task_id=existing.task_id,
        map_index=existing.map_index,
        extra={**existing.extra, **new.extra},
        **unset,
    )


# --- reading segments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    entry: LedgerEntry
    key_check: str
    records_at: int
    count: int
    raw: bytes  # the prefix and header bytes: what a cached copy must start with


def _parse_head(data: bytes, location: Any, read_more: Callable[[int], bytes] | None = None) -> _Head:
    if len(data) < _PREFIX.size:
        raise ValueError(f"{location} is not an index segment (too short)")
    magic, length, count = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"{location} is not an index segment of this provider version")
    end = _PREFIX.size + length
    if len(data) < end and read_more is not None:
        data = read_more(end)
    if len(data) < end:
        raise ValueError(f"{location} is a truncated index segment")
    try:
        header = json.loads(data[_PREFIX.size : end])
        entry = LedgerEntry.from_json(header["entry"])
        check = str(header["key_check"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{location} has an unreadable header: {exc}") from None
    records_at = end + (-end % RECORD_SIZE)
    return _Head(entry, check, records_at, count, bytes(data[:end]))


def _read_range(location: Any, end: int) -> bytes:
    path = storage_path(location)
    if isinstance(path, Path):
        with open(path, "rb") as handle:
            return handle.read(end)
    return bytes(path.fs.cat_file(path.path, start=0, end=end))


def _read_head(location: Any) -> tuple[LedgerEntry, _Head]:
    head = _parse_head(_read_range(location, _HEAD_READ), location, lambda end: _read_range(location, end))
    return head.entry, head


def _find(buffer: Any, head: _Head, key: bytes) -> list[int]:
    """Byte offsets recorded under ``key``: binary search over the sorted fixed-width records."""
    low, high, base = 0, head.count, head.records_at
    while low < high:
        middle = (low + high) // 2
        at = base + middle * RECORD_SIZE
        if buffer[at : at + KEY_SIZE] < key:
            low = middle + 1
        else:
            high = middle
    offsets = []
    at = base + low * RECORD_SIZE
    while low < head.count and buffer[at : at + KEY_SIZE] == key:
        offsets.append(int.from_bytes(buffer[at + KEY_SIZE : at + RECORD_SIZE], "big"))
        low += 1
        at += RECORD_SIZE
    return offsets


def _search_local(path: Path, key: bytes) -> tuple[_Head, list[int]]:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < _PREFIX.size:
            raise ValueError(f"{path} is not an index segment (too short)")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            head = _parse_head(buffer[:_HEAD_READ], path, lambda end: buffer[:end])
            if size != head.records_at + head.count * RECORD_SIZE:
                raise ValueError(f"{path} is a truncated index segment")
            return head, _find(buffer, head, key)


def _cached_copy(location: Any) -> Path:
    """A private local copy of the object-storage segment at ``location``, downloaded if changed."""
    remote = _read_head(location)[1]
    size = remote.records_at + remote.count * RECORD_SIZE
    cache = private_folder(private_folder(default_work_dir()) / "index-cache")
    copy = cache / (hashlib.sha256(str(location).encode("utf-8")).hexdigest()[:32] + SUFFIX)
    with contextlib.suppress(FileNotFoundError):
        if copy.stat().st_size == size:
            with open(copy, "rb") as cached:
                if cached.read(len(remote.raw)) == remote.raw:  # same write: the header has its time
                    return copy
    handle, temp = private_temp_file(cache, copy.name)
    os.close(handle)
    try:
        location.fs.get_file(location.path, str(temp))
        os.replace(temp, copy)
    finally:
        temp.unlink(missing_ok=True)
    return copy


# --- the public reads ---------------------------------------------------------------------------


def entries(
    root: Any = None, dag_ids: set[str] | None = None, run_id: str | None = None, dag_id: str | None = None
) -> Iterator[LedgerEntry]:
    """The entries of the segments under ``root`` (headers only), optionally of some DAGs or one run.

    ``dag_ids`` limits which DAG folders are opened at all. Unreadable segments are logged and skipped.
    """
    return _entries(root, dag_ids, run_id, dag_id, None)


def _entries(
    root: Any,
    dag_ids: set[str] | None,
    run_id: str | None,
    dag_id: str | None,
    unreadable: list[tuple[str, str]] | None,
) -> Iterator[LedgerEntry]:
    """The segments' entries; each unreadable one is added to ``unreadable`` (None: logged)."""
    for location in _segment_locations(root, dag_ids, run_id, dag_id):
        try:
            entry = _read_head(location)[0]
        except (OSError, ValueError) as exc:
            if unreadable is None:
                log.warning("Skipping the unreadable index segment %s: %s", location, exc)
            else:
                unreadable.append((str(location), f"index segment unreadable: {exc}"))
            continue
        if _wanted(entry, dag_ids, run_id, dag_id):
            yield entry


def dag_ids(root: Any = None) -> set[str]:
    """The DAG ids that have a folder in the index (from the folder names: a DAG whose segments
    cannot be read is still named, so that who may read it is asked, and its segments reported)."""
    base = storage_path(index_root() if root is None else root)
    return {unquote(name) for name, is_dir in _children(base) if is_dir and not name.startswith(".")}


def run_segments(root: Any, dag_id: str, run_id: str) -> tuple[list[LedgerEntry], list[tuple[str, str]]]:
    """The entries of one DAG run's segments, and ``(segment, why)`` for those that cannot be read."""
    unreadable: list[tuple[str, str]] = []
    return list(_entries(root, None, run_id, dag_id, unreadable)), unreadable


def scan_ledger(location: Any, address: str) -> list[dict[str, str]]:
    """The rows of ``address`` (normalized) in a ledger read whole: for a ledger that is not indexed."""
    return [row for _, row in _scan(location, address)]


def _wanted(entry: LedgerEntry, dag_ids: set[str] | None, run_id: str | None, dag_id: str | None) -> bool:
    # The header decides, not the folder it was found in.
    return (
        (dag_ids is None or entry.dag_id in dag_ids)
        and (dag_id is None or entry.dag_id == dag_id)
        and (run_id is None or entry.run_id == run_id)
    )


def find_entry(root: Any, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> LedgerEntry | None:
    """The entry of the ledger a task instance wrote (the latest, if it wrote several), or None."""
    found = [
        e
        for e in entries(root, run_id=run_id, dag_id=dag_id)
        if (e.task_id, e.map_index) == (task_id, map_index)
    ]
    return max(found, key=lambda e: e.written_at) if found else None


@dataclass
class _Searched:
    skipped: bool = False  # a segment of a DAG not asked for, whatever folder it was in
    entry: LedgerEntry | None = None
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    stale: bool = False
    unreadable: tuple[str, str] | None = None


def _search(location: Any, address: str, key: bytes, check: str, dag_ids: set[str] | None) -> _Searched:
    try:
        local = location if isinstance(location, Path) else _cached_copy(location)
        head, offsets = _search_local(local, key)
    except (OSError, ValueError) as exc:
        return _Searched(unreadable=(str(location), f"index segment unreadable: {exc}"))
    entry = head.entry
    if dag_ids is not None and entry.dag_id not in dag_ids:
        return _Searched(skipped=True)
    result = _Searched(entry=entry)
    try:
        size = ledger_size(entry.ledger_path)
    except FileNotFoundError:
        result.unreadable = (
            entry.ledger_path,
            "the ledger is not written yet (its task is running, or stopped before writing it)"
            if entry.ledger_size == NOT_FINAL
            else "the ledger file is missing (moved or deleted since indexed)",
        )
        return result
    except OSError as exc:
        result.unreadable = (entry.ledger_path, f"the ledger cannot be read: {exc}")
        return result
    try:
        rows: list[tuple[int, dict[str, str]]] | None = None
        if head.key_check == check and size == entry.ledger_size:
            rows = _rows_at(entry.ledger_path, offsets, address) if offsets else []
        if rows is None:
            result.stale = True
            rows = _scan(entry.ledger_path, address)
        result.rows = rows
    except (OSError, ValueError, csv.Error) as exc:
        result.unreadable = (entry.ledger_path, f"the ledger cannot be read: {exc}")
    return result


def lookup(address: str, secret: bytes, root: Any = None, dag_ids: set[str] | None = None) -> LookupResult:
    """Every ledger row of ``address`` under ``root`` (default ``index_root()``), in the DAGs ``dag_ids``.

    ``ValueError`` (saying why, not repeating the address) if ``address`` is no valid address.
    """
    normalized, why = examine(address)
    if normalized is None:
        raise ValueError(f"not an address to look up: {why}")
    key, check = address_key(normalized, secret), key_check(secret)
    locations = list(_segment_locations(root, dag_ids, None, None))

    def search(location: Any) -> _Searched:
        return _search(location, normalized, key, check, dag_ids)

    if all(isinstance(location, Path) for location in locations):
        searched = list(map(search, locations))
    else:
        with ThreadPoolExecutor(_REMOTE_PARALLEL) as pool:
            searched = list(pool.map(search, locations))
    result = LookupResult()
    found: list[tuple[tuple[Any, ...], Hit]] = []
    for each in searched:
        if each.skipped:
            continue
        result.searched += 1
        if each.unreadable is not None:
            result.unreadable.append(each.unreadable)
        if each.entry is None:
            continue
        if each.stale:
            result.stale.append(each.entry)
        e = each.entry
        for offset, row in each.rows:
            found.append(((e.written_at, e.dag_id, e.run_id, e.task_id, e.map_index, offset), Hit(e, row)))
    result.hits = [hit for _, hit in sorted(found, key=lambda pair: pair[0])]
    return result
