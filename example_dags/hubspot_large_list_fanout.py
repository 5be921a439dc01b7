"""Millions of withdrawals: split one file into chunk descriptors, fan out, merge the ledgers.

XCom carries only ``{"input_range", "ledger_path"}`` per chunk. Concurrency across workers is
bounded by an Airflow pool (``HUBSPOT_PREFS_POOL``, ``default_pool`` unless set; create one with
``airflow pools set hubspot_prefs 4 "HubSpot app budget"``), and inside each task by
``max_in_flight``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

with DAG(
    dag_id="hubspot_large_list_fanout",
    description="Unsubscribe a very large list with dynamically mapped chunks",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["hubspot", "gdpr", "example"],
    params={
        "input_path": Param("/tmp/hubspot_prefs_demo/withdrawals.txt", type="string"),
        "ledger_dir": Param("/tmp/hubspot_prefs_demo/ledgers", type="string"),
        "chunk_size": Param(50_000, type="integer", minimum=1),
    },
) as dag:
    # [START howto_fanout_large_list]
    @task
    def split(params: dict, run_id: str) -> list[dict]:
        from urllib.parse import quote

        from airflow_provider_hubspot_prefs.utils.fanout import split_input

        run_dir = f"{params['ledger_dir']}/{quote(run_id, safe='')}"  # distinct per run id
        return split_input(params["input_path"], int(params["chunk_size"]), f"{run_dir}/parts")

    chunks = split()

    unsubscribe = HubSpotBatchUnsubscribeAllOperator.partial(
        task_id="unsubscribe_chunk",
        input_path="{{ params.input_path }}",
        pool=os.environ.get("HUBSPOT_PREFS_POOL", "default_pool"),
        max_in_flight=4,
    ).expand_kwargs(chunks)

    @task
    def merge(summaries: list[dict], params: dict, run_id: str) -> dict:
        from urllib.parse import quote

        from airflow_provider_hubspot_prefs.utils.fanout import merge_ledgers

        run_dir = f"{params['ledger_dir']}/{quote(run_id, safe='')}"
        ordered = sorted(summaries, key=lambda s: s["ledger_path"])
        merged = merge_ledgers([s["ledger_path"] for s in ordered], f"{run_dir}/ledger.csv")
        print(f"Merged {len(ordered)} chunk ledgers: {merged}")
        return merged

    merge(unsubscribe.output)
    # [END howto_fanout_large_list]
