"""Fan-out of one large input over mapped tasks: chunk descriptors in, one merged ledger out.

XCom carries only ``{"input_range": [start, stop], "ledger_path": ...}`` per chunk, never
addresses. Each mapped ``HubSpotBatchUnsubscribeAllOperator`` reads its own range of the file;
``merge_ledgers`` streams their ledgers into one, in input order.

Note: de-duplication happens inside a chunk. An address repeated across chunks is sent once per
chunk; the second answer is then ``already_unsubscribed``, which is harmless for this API.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .._io import open_text
from ..client.batching import LEDGER_COLUMNS, iter_lines


def split_input(
    input_path: str, chunk_size: int, ledger_dir: str, csv_column: str | None = None
) -> list[dict[str, Any]]:
    """Count the addresses of ``input_path`` (streaming) and describe ``chunk_size`` slices of it."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    with open_text(input_path) as handle:
        total = sum(1 for _ in iter_lines(handle, csv_column))
    return [
        {
            "input_range": [start, min(start + chunk_size, total)],
            "ledger_path": f"{ledger_dir.rstrip('/')}/part-{index:05d}.csv",
        }
        for index, start in enumerate(range(0, total, chunk_size))
    ]


def merge_ledgers(ledger_paths: Iterable[str], out_path: str) -> dict[str, Any]:
    """Concatenate chunk ledgers (given in range order) into ``out_path``; return outcome counts."""
    counts: Counter[str] = Counter()
    rows = 0
    with open_text(out_path, "w") as out:
        writer = csv.writer(out)
        writer.writerow(LEDGER_COLUMNS)
        for path in ledger_paths:
            with open_text(path) as handle:
                reader = csv.reader(handle)
                header = next(reader)
                if tuple(header) != LEDGER_COLUMNS:
                    raise ValueError(f"{path} is not a ledger of this provider (header {header})")
                outcome = header.index("outcome")
                for row in reader:
                    counts[row[outcome]] += 1
                    rows += 1
                    writer.writerow(row)
    return {"ledger_path": out_path, "total_inputs": rows, "outcomes": dict(counts)}
