"""Mapped tasks on one machine share the app's budget with nothing set: a LocalExecutor deployment.

The connection names only the emulator: the default pacing (190 requests per 10 s) and the default
budget shared by the processes of a machine (a file in the work folder). The fan-out example runs
4 chunks at once, each a task process believing the whole budget is its own, against an emulator
holding one HubSpot app's budget of 190 per 10 s. Together they stay under it: not one 429.
Slow (a deployment): marked ``e2e``.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from typing import Any

import pytest

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, EmulatorConfig, EmulatorServer

from ..airflow_deployment import AirflowDeployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

TOTAL, CHUNK = 40_000, 10_000
DAG_ID, TASK_ID = "hubspot_large_list_fanout", "unsubscribe_chunk"


@pytest.fixture(scope="module")
def hubspot() -> Any:
    config = EmulatorConfig(rate_limit_max=190, rate_limit_interval_ms=10_000, latency_ms=20)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def airflow(hubspot, tmp_path_factory) -> Any:
    home = tmp_path_factory.mktemp("airflow-home")
    with AirflowDeployment(home, os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).running() as deployment:
        deployment.add_connection(
            "hubspot_prefs_default", "hubspot_prefs", password=DEMO_TOKEN, extra={"base_url": hubspot.url}
        )
        yield deployment


def test_mapped_tasks_on_one_machine_share_the_budget_without_429s(airflow, hubspot, tmp_path):
    people = [f"local.{i:06d}@example.org" for i in range(TOTAL)]
    source = tmp_path / "withdrawals.txt"
    source.write_text("".join(f"{p}\n" for p in people))
    run_id = airflow.trigger(
        DAG_ID, {"input_path": str(source), "ledger_dir": str(tmp_path / "ledgers"), "chunk_size": CHUNK}
    )
    state = airflow.wait_for_run(DAG_ID, run_id, timeout=600)
    chunks = [ti for ti in airflow.task_instances(DAG_ID, run_id) if ti["task_id"] == TASK_ID]
    assert state == "success", airflow.task_instances(DAG_ID, run_id)
    assert len(chunks) == TOTAL // CHUNK

    # The chunks really ran together: every one started before any one ended.
    assert max(ti["start_date"] for ti in chunks) < min(ti["end_date"] for ti in chunks)
    writes = [r for r in hubspot.backend.request_log if r["path"].endswith("batch/unsubscribe-all")]
    statuses = Counter(r["status"] for r in writes)
    print(f"{len(writes)} batch requests: {dict(statuses)}")
    assert statuses == {200: TOTAL // 100}  # not one 429, and nothing sent twice

    (merged,) = (tmp_path / "ledgers").rglob("ledger.csv")
    with merged.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["input"] for r in rows] == people
    assert {r["outcome"] for r in rows} == {"unsubscribed"}
    # The budget the task processes shared: one file in the deployment's work folder.
    assert len(list((airflow.home / "work-stores" / "rate_budgets").glob("*.sqlite"))) == 1
