"""DAGs the test suite runs with dag.test(): each operator and the sensor, polling and deferred."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, Param

from airflow_provider_hubspot_prefs.operators import (
    HubSpotBatchUnsubscribeAllOperator,
    HubSpotSetSubscriptionStatusOperator,
    HubSpotUnsubscribeAllOperator,
)
from airflow_provider_hubspot_prefs.sensors import HubSpotOperationStatusSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
dags: dict[str, DAG] = {}

for mode, deferrable in (("poll", False), ("deferred", True)):
    with DAG(
        f"test_batch_unsubscribe_{mode}",
        schedule=None,
        start_date=START,
        params={"input_path": Param("", type="string"), "ledger_path": Param("", type="string")},
    ) as dag:
        HubSpotBatchUnsubscribeAllOperator(
            task_id="unsubscribe",
            input_path="{{ params.input_path }}",
            ledger_path="{{ params.ledger_path }}",
            wait_for_completion=True,
            deferrable=deferrable,
            check_interval=0.2,
            timeout=60,
            max_in_flight=4,
        )
    dags[dag.dag_id] = dag

    with DAG(
        f"test_single_contact_{mode}",
        schedule=None,
        start_date=START,
        params={"subscriber": Param("alice@example.com", type="string")},
    ) as dag:
        one = HubSpotUnsubscribeAllOperator(
            task_id="unsubscribe_one",
            subscriber_id="{{ params.subscriber }}",
            wait_for_completion=True,
            deferrable=deferrable,
            check_interval=0.2,
            timeout=60,
        )
        consent = HubSpotSetSubscriptionStatusOperator(
            task_id="resubscribe_newsletter",
            subscriber_ids="{{ params.subscriber }}",
            subscription_id=1004,
            status_state="SUBSCRIBED",
            legal_basis="CONSENT_WITH_NOTICE",
            legal_basis_explanation="Re-confirmed in run {{ run_id }}",
            wait_for_completion=True,
            deferrable=deferrable,
            check_interval=0.2,
            timeout=60,
        )
        sense = HubSpotOperationStatusSensor(
            task_id="newsletter_is_subscribed",
            subscriber_ids="{{ params.subscriber }}",
            subscription_id=1004,
            status_state="SUBSCRIBED",
            deferrable=deferrable,
            poke_interval=0.2,
            timeout=60,
        )
        one >> consent >> sense
    dags[dag.dag_id] = dag

    with DAG(
        f"test_sensor_{mode}",
        schedule=None,
        start_date=START,
        params={"subscribers": Param(["alice@example.com"], type="array")},
        render_template_as_native_obj=True,
    ) as dag:
        HubSpotOperationStatusSensor(
            task_id="wait",
            subscriber_ids="{{ params.subscribers }}",
            deferrable=deferrable,
            poke_interval=0.2,
            timeout=2,
            retries=0,
        )
    dags[dag.dag_id] = dag

with DAG(
    "test_set_status_batch",
    schedule=None,
    start_date=START,
    params={"subscribers": Param([], type="array"), "ledger_path": Param("", type="string")},
    render_template_as_native_obj=True,
) as dag:
    HubSpotSetSubscriptionStatusOperator(
        task_id="set_many",
        subscriber_ids="{{ params.subscribers }}",
        subscription_id=1003,
        status_state="UNSUBSCRIBED",
        legal_basis="LEGITIMATE_INTEREST_OTHER",
        ledger_path="{{ params.ledger_path }}",
        batch_size=7,
    )
dags[dag.dag_id] = dag


with DAG(
    "test_batch_dry_run_csv",
    schedule=None,
    start_date=START,
    params={"input_path": Param("", type="string"), "ledger_path": Param("", type="string")},
) as dag:
    HubSpotBatchUnsubscribeAllOperator(
        task_id="dry_run",
        input_path="{{ params.input_path }}",
        csv_column="email",
        ledger_path="{{ params.ledger_path }}",
        dry_run=True,
    )
dags[dag.dag_id] = dag

# Real files: a CSV column or plain lines, any encoding; the operator waits for PENDING writes.
with DAG(
    "test_batch_unsubscribe_file",
    schedule=None,
    start_date=START,
    params={
        "input_path": Param("", type="string"),
        "ledger_path": Param("", type="string"),
        "csv_column": Param("", type="string"),
        "encoding": Param("", type="string"),
    },
) as dag:
    HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe",
        input_path="{{ params.input_path }}",
        ledger_path="{{ params.ledger_path }}",
        csv_column="{{ params.csv_column }}",
        encoding="{{ params.encoding }}",
        wait_for_completion=True,
        check_interval=0.2,
        timeout=60,
        batch_size=50,
    )
dags[dag.dag_id] = dag

with DAG("test_bad_status_state", schedule=None, start_date=START) as dag:
    HubSpotSetSubscriptionStatusOperator(
        task_id="typo",
        subscriber_ids=["alice@example.com"],
        subscription_id=1004,
        status_state="UNSUSCRIBED",
        retries=3,
    )
dags[dag.dag_id] = dag

# Run by the real scheduler in tests/deployments/test_real_airflow.py: a worker killed mid-batch,
# then retried.
with DAG(
    "test_resume_after_kill",
    schedule=None,
    start_date=START,
    params={"input_path": Param("", type="string"), "ledger_path": Param("", type="string")},
) as dag:
    HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe",
        input_path="{{ params.input_path }}",
        ledger_path="{{ params.ledger_path }}",
        max_in_flight=2,
        retries=2,
        retry_delay=timedelta(seconds=1),
        checkpoint_interval=1,
    )
dags[dag.dag_id] = dag

# Uses whichever connection the run names: one saved through the UI's form, in the browser test.
with DAG(
    "test_named_connection",
    schedule=None,
    start_date=START,
    params={"conn_id": Param("hubspot_prefs_default", type="string"), "subscriber": Param("", type="string")},
) as dag:
    HubSpotUnsubscribeAllOperator(
        task_id="unsubscribe_one",
        hubspot_conn_id="{{ params.conn_id }}",
        subscriber_id="{{ params.subscriber }}",
        wait_for_completion=True,
        check_interval=1,
        deferrable=False,
    )
dags[dag.dag_id] = dag

# Opt-out deadlines: a CSV with requested_at, failures allowed (their rows stay unconfirmed), the
# summary announced on an asset.
with DAG(
    "test_opt_out_deadlines",
    schedule=None,
    start_date=START,
    params={"input_path": Param("", type="string"), "ledger_path": Param("", type="string")},
) as dag:
    HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe",
        input_path="{{ params.input_path }}",
        ledger_path="{{ params.ledger_path }}",
        csv_column="email",
        opt_out_deadline="10 business days",
        max_failure_ratio=1.0,
        outlets=[Asset(name="hubspot_prefs_test_deadlines", uri="file:///tmp/hubspot_prefs_test_deadlines")],
    )
dags[dag.dag_id] = dag

for _dag_id, _dag in dags.items():
    globals()[_dag_id] = _dag
