"""GDPR / CAN-SPAM withdrawal of consent: unsubscribe every listed contact from all email.

file of addresses -> batch unsubscribe-all (ledger) -> wait until HubSpot reports COMPLETE and
bring the ledger's ``submitted`` rows to their confirmed outcome -> report (JSON and an HTML page).

Run it with a ``hubspot_prefs_default`` connection and, in the run's conf, ``input_path`` (one
address a line, or set ``csv_column``; a spreadsheet's CSV export works as it is) and
``ledger_dir`` (local path or object-storage URI; shared storage if a retry may run elsewhere).
A CSV with a ``requested_at`` column (when each person asked) is measured against
``opt_out_deadline`` (CAN-SPAM's 10 business days by default): the summary, the asset event, the
report and the ledger's view in the Airflow UI list the rows past or near it.
"""

from __future__ import annotations

import json
import time

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
        "opt_out_deadline": Param("10 business days", type="string"),
    },
) as dag:
    # [START howto_operator_hubspot_batch_unsubscribe_all]
    unsubscribe = HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe_all",
        input_path="{{ params.input_path }}",
        csv_column="{{ params.csv_column or '' }}",
        # urlencode keeps run ids apart ("a:b" and "a+b" get different folders).
        ledger_path="{{ params.ledger_dir }}/{{ run_id | urlencode }}/ledger.csv",
        max_failure_ratio=0.0,
        max_in_flight=4,
        opt_out_deadline="{{ params.opt_out_deadline }}",
    )
    # [END howto_operator_hubspot_batch_unsubscribe_all]

    # [START howto_sensor_hubspot_ledger]
    wait_complete = HubSpotOperationStatusSensor(
        task_id="wait_until_complete",
        ledger_path="{{ ti.xcom_pull(task_ids='unsubscribe_all')['ledger_path'] }}",
        poke_interval=2,
        timeout=1800,
        deferrable=True,
    )
    # [END howto_sensor_hubspot_ledger]

    @task
    def report(summary: dict, params: dict | None = None) -> dict:
        """Sum up the confirmed ledger, measure it against the deadline, keep both reports next to it."""
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_hubspot_prefs.ledger import read_rows, summarize
        from airflow_provider_hubspot_prefs.ledger.deadlines import Deadline, deadline_report
        from airflow_provider_hubspot_prefs.ledger.report import problem_rows, render_report_html

        ledger = summary["ledger_path"]
        result = summarize(ledger)
        # After the wait: the confirmations are in the ledger now.
        if params and params.get("opt_out_deadline"):
            deadline, warning = Deadline.parse(params["opt_out_deadline"]), Deadline.parse("2 business days")
            result["deadlines"] = deadline_report(read_rows(ledger), deadline, warning, time.time())
        folder = ledger.rsplit("/", 1)[0]
        target = ObjectStoragePath(folder if "://" in folder else f"file://{folder}")
        (target / "report.json").write_text(json.dumps(result, indent=2, sort_keys=True))
        page = render_report_html("HubSpot unsubscribe report", result, problem_rows(read_rows(ledger)))
        (target / "report.html").write_text(page)
        print("HUBSPOT UNSUBSCRIBE REPORT " + json.dumps(result, sort_keys=True))
        # The provider's ledger view in the Airflow UI links the page from this task's return value.
        return {**result, "report_html": str(target / "report.html")}

    unsubscribe >> wait_complete >> report(unsubscribe.output)
