"""The report a task returned (``report_html`` in its XCom return value) opens from its view, sandboxed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import ApiServer, write_ledger
from .test_views import TI

REPORT = "<!doctype html><title>Night report</title><h1>Counts</h1><script>alert(1)</script>"


@pytest.fixture
def returned(airflow_db: str) -> Any:
    """Record a task instance's return value in the metadata database, as a finished task does."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils import timezone
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType
    from sqlalchemy import delete, insert

    made: list[tuple[str, str]] = []

    def record(dag_id: str, run_id: str, task_id: str, value: Any) -> None:
        with create_session() as session:
            session.add(
                DagRun(dag_id=dag_id, run_id=run_id, run_type=DagRunType.MANUAL, run_after=timezone.utcnow())
            )
            session.flush()
            # The row a task instance leaves (its XCom refers to it); no DAG needs to be parsed for it.
            ti = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": -1}
            session.execute(insert(TaskInstance.__table__).values(**ti, pool="default_pool"))
            XComModel.set(
                "return_value", value, dag_id=dag_id, task_id=task_id, run_id=run_id, session=session
            )
        made.append((dag_id, run_id))

    yield record
    with create_session() as session:
        for dag_id, run_id in made:
            session.execute(delete(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id))
            session.execute(
                delete(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            )
            session.execute(delete(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


def test_the_returned_html_report_is_served_sandboxed_and_only_an_html_file(
    api_server: ApiServer, tmp_path: Path, index_root: Path, returned: Any, index_ledger: Any
):
    # The flagship's report sits beside the ledger of its run's batch task: only there is it served.
    for run in ("run_report", "run_other"):
        index_ledger(write_ledger(tmp_path / run / "ledger.csv", []), "nightly", run, "unsubscribe")
    report = tmp_path / "run_report" / "report.html"
    report.write_text(REPORT)
    secret = tmp_path / "run_other" / "ledger.csv"
    returned("nightly", "run_report", "report", {"report_html": str(report), "ok": 3})
    returned("nightly", "run_other", "report", {"report_html": str(secret)})
    with api_server.browser("auditor") as client:
        answer = client.get(
            "/hubspot-prefs/api/ti/report", params={**TI, "run_id": "run_report", "task_id": "report"}
        )
        not_html = client.get(
            "/hubspot-prefs/api/ti/report", params={**TI, "run_id": "run_other", "task_id": "report"}
        )
    report_ti = {**TI, "run_id": "run_report", "task_id": "report"}
    with api_server.browser("viewer") as client:
        # The report names lines, never addresses: a reader of the DAG without the address
        # permission opens it too. The task wrote no ledger, and its view says so, with the report.
        viewer = client.get("/hubspot-prefs/api/ti/report", params=report_ti)
        view = client.get("/hubspot-prefs/api/ti", params=report_ti)
    assert answer.status_code == 200 and answer.text == REPORT
    policy = answer.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy  # the report's script never runs
    assert answer.headers["cache-control"] == "no-store"
    assert not_html.status_code == 404 and "jane" not in not_html.text
    assert viewer.status_code == 200 and viewer.text == REPORT
    assert view.status_code == 404 and view.json()["report_available"] is True
    assert view.json()["detail"].startswith("No ledger is indexed for this task instance")


def test_a_report_beside_a_ledger_on_object_storage_is_served(
    api_server: ApiServer, tmp_path: Path, index_root: Path, returned: Any, index_ledger: Any
):
    # Ledger and report on object storage (local:// stands for s3:// here): the report's folder and
    # the ledger's are the same, spelled as URIs; the view serves it as it does a local one.
    folder = tmp_path / "bucket" / "run_remote"
    write_ledger(folder / "ledger.csv", [])
    index_ledger(f"local://{folder / 'ledger.csv'}", "nightly", "run_remote", "unsubscribe")
    (folder / "report.html").write_text(REPORT)
    returned("nightly", "run_remote", "report", {"report_html": f"local://{folder / 'report.html'}"})
    with api_server.browser("auditor") as client:
        params = {**TI, "run_id": "run_remote", "task_id": "report"}
        answer = client.get("/hubspot-prefs/api/ti/report", params=params)
    assert answer.status_code == 200 and answer.text == REPORT
