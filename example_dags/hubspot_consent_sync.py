"""Nightly consent sync: the warehouse's consent table is the truth, HubSpot is made to match it.

``plan`` reads the table (any Airflow database connection: ``consent_conn_id``) and HubSpot's
current statuses and writes the plan's ledger without changing anything; ``review_plan`` stops
the run when the plan would change more than ``max_changes`` rows (a broken snapshot must not
unsubscribe everyone); ``sync`` writes only the rows that differ, keeping every choice a person
made in HubSpot after the table's decision time, and announces its ledger as the
``hubspot_prefs_consent_sync`` asset; ``report`` sums the night up. Runs never overlap. ``sync``
checks ``max_changes`` itself too, before its first write: a retry hours later, or a table
reloaded between the plan and the sync, cannot pass the guard. Both tasks share the sync journal
(``journal_dir``, default the deployment's own folder), which is how the sync tells its own earlier
writes from a person's change: give it storage every worker sees.

The table needs the columns subscriber_id, subscription_id, status, legal_basis,
legal_basis_explanation and decided_at (with a time zone); see docs/operators/consent-sync.md.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_hubspot_prefs.operators import HubSpotSyncSubscriptionStatusesOperator

# [START howto_consent_sync_dag]
CONSENT_SYNC = Asset(name="hubspot_prefs_consent_sync", uri="file:///tmp/hubspot_prefs_demo/consent_sync")
# Under ``ledger_dir`` when one is given, else the operator's default place.
LEDGER = (
    "{{{{ params.ledger_dir ~ '/' ~ (run_id | urlencode) ~ '/{task}.csv' if params.ledger_dir else '' }}}}"
)
CONSENT_QUERY = """
SELECT subscriber_id, subscription_id, status, legal_basis, legal_basis_explanation, decided_at
FROM consent
ORDER BY subscriber_id, subscription_id
"""

with DAG(
    dag_id="hubspot_consent_sync",
    description="Make HubSpot's subscription statuses match the consent table, nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two syncs of one table at once would read and write past each other
    tags=["hubspot", "gdpr", "consent", "example"],
    params={
        "consent_conn_id": Param("hubspot_prefs_consent_db", type="string"),
        # Empty: the ledgers go to $AIRFLOW_HOME/hubspot_prefs/ledgers/<dag>/<run>/<task>.csv, one
        # place per deployment (a shared folder would hold another deployment's run of the same id).
        "ledger_dir": Param("", type="string"),
        "max_changes": Param(1000, type="integer", minimum=0),
        # Empty: $AIRFLOW_HOME/hubspot_prefs/sync_journal/<connection>; object storage works too.
        "journal_dir": Param("", type="string"),
    },
) as dag:
    plan = HubSpotSyncSubscriptionStatusesOperator(
        task_id="plan",
        conn_id="{{ params.consent_conn_id }}",
        sql=CONSENT_QUERY,
        dry_run=True,
        ledger_path=LEDGER.format(task="plan"),
        journal_path="{{ params.journal_dir }}",
    )

    @task
    def review_plan(summary: dict, *, params=None) -> int:
        """Fail the run (without retrying) if the plan writes more rows than ``max_changes``."""
        from airflow.sdk.exceptions import AirflowFailException

        changes = int(summary["planned"])
        if changes > int(params["max_changes"]):
            raise AirflowFailException(
                f"The plan would write {changes} rows, more than max_changes={params['max_changes']}: "
                f"check the consent table and the plan at {summary['ledger_path']}, then rerun with a "
                "higher max_changes if it is right."
            )
        print(f"The plan writes {changes} row(s); its ledger is {summary['ledger_path']}")
        return changes

    sync = HubSpotSyncSubscriptionStatusesOperator(
        task_id="sync",
        conn_id="{{ params.consent_conn_id }}",
        sql=CONSENT_QUERY,
        ledger_path=LEDGER.format(task="sync"),
        journal_path="{{ params.journal_dir }}",
        max_changes="{{ params.max_changes }}",
        outlets=[CONSENT_SYNC],
    )

    @task
    def report(summary: dict) -> dict:
        """The night's counts (no address): what was written, kept, refused."""
        night = {
            "rows": summary["total_inputs"],
            "written": summary["written"],
            "outcomes": summary["outcomes"],
            "requests": summary["requests"],
            "ledger_path": summary["ledger_path"],
        }
        print(f"HUBSPOT CONSENT SYNC {night}")
        return night

    review_plan(plan.output) >> sync
    report(sync.output)
# [END howto_consent_sync_dag]
