"""Review of the ledger index (issue 25): what a lookup claims that the index does not know.

Each test fails on 4e98175; see the review report for root causes and suggested fixes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_hubspot_prefs.ledger import Outcome, confirm_submitted
from airflow_provider_hubspot_prefs.ledger.index import (
    index_secret,
    key_file,
    lookup,
    write_segment,
)

from .test_index import SECRET, _no_configured_index, entry, row, write_ledger  # noqa: F401

RUN_1 = "scheduled__2026-03-02"
RUN_2 = "scheduled__2026-03-03"


def _submitted_ledger(tmp_path: Path) -> str:
    return write_ledger(
        tmp_path / "ledgers" / RUN_1 / "ledger.csv",
        [
            row(1, "jane@example.com", Outcome.SUBMITTED.value, first_sent_at="2026-03-02T09:00:00.000Z"),
            row(2, "john@example.com", Outcome.SUBMITTED.value, first_sent_at="2026-03-02T09:00:00.000Z"),
        ],
    )


def test_a_sensor_of_a_later_run_reindexing_a_ledger_does_not_list_its_rows_twice(tmp_path):
    # The batch task of run 1 indexes its ledger; a sensor of run 2 of the same DAG (a "confirm
    # yesterday's submissions" run) confirms that ledger and re-indexes it (sensors/_reindex passes
    # its own run id). The ledger holds one row for jane.
    root = tmp_path / "index"
    ledger = _submitted_ledger(tmp_path)
    write_segment(entry(ledger, run_id=RUN_1, task_id="unsubscribe_all"), SECRET, root)
    confirm_submitted(ledger, {"jane@example.com": 1772442000.0}, Outcome.UNSUBSCRIBED, Outcome.ALREADY_UNSUBSCRIBED)
    write_segment(entry(ledger, run_id=RUN_2, task_id="wait_complete"), SECRET, root)

    found = lookup("jane@example.com", SECRET, root)

    where = [(h.entry.run_id, h.entry.task_id, h.row["line"]) for h in found.hits]
    # One ledger row, one hit: not one per segment that happens to point at the ledger.
    assert len(found.hits) == 1, where


def test_a_sensor_in_another_dag_does_not_hand_the_ledger_to_readers_of_that_dag(tmp_path):
    # DAG "gdpr_requests" writes the ledger; DAG "confirmations" (other owners, other readers)
    # waits for it and re-indexes it: the ledger's rows then answer a lookup limited to
    # "confirmations", attributed to that DAG, although its readers may not read "gdpr_requests".
    root = tmp_path / "index"
    ledger = _submitted_ledger(tmp_path)
    write_segment(entry(ledger, dag_id="gdpr_requests", task_id="unsubscribe_all"), SECRET, root)
    confirm_submitted(ledger, {"jane@example.com": 1772442000.0}, Outcome.UNSUBSCRIBED, Outcome.ALREADY_UNSUBSCRIBED)
    write_segment(entry(ledger, dag_id="confirmations", task_id="wait_complete"), SECRET, root)

    only_confirmations = lookup("jane@example.com", SECRET, root, dag_ids={"confirmations"})
    everything = lookup("jane@example.com", SECRET, root)

    assert [h.entry.dag_id for h in everything.hits] == ["gdpr_requests"]
    assert only_confirmations.hits == []


def test_the_key_file_never_lands_inside_the_index_it_keys(tmp_path, monkeypatch):
    # [hubspot_prefs] index_path set to the provider's own folder under AIRFLOW_HOME (a natural
    # choice): the default key file $AIRFLOW_HOME/hubspot_prefs/index.key is then inside the index,
    # and a copy of the index carries the key that turns it back into a list of addresses.
    home = tmp_path / "airflow_home"
    root = home / "hubspot_prefs"
    monkeypatch.setenv("AIRFLOW__HUBSPOT_PREFS__INDEX_PATH", str(root))
    try:
        index_secret(str(root))
    except Exception:  # refusing (IndexUnavailable, saying why) is a fine answer too
        return
    key = key_file().resolve()
    assert root.resolve() not in key.parents, f"the key file {key} is inside the index root {root}"
