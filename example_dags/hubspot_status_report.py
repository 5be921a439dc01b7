"""Runs after every status export (``hubspot_status_export``) and sums it up from its asset event."""

from __future__ import annotations

import json

import pendulum
from airflow.sdk import DAG, Asset, task

# [START howto_status_report_dag]
# The asset hubspot_status_export announces (same name and URI).
STATUS_EXPORT = Asset(name="hubspot_prefs_status_export", uri="file:///tmp/hubspot_prefs_demo/exports")

with DAG(
    dag_id="hubspot_status_report",
    description="Runs after every status export and sums it up",
    schedule=[STATUS_EXPORT],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["hubspot", "audit", "example"],
) as dag:

    @task(inlets=[STATUS_EXPORT])
    def report(*, inlet_events=None) -> dict:
        """The newest export's counts and path, from its asset event."""
        latest = inlet_events[STATUS_EXPORT][-1].extra
        print("HUBSPOT STATUS EXPORT " + json.dumps(latest, sort_keys=True))
        return dict(latest)

    report()
# [END howto_status_report_dag]
