"""A consent table in SQLite and the HubSpot state it is compared with, for the sync's DAG tests."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

BEFORE = "2026-10-01T09:00:00.000Z"  # when HubSpot's statuses were set
DECIDED = "2026-11-20T12:00:00Z"  # the table's newer decisions
LATER = "2026-11-24T18:30:00.000Z"  # a change made in HubSpot after them
EXPLANATION = "Ticked the consent box on the signup form"


@dataclass
class ConsentTable:
    path: Path
    writes: set[tuple[str, int, str]]  # what the sync must write
    kept: set[tuple[str, int]]  # changed in HubSpot after the decision: must stay
    rows: int

    def connection(self) -> str:
        """The Airflow connection (JSON form) of the table's database."""
        return json.dumps({"conn_type": "sqlite", "host": str(self.path)})


def consent_table(backend, path: Path, contacts: int = 100, prefix: str = "table") -> ConsentTable:
    """``contacts`` x subscriptions 1001 and 1004, subscribed in HubSpot; in the table, every tenth
    contact withdrew consent for 1001 (a write), every 25th did too but re-subscribed in HubSpot
    after that (kept), and one row lacks its legal basis (refused)."""
    writes, kept, rows = set(), set(), []
    for i in range(contacts):
        person = f"{prefix}.{i:04d}@example.com"
        for subscription in (1001, 1004):
            backend.set_history(
                person, subscription, "SUBSCRIBED", BEFORE, "CONSENT_WITH_NOTICE", EXPLANATION
            )
            status, basis, explanation, decided = "SUBSCRIBED", "CONSENT_WITH_NOTICE", EXPLANATION, BEFORE
            if subscription == 1001 and i % 10 == 0:
                status, basis, explanation, decided = "UNSUBSCRIBED", None, None, DECIDED
                if i % 25 == 0:
                    backend.set_history(
                        person, subscription, "SUBSCRIBED", LATER, "CONSENT_WITH_NOTICE", EXPLANATION
                    )
                    kept.add((person, subscription))
                else:
                    writes.add((person, subscription, status))
            rows.append((person, subscription, status, basis, explanation, decided))
    rows.append((f"{prefix}.nobasis@example.com", 1004, "SUBSCRIBED", None, None, DECIDED))
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE consent (subscriber_id TEXT, subscription_id INTEGER, status TEXT, "
            "legal_basis TEXT, legal_basis_explanation TEXT, decided_at TEXT)"
        )
        db.executemany("INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.close()
    return ConsentTable(path, writes, kept, len(rows))
