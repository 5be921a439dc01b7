"""Reading the input into the work store a block at a time, so that sending starts before the end."""

from __future__ import annotations

from collections.abc import Iterable

from .inputs import InputRecord
from .store import WorkStore


class InputStopped(Exception):
    """The input could not be read past ``read_through``; what was read before stays accounted for."""

    def __init__(self, read_through: int, cause: BaseException) -> None:
        self.read_through = read_through
        self.cause = cause
        super().__init__(f"the input could not be read after line {read_through}: {cause}")


class Ingestion:
    """The records of one input, read into ``store`` in blocks of ``block`` (see ``WorkStore``).

    The first block is read at once, so that an input that cannot be read at all fails as it did
    before anything was sent (its exception as raised). A later failure raises ``InputStopped``.
    """

    BLOCK = 1000

    def __init__(self, store: WorkStore, records: Iterable[InputRecord], *, block: int = BLOCK) -> None:
        self.store = store
        self.block = block
        self.done = False
        self._records = iter(records)
        store.begin_ingest()
        self.step(first=True)

    @property
    def read_through(self) -> int:
        return self.store.read_through

    def step(self, *, first: bool = False) -> bool:
        """Read the next block; False once the whole input is read."""
        if self.done:
            return False
        block: list[InputRecord] = []
        try:
            for record in self._records:
                block.append(record)
                if len(block) >= self.block:
                    break
            else:
                self.done = True
        except Exception as exc:
            if first:
                raise
            self.store.ingest_block(block)  # the lines read before the failure keep their place
            raise InputStopped(self.read_through, exc) from exc
        self.store.ingest_block(block)
        if self.done:
            self.store.end_ingest()
        return not self.done

    def read_to_end(self) -> None:
        while self.step():
            pass
