"""GDPR / CAN-SPAM withdrawal of consent: unsubscribe every listed contact from all email.

file of addresses -> batch unsubscribe-all (ledger) -> wait until HubSpot reports COMPLETE
-> verify every contact reads back unsubscribed -> report.

Run it with a ``hubspot_prefs_default`` connection and, in the run's conf, ``input_path`` (one
address a line, or set ``csv_column``) and ``ledger_dir`` (local path or object-storage URI).
"""

from __future__ import annotations

import json

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator
from airflow_provider_hubspot_prefs.sensors import HubSpotOperationStatusSensor

with DAG(
    dag_id="hubspot_gdpr_unsubscribe",
    description="Unsubscribe contacts who withdrew consent from all email, verify, report",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["hubspot", "gdpr", "example"],
    params={
        "input_path": Param("/tmp/hubspot_prefs_demo/withdrawals.txt", type="string"),
        "ledger_dir": Param("/tmp/hubspot_prefs_demo/ledgers", type="string"),
        "csv_column": Param(None, type=["null", "string"]),
    },
) as dag:
    unsubscribe = HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe_all",
        input_path="{{ params.input_path }}",
        csv_column="{{ params.csv_column or '' }}",
        ledger_path="{{ params.ledger_dir }}/{{ run_id | replace(':', '_') | replace('+', '_') }}/ledger.csv",
        max_failure_ratio=0.0,
        max_in_flight=4,
    )

    wait_complete = HubSpotOperationStatusSensor(
        task_id="wait_until_complete",
        subscribers_path="{{ ti.xcom_pull(task_ids='unsubscribe_all')['pending_path'] or '' }}",
        poke_interval=2,
        timeout=1800,
        deferrable=True,
    )

    @task
    def verify(summary: dict) -> dict:
        """Read every contact the ledger says is unsubscribed back from HubSpot."""
        import asyncio
        import csv

        from airflow_provider_hubspot_prefs._io import open_text
        from airflow_provider_hubspot_prefs.client.verification import Expectation, check_state
        from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

        with open_text(summary["ledger_path"]) as handle:
            done = [
                row["subscriber_id"]
                for row in csv.DictReader(handle)
                if row["outcome"] in ("unsubscribed", "already_unsubscribed", "submitted")
            ]

        async def check() -> list[str]:
            client = await HubSpotPreferencesHook().get_async_conn()
            try:
                return (await check_state(client, done, Expectation())).pending
            finally:
                await client.aclose()

        missing = asyncio.run(check())
        if missing:
            raise ValueError(f"{len(missing)} contact(s) do not read back as unsubscribed")
        return {"verified_unsubscribed": len(done)}

    @task
    def report(summary: dict, verified: dict) -> dict:
        outcomes = dict(summary["outcomes"])
        outcomes["unsubscribed"] = outcomes.get("unsubscribed", 0) + outcomes.pop("submitted", 0)
        result = {
            "total_inputs": summary["total_inputs"],
            "outcomes": outcomes,
            "verified_unsubscribed": verified["verified_unsubscribed"],
            "ledger_path": summary["ledger_path"],
        }
        from airflow_provider_hubspot_prefs._io import open_text

        with open_text(summary["ledger_path"].rsplit("/", 1)[0] + "/report.json", "w") as out:
            json.dump(result, out, indent=2, sort_keys=True)
        print("HUBSPOT UNSUBSCRIBE REPORT " + json.dumps(result, sort_keys=True))
        return result

    verified = verify(unsubscribe.output)
    unsubscribe >> wait_complete >> verified
    report(unsubscribe.output, verified)
