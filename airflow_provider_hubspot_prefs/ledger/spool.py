"""The ledger's finished part, written while the batch is still sending.

Rows are final once their input has an outcome. The spool holds, in line order, the rows of every
line up to the first one still without an outcome, as ledger CSV text in a private file beside the
work store. Writing the ledger is then a copy of the spool and the few rows after it, so that the
ledger of a million inputs is complete a moment after the last answer instead of seconds later.
"""

from __future__ import annotations

import codecs
import csv
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .outcomes import LEDGER_COLUMNS
from .private_files import create_private_file
from .store import WorkStore

_PENDING = "pending"
_OUTCOME = 3  # the outcome's place in a ledger row


@dataclass(frozen=True)
class SpoolMark:
    """What the spool held at one moment: ``size`` bytes with the rows of lines 1..``through``."""

    path: Path
    size: int
    through: int
    outcomes: Counter[str] = field(default_factory=Counter)


class LedgerSpool:
    """Appends the rows of ``store``'s finished lines to a private file (removed by ``close``)."""

    def __init__(self, store: WorkStore) -> None:
        self.store = store
        # One per try: two tries of a task may overlap on one machine, even in one process.
        self.path = store.path.with_name(f"{store.path.name}.{uuid.uuid4().hex[:16]}.spool")
        handle = create_private_file(self.path, exclusive=True)
        self._file = open(handle, "w", encoding="utf-8", newline="")  # noqa: SIM115 - kept open
        self._writer = csv.writer(self._file)
        self.through = 0
        self.outcomes: Counter[str] = Counter()  # of the rows spooled

    def advance(self) -> int:
        """Append the rows finished since the last call, up to the first line without an outcome."""
        added = 0
        for row in self.store.ledger_rows(after=self.through, batch=200):
            if row[_OUTCOME] == _PENDING:
                break
            self._writer.writerow(row)
            self.through = int(row[0])  # type: ignore[call-overload]
            self.outcomes[str(row[_OUTCOME])] += 1
            added += 1
        return added

    def mark(self) -> SpoolMark:
        """The spool as it stands, for a ledger written from it (on this thread or another)."""
        self._file.flush()
        return SpoolMark(self.path, self._file.tell(), self.through, Counter(self.outcomes))

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def write_ledger(out: IO[str], store: WorkStore, mark: SpoolMark | None) -> Counter[str]:
    """Write the whole ledger CSV: the spool up to ``mark``, then ``store``'s rows after it.

    Returns the number of rows of each outcome (``pending`` for rows without one).
    """
    writer = csv.writer(out)
    writer.writerow(LEDGER_COLUMNS)
    outcomes: Counter[str] = Counter()
    after = 0
    if mark is not None and mark.size:
        decoder = codecs.getincrementaldecoder("utf-8")()
        left = mark.size
        with open(mark.path, "rb") as spooled:
            while left > 0:
                block = spooled.read(min(left, 1 << 20))
                if not block:
                    raise RuntimeError(f"the ledger spool {mark.path} is shorter than {mark.size} bytes")
                left -= len(block)
                out.write(decoder.decode(block, final=left == 0))
        outcomes.update(mark.outcomes)
        after = mark.through
    for row in store.ledger_rows(after=after):
        writer.writerow(row)
        outcomes[str(row[_OUTCOME])] += 1
    return outcomes
