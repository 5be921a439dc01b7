"""Record consent: set a subscription status for contacts, with its GDPR legal basis.

The explanation is the evidence HubSpot keeps with the status; here it names the run that set it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_hubspot_prefs.operators import HubSpotSetSubscriptionStatusOperator

with DAG(
    dag_id="hubspot_consent_update",
    description="Subscribe contacts who gave consent, with legal basis and evidence",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["hubspot", "gdpr", "example"],
    params={
        "subscribers": Param(["alice@example.com", "bob@example.org"], type="array"),
        "subscription_id": Param(1004, type="integer"),
        "legal_basis": Param("CONSENT_WITH_NOTICE", type="string"),
        "ledger_dir": Param("/tmp/hubspot_prefs_demo/ledgers", type="string"),
    },
    render_template_as_native_obj=True,
) as dag:
    # [START howto_operator_hubspot_set_status_batch]
    HubSpotSetSubscriptionStatusOperator(
        task_id="record_consent",
        subscriber_ids="{{ params.subscribers }}",
        subscription_id="{{ params.subscription_id }}",
        status_state="SUBSCRIBED",
        legal_basis="{{ params.legal_basis }}",
        legal_basis_explanation="Double opt-in confirmed; recorded by {{ dag.dag_id }} run {{ run_id }}",
        ledger_path="{{ params.ledger_dir }}/{{ run_id | urlencode }}/consent.csv",
        wait_for_completion=True,
        check_interval=2,
        timeout=1800,
    )
    # [END howto_operator_hubspot_set_status_batch]
