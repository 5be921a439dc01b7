"""Audit export: what HubSpot holds for a list of contacts, announced as an asset.

Writes the statuses of the contacts in ``input_path`` (per subscription with timestamp and legal
basis, and unsubscribed-from-all) to a CSV under ``export_dir`` and announces the file as the
``hubspot_prefs_status_export`` asset, its event carrying the counts and the path.
``hubspot_status_report`` is scheduled on that asset.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, Param

from airflow_provider_hubspot_prefs.operators import HubSpotExportSubscriptionStatusesOperator

STATUS_EXPORT = Asset(name="hubspot_prefs_status_export", uri="file:///tmp/hubspot_prefs_demo/exports")

with DAG(
    dag_id="hubspot_status_export",
    description="Export HubSpot's communication preferences of a list of contacts",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["hubspot", "gdpr", "audit", "example"],
    params={
        "input_path": Param("/tmp/hubspot_prefs_demo/contacts.txt", type="string"),
        "export_dir": Param("/tmp/hubspot_prefs_demo/exports", type="string"),
    },
) as dag:
    # [START howto_operator_hubspot_export]
    HubSpotExportSubscriptionStatusesOperator(
        task_id="export_statuses",
        input_path="{{ params.input_path }}",
        output_path="{{ params.export_dir }}/{{ run_id | urlencode }}/statuses.csv",
        outlets=[STATUS_EXPORT],
    )
    # [END howto_operator_hubspot_export]
