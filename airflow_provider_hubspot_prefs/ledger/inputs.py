"""Reading inputs as a person means them: every physical line (or CSV record) is one numbered input.

A file is read as bytes and decoded line by line, so that one undecodable line is one
``invalid_input`` with its line number instead of a failed file. A UTF-8 or UTF-16 byte-order mark
(what spreadsheets write) is a file signature, not part of the first address. Blank lines and empty
cells keep their number and get a row. Files that are no text at all (a directory, gzip, zip,
binary) are refused before anything is read.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from ..client.validation import MAX_EMAIL_LENGTH, is_plausible_email
from .scripts import compatibility_form, joiner_allowed, mixed_script

# Never part of an address, invisible on screen: stripped from both ends, refused inside (but for
# a joiner or non-joiner where IDNA2008 allows one: ``scripts.joiner_allowed``).
_JOINERS = "\u200c\u200d"
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u00ad\u180e"
_EDGES = re.compile(rf"^[\s{_INVISIBLE}]+|[\s{_INVISIBLE}]+$")
_SNIFF = 8192
_SIGNATURES = (
    (b"\x1f\x8b", "a gzip file; decompress it first"),
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook?); export it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.xls?); export it as CSV"),
    (b"%PDF", "a PDF document"),
)


class UnreadableInputError(ValueError):
    """The input cannot be read as text at all: retrying will not help."""

    def __init__(self, location: object, reason: str) -> None:
        self.location = str(location)
        self.reason = reason
        super().__init__(f"cannot read the input {self.location}: {reason}")


@dataclass(frozen=True)
class InputRecord:
    """One input: its line number, its text as the ledger shows it, and what to send (or why not)."""

    line: int
    text: str
    address: str | None
    problem: str | None = None
    # What makes two lines the same change (default: the address); the consent sync's key is
    # the address and the subscription.
    key: str | None = None
    # When the person decided (epoch seconds), for inputs where the latest decision of a key wins;
    # for a refused input with a key, the latest time it can have been decided (inf: unknown).
    decided: float | None = None
    # The input as its operator will use it, parsed once (the consent sync's normalized row).
    payload: str | None = None
    # When the person asked for this opt-out, as the ledger's ``requested_at`` keeps it
    # (``deadlines.requested_text``); None when the input does not say.
    requested: str | None = None


def _sniff_encoding(head: bytes, location: object, encoding: str | None) -> str:
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            raise UnreadableInputError(location, f"it is {what}")
    # A byte-order mark says what wrote the file, and wins over ``encoding`` (set for the other
    # files a DAG reads): cp1252 would turn a UTF-8 "josé" into "josÃ©", another address.
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode Text"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"  # Excel's "CSV UTF-8"
    if encoding:
        return encoding
    if b"\x00" in head:
        raise UnreadableInputError(location, "it holds NUL bytes, so it is not a text file")
    return "utf-8-sig"


@contextmanager
def open_input(location: Any, encoding: str | None = None) -> Iterator[IO[str]]:
    """A text stream over a local path or object-storage URI, or ``UnreadableInputError``.

    Undecodable bytes become lone surrogates (``surrogateescape``) for ``examine`` to report; a
    leading BOM is dropped. ``encoding`` overrides the UTF-8 default (``latin-1``, ``cp1252``, ...)
    for files without a BOM; a UTF-8 or UTF-16 BOM decides by itself.
    """
    from .storage import storage_path

    path = storage_path(location)
    try:
        if encoding:
            codecs.lookup(encoding)
        with path.open("rb") as probe:
            head = probe.read(_SNIFF)
        chosen = _sniff_encoding(head, location, encoding)
        with path.open("rb") as raw:
            errors = "surrogateescape" if codecs.lookup(chosen).name.startswith("utf-8") else "strict"
            stream = io.TextIOWrapper(raw, encoding=chosen, errors=errors, newline="")
            try:
                yield stream
            finally:
                stream.detach()
    except LookupError:
        raise UnreadableInputError(location, f"unknown encoding {encoding!r}") from None
    except IsADirectoryError:
        raise UnreadableInputError(location, "it is a directory, not a file") from None
    except FileNotFoundError:
        raise UnreadableInputError(location, "no such file") from None
    except PermissionError:
        raise UnreadableInputError(location, "permission denied") from None
    except UnicodeError as exc:  # a codec that cannot go on (UTF-16 without a BOM, a strict codec's bad byte)
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise UnreadableInputError(location, f"not {encoding or 'UTF-8'} ({reason})") from None


def shown(value: str) -> str:
    """The text as the ledger shows it: undecodable bytes as ``\\xNN``."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _char(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def _mixed_script(local: str, domain: str) -> str | None:
    """Why a part of the address (the local part, a domain label) mixes scripts, if one does."""
    start = 0
    for part in [local, *domain.split(".")]:
        found = mixed_script(part)
        if found is not None:
            index, ch, among = found
            where = f"{_char(ch)} at position {start + index + 1} among {among} letters"
            return f"mixes scripts: {where} (a look-alike?)"
        start += len(part) + 1  # and the '@' or '.' after it
    return None


def describe_problem(value: str) -> str | None:
    """Why ``value`` (trimmed) cannot be sent as an address, naming the character and position.

    The text says where and what, never the address itself, so it is safe in logs with redaction on.
    """
    if not value:
        return "empty"
    for index, ch in enumerate(value, start=1):
        if "\udc80" <= ch <= "\udcff":
            return (
                f"not valid UTF-8 (byte 0x{ord(ch) - 0xDC00:02X} at position {index}); "
                "set encoding= if the file is in another encoding"
            )
        if ch in _JOINERS and joiner_allowed(value, index - 1):
            continue
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            what = "a space" if ch == " " else _char(ch)
            return f"contains {what} at position {index}"
        if ch in '<>"(),;:[]\\':
            hint = "; give the bare address, not a display name" if ch in "<>" else ""
            return f"contains {ch!r} at position {index}{hint}"
    for index, ch in enumerate(value, start=1):
        plain = compatibility_form(ch)
        if plain is not None:
            return f"contains {_char(ch)} at position {index}, a look-alike of {plain!r}"
    ats = [i for i, ch in enumerate(value, start=1) if ch == "@"]
    if not ats:
        return "has no '@'"
    if len(ats) > 1:
        return f"has {len(ats)} '@' (positions {', '.join(map(str, ats))})"
    local, _, domain = value.partition("@")
    if not local:
        return "has nothing before the '@'"
    if not domain:
        return "has nothing after the '@'"
    if "." not in domain:
        return "has no '.' in the domain"
    if domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return "has an empty label in the domain ('.' at its start or end, or '..')"
    mixed = _mixed_script(local, domain)
    if mixed is not None:
        return mixed
    if len(value) > MAX_EMAIL_LENGTH:
        return f"is {len(value)} characters long (at most {MAX_EMAIL_LENGTH})"
    if not is_plausible_email(value):
        return "is not a valid email address"
    return None


# Plain ASCII addresses with nothing around them, which is nearly every line of a real export: every
# check of ``describe_problem`` passes for them, so they skip the per-character checks.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def examine(value: object, *, empty: str = "empty line") -> tuple[str | None, str | None]:
    """``(address to send, None)`` or ``(None, why not)`` for one input value."""
    if not isinstance(value, str):
        return None, f"not text but {type(value).__name__}"
    if len(value) <= MAX_EMAIL_LENGTH and _PLAIN_ADDRESS.fullmatch(value):
        return value.lower(), None
    trimmed = _EDGES.sub("", value)
    if not trimmed:
        return None, empty
    problem = describe_problem(trimmed)
    if problem is not None:
        return None, f"not a valid email address: {problem}"
    return trimmed.lower(), None


def records_from_values(values: Iterable[object], start: int = 0) -> Iterator[InputRecord]:
    """Inputs given as a list (or XCom): line ``n`` is the n-th value, counted from 1."""
    for line, value in enumerate(values, start=start + 1):
        address, problem = examine(value, empty="empty value")
        text = value if isinstance(value, str) else repr(value)
        yield InputRecord(line, shown(text), address, problem)


# The column an opt-out's request time is read from when the CSV has one.
REQUESTED_AT_COLUMN = "requested_at"


def _find_column(header: list[str], wanted: str) -> int:
    cleaned = [_EDGES.sub("", h) for h in header]
    if wanted in cleaned:
        return cleaned.index(wanted)
    folded = [h.casefold() for h in cleaned]
    if folded.count(wanted.strip().casefold()) == 1:
        return folded.index(wanted.strip().casefold())
    found = ", ".join(repr(h) for h in header) or "no header"
    raise ValueError(f"{wanted!r} is not a column of the input (found: {found})")


def records_from_text(
    stream: Iterable[str], csv_column: str | None = None, requested_column: str | None = None
) -> Iterator[InputRecord]:
    """One record per physical line, or per CSV record (numbered by the line it starts on).

    With ``csv_column`` the first line is the header (not an input); a missing column raises
    ``ValueError`` naming the columns found. When the person asked is read from
    ``requested_column`` (which must then exist), else from a ``requested_at`` column if there is one.
    """
    if csv_column is None:
        if requested_column:
            raise ValueError(
                f"requested_at_column {requested_column!r} needs a CSV input (csv_column): a file of one "
                "address a line has no columns"
            )
        for line, raw in enumerate(stream, start=1):
            value = raw.rstrip("\r\n")
            address, problem = examine(value)
            yield InputRecord(line, value if address is not None else shown(value), address, problem)
        return
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    from .deadlines import UNREADABLE_PREFIX, requested_text

    column = _find_column(header, csv_column)
    if requested_column:
        asked: int | None = _find_column(header, requested_column)
    else:
        try:
            asked = _find_column(header, REQUESTED_AT_COLUMN)
        except ValueError:
            asked = None
    previous_end = reader.line_num
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        if not cells:
            yield InputRecord(line, "", None, "empty line")
            continue
        value = cells[column] if column < len(cells) else ""
        address, problem = examine(value, empty=f"empty cell in column {csv_column!r}")
        if asked is None:
            requested = None
        elif asked < len(cells):
            requested = requested_text(shown(cells[asked]))
        else:  # a record cut short before the column: its request time was not read
            requested = f"{UNREADABLE_PREFIX}(no cell in column {header[asked]!r})"
        yield InputRecord(line, shown(value), address, problem, requested=requested)


def read_addresses(location: Any) -> list[str]:
    """One address per line, read as the batch operators read their input (BOM, encodings,
    invisible characters); blank lines skipped. A line that is no address is kept as its text, so
    that a wait names it instead of passing over it."""
    with open_input(location) as stream:
        return [r.address or r.text for r in records_from_text(stream) if r.problem != "empty line"]
