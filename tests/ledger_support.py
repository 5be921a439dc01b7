"""The ledger invariant every batch test checks against what the emulator really did."""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

CHANGED = {"unsubscribed", "status_set"}
FINAL = {
    "unsubscribed",
    "already_unsubscribed",
    "status_set",
    "already_in_state",
    "failed",
    "not_attempted",
    "duplicate",
    "invalid_input",
}


def check_truth(
    emulator: Any, rows: list[dict[str, str]], inputs: list[str], first_line: int = 1
) -> Counter[str]:
    """Rows = input lines, each once, in order, numbered by line; every row final; the contacts the
    emulator changed are exactly those the ledger says this run changed; nothing changed twice."""
    assert [int(r["line"]) for r in rows] == list(range(first_line, first_line + len(inputs)))
    assert [r["input"] for r in rows] == inputs
    outcomes = Counter(r["outcome"] for r in rows)
    assert set(outcomes) <= FINAL, outcomes  # nothing left pending or submitted
    changed = {email for email, _ in emulator.backend.changes}
    reported = {r["subscriber_id"] for r in rows if r["outcome"] in CHANGED}
    assert changed == reported, (sorted(changed - reported)[:5], sorted(reported - changed)[:5])
    assert emulator.control("GET", "changes")["repeated"] == []
    return outcomes


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)
