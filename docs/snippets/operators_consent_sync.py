"""Docs snippet of docs/operators/consent-sync.md: the consent sync reading a CSV file.

``run`` points ``hubspot_prefs_default`` at the emulator, syncs ``operators_consent_sync.csv``
(the file the page shows) twice with ``dag.test()`` and checks each line's outcome in the ledger.
"""

from __future__ import annotations

import csv
from pathlib import Path

# [START howto_consent_sync_from_file]
import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_hubspot_prefs.operators import HubSpotSyncSubscriptionStatusesOperator

with DAG(
    dag_id="hubspot_consent_sync_from_file",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "consent_file": Param("s3://compliance/consent/latest.csv", type="string"),
        "journal_dir": Param("s3://compliance/consent-sync/journal", type="string"),
    },
) as dag:
    HubSpotSyncSubscriptionStatusesOperator(
        task_id="sync",
        input_path="{{ params.consent_file }}",  # CSV with a header row (.jsonl: JSON lines)
        journal_path="{{ params.journal_dir }}",
        max_changes=500,
    )
# [END howto_consent_sync_from_file]

CONSENT_FILE = Path(__file__).with_suffix(".csv")


def _summary(dag_run) -> dict:  # type: ignore[no-untyped-def]
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == {"sync": "success"}, states
    with create_session() as session:
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids="sync")
        return XComModel.deserialize_value(session.scalars(query).first())


def _outcomes(summary: dict) -> dict[int, str]:
    with open(summary["ledger_path"], newline="", encoding="utf-8") as handle:
        return {int(row["line"]): row["outcome"] for row in csv.DictReader(handle)}


def run(base_url: str, folder: Path) -> None:
    conf = {"consent_file": str(CONSENT_FILE), "journal_dir": str(folder / "journal")}
    from _harness import runnable  # docs/snippets/_harness.py: what running it here needs

    with runnable(__file__, base_url):
        first = _summary(dag.test(run_conf=conf))
        again = _summary(dag.test(run_conf=conf))
    # The table on the page: line 2 written, 3 already so, 4 newer in HubSpot, 5 refused.
    assert _outcomes(first) == {
        2: "status_set",
        3: "already_in_state",
        4: "kept_newer_in_hubspot",
        5: "invalid_input",
    }, _outcomes(first)
    assert first["written"] == 1 and first["planned"] == 1, first
    # The second run finds its own write in the journal: nothing to write.
    assert _outcomes(again)[2] == "already_in_state" and again["written"] == 0, again
