"""Fan-out of one large input over mapped tasks: chunk descriptors in, one merged ledger out.

XCom carries only ``{"input_range": [start, stop], "ledger_path": ...}`` per chunk, never
addresses. Each mapped ``HubSpotBatchUnsubscribeAllOperator`` reads its own range of the file's
records (lines, or CSV records; blank ones included, so every line lands in exactly one chunk
ledger with its own line number); ``merge_ledgers`` streams their ledgers into one, in input order.

Note: de-duplication happens inside a chunk. An address repeated across chunks is sent once per
chunk; the second answer is then ``already_unsubscribed``, which is harmless for this API.
"""

from __future__ import annotations

from typing import Any

from ..ledger import merge_ledgers
from ..ledger.inputs import open_input, records_from_text

__all__ = ["merge_ledgers", "split_input"]


def split_input(
    input_path: str,
    chunk_size: int,
    ledger_dir: str,
    csv_column: str | None = None,
    encoding: str | None = None,
) -> list[dict[str, Any]]:
    """Count the records of ``input_path`` (streaming) and describe ``chunk_size`` slices of it."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    with open_input(input_path, encoding) as stream:
        total = sum(1 for _ in records_from_text(stream, csv_column))
    return [
        {
            "input_range": [start, min(start + chunk_size, total)],
            "ledger_path": f"{ledger_dir.rstrip('/')}/part-{index:05d}.csv",
        }
        for index, start in enumerate(range(0, total, chunk_size))
    ]
