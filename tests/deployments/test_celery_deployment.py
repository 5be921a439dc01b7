"""The fan-out example on a CeleryExecutor deployment: two workers, one HubSpot budget, a machine lost.

PostgreSQL (metadata database) and Redis (Celery broker, and the shared rate budget through the
connection's ``rate_limit_redis_conn_id``) come from Debian (scripts/install-services) and run on
free ports for this module only. Two ``airflow celery worker`` processes stand for two machines:
their own hostnames and temp dirs (so their own work stores); ledgers and checkpoints live on the
storage both see. The emulator holds the budget of one HubSpot app, 190 requests per 10 s.

200,000 addresses are split into 8 mapped tasks under a 4-slot pool. While a chunk runs on
machine A, the whole of machine A is SIGKILLed (worker and task processes alike); Airflow notices
the missing heartbeats, the retry runs on machine B and resumes from the checkpoint next to the
ledger. Slow (a few minutes): marked ``e2e``.
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, EmulatorConfig, EmulatorServer

from ..airflow_deployment import AirflowDeployment, CeleryMachines
from ..postgres_service import postgres_server
from ..redis_service import redis_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

TOTAL, CHUNK = 200_000, 25_000
BUDGET, WINDOW_MS = 190, 10_000
DAG_ID, TASK_ID = "hubspot_large_list_fanout", "unsubscribe_chunk"


@pytest.fixture(scope="module")
def hubspot() -> Any:
    """One HubSpot app's budget (190 / 10 s) for every worker; answers after 20 ms."""
    config = EmulatorConfig(rate_limit_max=BUDGET, rate_limit_interval_ms=WINDOW_MS, latency_ms=20)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def celery_airflow(hubspot, tmp_path_factory) -> Any:
    folder = tmp_path_factory.mktemp("celery")
    with postgres_server() as database_url, redis_server(folder / "redis") as redis_url:
        machines = CeleryMachines(
            broker_url=redis_url, temp_dirs={m: folder / f"{m}-tmp" for m in ("machine-a", "machine-b")}
        )
        deployment = AirflowDeployment(
            folder / "airflow-home",
            os.environ["AIRFLOW__CORE__DAGS_FOLDER"],
            database_url=database_url,
            celery=machines,
            extra_env={
                "HUBSPOT_PREFS_POOL": "hubspot_prefs",
                # A lost machine's tasks are noticed within seconds, and retried once at once.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "1",
                "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
            },
        )
        with deployment.running():
            deployment.api(
                "POST", "/pools", json={"name": "hubspot_prefs", "slots": 4, "description": "HubSpot app"}
            )
            redis = urlsplit(redis_url)
            deployment.add_connection(
                "hubspot_budget", "redis", host=redis.hostname, port=redis.port, extra={"db": 1}
            )
            deployment.add_connection(
                "hubspot_prefs_default",
                "hubspot_prefs",
                password=DEMO_TOKEN,
                extra={"base_url": hubspot.url, "rate_limit_redis_conn_id": "hubspot_budget"},
            )
            yield deployment


def _writes(hubspot: EmulatorServer) -> list[dict[str, Any]]:
    return [r for r in hubspot.backend.request_log if r["path"].endswith("batch/unsubscribe-all")]


def _running_on(airflow: AirflowDeployment, run_id: str, machine: str) -> list[dict[str, Any]]:
    return [
        ti
        for ti in airflow.task_instances(DAG_ID, run_id)
        if ti["task_id"] == TASK_ID and ti["state"] == "running" and ti["hostname"] == machine
    ]


def test_fanout_on_celery_survives_a_lost_machine_with_one_budget(celery_airflow, hubspot, tmp_path):
    airflow = celery_airflow
    people = [f"celery.{i:06d}@example.com" for i in range(TOTAL)]
    source = tmp_path / "withdrawals.txt"
    source.write_text("".join(f"{address}\n" for address in people))
    ledgers = tmp_path / "ledgers"
    started = time.monotonic()
    run_id = airflow.trigger(
        DAG_ID, {"input_path": str(source), "ledger_dir": str(ledgers), "chunk_size": CHUNK}
    )

    # Machine A is lost while one of its chunks is well under way (its send windows are saved).
    deadline = time.monotonic() + 300
    while True:
        assert airflow.poll_run(DAG_ID, run_id) in ("queued", "running")
        victims = _running_on(airflow, run_id, "machine-a")
        checkpoints = list(ledgers.rglob("*.checkpoint.json"))
        if victims and len(checkpoints) >= 2 and len(_writes(hubspot)) >= 200:
            break
        assert time.monotonic() < deadline, "no chunk got going on machine A"
        time.sleep(0.5)
    time.sleep(3)
    victims = _running_on(airflow, run_id, "machine-a")
    assert victims
    killed = airflow.lose_machine("machine-a")
    sent_before_loss = len(_writes(hubspot))
    assert {int(v["pid"]) for v in victims} <= set(killed)

    assert airflow.wait_for_run(DAG_ID, run_id, timeout=900, every=1) == "success"

    tis = {ti["map_index"]: ti for ti in airflow.task_instances(DAG_ID, run_id) if ti["task_id"] == TASK_ID}
    assert len(tis) == TOTAL // CHUNK
    for victim in victims:
        retried = tis[victim["map_index"]]
        assert retried["try_number"] == 2 and retried["hostname"] == "machine-b", retried
        logs = airflow.task_logs(DAG_ID, run_id, TASK_ID, victim["map_index"])
        assert "Resuming from the checkpoint next to the ledger" in logs["attempt=2.log"], logs

    # The merged ledger: every address once, in input order, all changed by this run, and exactly
    # the contacts HubSpot changed, none changed twice.
    merged = next(ledgers.rglob("ledger.csv"))
    with merged.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["input"] for r in rows] == people
    assert Counter(r["outcome"] for r in rows) == {"unsubscribed": TOTAL}
    changed = {email for email, _ in hubspot.backend.changes}
    assert changed == set(people)
    assert hubspot.control("GET", "changes")["repeated"] == []

    # One budget for both machines: HubSpot hardly ever had to say no.
    statuses = Counter(r["status"] for r in _writes(hubspot))
    sent = sum(statuses.values())
    print(
        f"celery fan-out: {sent} batch requests ({sent_before_loss} before machine A was lost), "
        f"{statuses[429]} answered 429; chunks lost with machine A: {[v['map_index'] for v in victims]}; "
        f"run took {time.monotonic() - started:.0f} s"
    )
    assert statuses[429] <= 0.005 * sent, statuses
    # The retries sent again at most what the lost tries had sent, not their whole chunks.
    assert TOTAL // 100 <= statuses[200] <= TOTAL // 100 + sent_before_loss
