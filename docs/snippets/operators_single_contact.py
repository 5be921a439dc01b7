"""Docs snippet of docs/operators/unsubscribe.md, status.md and waiting.md: one contact at a time.

``run`` points ``hubspot_prefs_default`` at the emulator, makes the emulator answer writes PENDING
(as HubSpot may), runs the DAG below with ``dag.test()`` and checks what each task returned.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_hubspot_prefs.operators import (
    HubSpotSetSubscriptionStatusOperator,
    HubSpotUnsubscribeAllOperator,
)
from airflow_provider_hubspot_prefs.sensors import HubSpotOperationStatusSensor

with DAG(
    dag_id="hubspot_one_contact",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "withdrawn": Param("jane@example.com", type="string"),
        "consented": Param("dana@example.com", type="string"),
    },
) as dag:
    # [START howto_operator_hubspot_unsubscribe_all]
    unsubscribe = HubSpotUnsubscribeAllOperator(
        task_id="unsubscribe_one",
        subscriber_id="{{ params.withdrawn }}",
        wait_for_completion=True,  # poll until HubSpot reports COMPLETE
        check_interval=5,
        timeout=600,
    )
    # [END howto_operator_hubspot_unsubscribe_all]

    # [START howto_operator_hubspot_set_status_one]
    subscribe = HubSpotSetSubscriptionStatusOperator(
        task_id="subscribe_newsletter",
        subscriber_ids="{{ params.consented }}",  # a string: one contact, no ledger
        subscription_id=1004,
        status_state="SUBSCRIBED",
        legal_basis="CONSENT_WITH_NOTICE",
        legal_basis_explanation="Ticked the newsletter box on the signup form",
    )
    # [END howto_operator_hubspot_set_status_one]

    # [START howto_sensor_hubspot_subscription_status]
    newsletter_confirmed = HubSpotOperationStatusSensor(
        task_id="newsletter_confirmed",
        subscriber_ids="{{ params.consented }}",
        subscription_id=1004,
        status_state="SUBSCRIBED",
        poke_interval=5,
        timeout=600,
        deferrable=True,  # wait in the triggerer, not in a worker slot
    )
    # [END howto_sensor_hubspot_subscription_status]

    subscribe >> newsletter_confirmed


def _xcom(dag_run, task_id: str):  # type: ignore[no-untyped-def]
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key="return_value"
        )
        row = session.scalars(query).first()
        return None if row is None else XComModel.deserialize_value(row)


def run(base_url: str, folder: Path) -> None:
    import httpx

    # Writes answer PENDING and apply a second later: the waits have something to wait for.
    httpx.patch(
        f"{base_url}/_emulator/config", json={"processing_delay_ms": 1000}, timeout=10
    ).raise_for_status()
    from _harness import runnable  # docs/snippets/_harness.py: what running it here needs

    with runnable(__file__, base_url):
        dag_run = dag.test(run_conf={"withdrawn": "jane@example.com", "consented": "dana@example.com"})
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == dict.fromkeys(
        ("unsubscribe_one", "subscribe_newsletter", "newsletter_confirmed"), "success"
    ), states
    unsubscribed = _xcom(dag_run, "unsubscribe_one")
    assert unsubscribed["subscriber"] == "j***@example.com", unsubscribed
    assert unsubscribed["outcome"] == "unsubscribed" and unsubscribed["operation_status"] == "COMPLETE", (
        unsubscribed
    )
    subscribed = _xcom(dag_run, "subscribe_newsletter")
    # HubSpot answered PENDING: the sensor downstream waited for it.
    assert subscribed["subscriber"] == "d***@example.com", subscribed
    assert subscribed["outcome"] == "submitted", subscribed
