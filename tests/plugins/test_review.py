"""Review of the plugin (issue 25): answers that claim what the code does not know, and leaks.

Each test fails on 4e98175; see the review report for root causes and suggested fixes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .conftest import ApiServer, write_ledger
from .test_report import returned  # noqa: F401 - the fixture recording a task's return value
from .test_views import RUN_ID, TI, file_counts, ledger_rows

ADDRESS = "jane.doe@example.com"


def _segment_of(index_root: Path, ledger: Path) -> Path:
    from airflow_provider_hubspot_prefs.ledger import index

    return Path(index.segment_location(str(index_root), TI["dag_id"], RUN_ID, str(ledger)))


def _one_row_ledger(path: Path, address: str = ADDRESS, outcome: str = "failed", **more: Any) -> Path:
    return write_ledger(
        path,
        [
            {
                "line": 1,
                "input": address,
                "subscriber_id": address,
                "outcome": outcome,
                "reason": "rate limited",
                "first_sent_at": "2026-03-02T09:00:00.000Z",
                **more,
            }
        ],
    )


# --- unknown is unknown: the lookup and the views ------------------------------------------------


def _damaged_segment(tmp_path: Path, index_ledger: Any, index_root: Path) -> None:
    """nightly's only ledger, holding jane's row, indexed; then its segment cut short (a storage
    crash, a truncated upload)."""
    ledger = _one_row_ledger(tmp_path / "ledger.csv")
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    segment = _segment_of(index_root, ledger)
    segment.write_bytes(segment.read_bytes()[:20])


def test_a_lookup_names_a_segment_it_could_not_read_even_when_its_dag_has_no_readable_one(
    api_server: ApiServer, tmp_path: Path, index_ledger, index_root: Path
):
    # nightly's only ledger holds jane's row; its segment is damaged (a crash of the storage, a
    # truncated upload). The lookup must say that a ledger of a DAG the user reads was not searched.
    _damaged_segment(tmp_path, index_ledger, index_root)
    with api_server.browser("auditor") as client:
        answer = client.post("/hubspot-prefs/api/lookup", json={"address": ADDRESS})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["rows"] == []
    # Before the fix: {"rows": [], "searched_ledgers": 0, "unreadable": []} - the page then said
    # "No ledger of a DAG you may read holds this address."
    assert found["unreadable"], found


def test_the_run_view_names_a_segment_it_could_not_read(
    api_server: ApiServer, tmp_path: Path, index_ledger, index_root: Path
):
    _damaged_segment(tmp_path, index_ledger, index_root)
    with api_server.browser("auditor") as client:
        answer = client.get("/hubspot-prefs/api/run", params={"dag_id": "nightly", "run_id": RUN_ID})
    assert answer.status_code == 200, answer.text
    # Before the fix {"ledgers": []}: the page said "No ledger is indexed for this run: none of its tasks
    # wrote one, or they have not finished", while one did and its index entry is unreadable.
    assert answer.json() != {"ledgers": []}, answer.json()


def test_the_run_view_counts_are_the_files_or_say_they_are_not(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    # The ledger changed after it was indexed (a sensor's confirmation whose re-index failed, or
    # a retry whose indexing failed): the task-instance view says so (index_matches_file); the run
    # view shows the index's old counts as if they were the ledger's.
    ledger = write_ledger(tmp_path / "ledger.csv", ledger_rows(12))
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    rows = ledger_rows(12)
    for each in rows:
        if each["outcome"] == "submitted":
            each["outcome"] = "unsubscribed"
    write_ledger(ledger, rows)
    with api_server.browser("auditor") as client:
        answer = client.get("/hubspot-prefs/api/run", params={"dag_id": "nightly", "run_id": RUN_ID})
    [shown] = answer.json()["ledgers"]
    current = dict(file_counts(ledger))
    assert shown["outcomes"] == current or shown.get("index_matches_file") is False, (
        shown["outcomes"],
        current,
    )


def test_a_task_whose_ledger_was_not_indexed_is_not_said_to_have_written_none(
    api_server: ApiServer,
    tmp_path: Path,
    index_root: Path,
    returned: Any,  # noqa: F811
):
    # The batch task wrote its ledger; the index write failed (storage full, no key yet...), which
    # its summary records (runs.final_ledger: index.written false, with why). The view answers
    # "it wrote none ... or it has not finished yet": neither is true, and the plugin could know.
    ledger = _one_row_ledger(tmp_path / "ledger.csv")
    why = "[Errno 28] No space left on device"
    summary = {"ledger_path": str(ledger), "outcomes": {"failed": 1}, "index": {"written": False, "why": why}}
    returned("nightly", "run_not_indexed", "unsubscribe", summary)
    with api_server.browser("auditor") as client:
        answer = client.get("/hubspot-prefs/api/ti", params={**TI, "run_id": "run_not_indexed"})
    detail = answer.json().get("detail", "")
    assert "wrote none" not in detail, detail
    assert why in answer.text or str(ledger) in answer.text, answer.text


def test_a_lookup_says_which_ledgers_of_readable_dags_it_could_not_search(
    api_server: ApiServer,
    tmp_path: Path,
    index_root: Path,
    returned: Any,  # noqa: F811
):
    # Same unindexed ledger, holding jane's row: the lookup answers no rows and nothing unsearched;
    # the page says "No ledger of a DAG you may read holds this address." The auditor is told a
    # falsehood, although the task's summary in the metadata database says its ledger is not indexed.
    ledger = _one_row_ledger(tmp_path / "ledger.csv")
    summary = {"ledger_path": str(ledger), "index": {"written": False, "why": "storage unreachable"}}
    returned("nightly", "run_lookup_not_indexed", "unsubscribe", summary)
    with api_server.browser("auditor") as client:
        answer = client.post("/hubspot-prefs/api/lookup", json={"address": ADDRESS})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["rows"] or "run_lookup_not_indexed" in answer.text, found


# --- secrets and personal data: redaction for users without the address permission ---------------


def test_a_viewer_sees_no_address_in_an_unreadable_requested_at(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    # requested_at keeps the text as given when it could not be read (spec 1); a shifted
    # spreadsheet cell may hold an address. The deadline report says 'unreadable' (4e98175); the
    # failed rows of the task-instance view hand the text out unredacted.
    ledger = _one_row_ledger(
        tmp_path / "ledger.csv", address="jane.doe@example.com", requested_at="john.smith@example.org"
    )
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    with api_server.browser("viewer") as client:
        view = client.get("/hubspot-prefs/api/ti", params=TI)
        page = client.get("/hubspot-prefs/api/ti/failures", params=TI)
    assert view.status_code == 200, view.text
    assert "john.smith@example.org" not in view.text + page.text


def test_a_viewer_sees_no_address_with_non_ascii_characters(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    # The provider accepts internationalized addresses (ledger.inputs.examine), so a ledger holds
    # them; shown_row redacts input and reason with redact_text, whose pattern is ASCII-only.
    address = "ürsula@example.de"
    ledger = write_ledger(
        tmp_path / "ledger.csv",
        [
            {
                "line": 1,
                "input": address,
                "subscriber_id": address,
                "outcome": "failed",
                "reason": f"HubSpot refused {address}",
            },
            {"line": 2, "input": "用户@例子.广告", "subscriber_id": "用户@例子.广告", "outcome": "failed"},
        ],
    )
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    with api_server.browser("viewer") as client:
        view = client.get("/hubspot-prefs/api/ti", params=TI)
    assert view.status_code == 200, view.text
    rows = view.json()["attention"]["rows"]
    shown = [(r["input"], r["reason"]) for r in rows]
    assert all("ürsula@" not in i + r and "用户@" not in i + r for i, r in shown), shown


def test_a_report_html_that_is_a_link_to_a_ledger_is_not_served(
    api_server: ApiServer,
    tmp_path: Path,
    index_root: Path,
    returned: Any,  # noqa: F811
):
    # report_html comes from XCom (any task's code, or a user allowed to write XCom entries): only
    # its name is checked. A link named .html to a ledger hands the ledger's addresses, as HTML, to
    # a reader of the DAG without the address permission.
    ledger = _one_row_ledger(tmp_path / "ledgers" / "ledger.csv")
    link = tmp_path / "report.html"
    os.symlink(ledger, link)
    returned("nightly", "run_link", "report", {"report_html": str(link)})
    with api_server.browser("viewer") as client:
        params = {**TI, "run_id": "run_link", "task_id": "report"}
        answer = client.get("/hubspot-prefs/api/ti/report", params=params)
    assert ADDRESS not in answer.text, (answer.status_code, answer.headers.get("content-type"))


def test_a_report_html_outside_the_dags_files_is_not_served(
    api_server: ApiServer,
    tmp_path: Path,
    index_root: Path,
    returned: Any,  # noqa: F811
):
    # The same with "..": the report of secret_dag, which viewer may not read, opened through a
    # nightly task's XCom.
    secret_report = tmp_path / "secret_dag" / "run1" / "report.html"
    secret_report.parent.mkdir(parents=True)
    secret_report.write_text("<p>secret_dag: 3 failed</p>")
    (tmp_path / "nightly").mkdir()
    sneaky = f"{tmp_path}/nightly/../secret_dag/run1/report.html"
    returned("nightly", "run_dotdot", "report", {"report_html": sneaky})
    with api_server.browser("viewer") as client:
        params = {**TI, "run_id": "run_dotdot", "task_id": "report"}
        answer = client.get("/hubspot-prefs/api/ti/report", params=params)
    assert "secret_dag: 3 failed" not in answer.text, answer.status_code


# --- auth: methods other than GET/POST ----------------------------------------------------------


def test_head_and_options_are_refused_without_login(api_server: ApiServer, index_root: Path):
    paths = [
        "/hubspot-prefs/ti",
        "/hubspot-prefs/api/ti",
        "/hubspot-prefs/api/ti/ledger",
        "/hubspot-prefs/api/lookup",
    ]
    with api_server.browser(None) as client:
        for method in ("HEAD", "OPTIONS"):
            for path in paths:
                answer = client.request(method, path, params=TI)
                assert answer.status_code in (401, 403, 405), (method, path, answer.status_code)
                assert answer.headers.get("cache-control") == "no-store", (method, path)


def test_the_lookup_asks_for_the_same_access_as_the_task_instance_views(
    api_server: ApiServer, tmp_path: Path, index_ledger, monkeypatch
):
    # An auth manager (FAB, a custom one) may let a user read a DAG but not its task instances. The
    # task-instance and run views then refuse (requires_access_dag(GET, TASK_INSTANCE)); the lookup
    # judges DAGs by get_authorized_dag_ids(method=GET), the DAG itself, and shows the ledger rows.
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    manager = get_auth_manager()
    original = manager.is_authorized_dag

    def no_task_instances(*, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.get_name() == "analyst" and access_entity is DagAccessEntity.TASK_INSTANCE:
            return False
        return bool(original(method=method, user=user, access_entity=access_entity, details=details))

    monkeypatch.setattr(manager, "is_authorized_dag", no_task_instances)
    ledger = _one_row_ledger(tmp_path / "ledger.csv")
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    with api_server.browser("analyst") as client:
        view = client.get("/hubspot-prefs/api/ti", params=TI)
        found = client.post("/hubspot-prefs/api/lookup", json={"address": ADDRESS})
    assert view.status_code == 403, view.text
    assert found.status_code == 200 and found.json()["rows"] == [], found.text


def test_a_row_with_a_request_time_in_a_ledger_indexed_without_deadline_is_not_state_none(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    # DeadlineState "none" means "no requested_at" (spec 2). data.deadline_state answers "none" too
    # when the index entry has no deadline, which happens although the task had one: the batch
    # task's index write failed and the sensor after it indexed the ledger (sensors/_reindex passes
    # deadline None). The lookup then says this row had no request time; it had one.
    ledger = _one_row_ledger(tmp_path / "ledger.csv", requested_at="2026-03-01T09:00:00.000Z")
    index_ledger(ledger, "nightly", RUN_ID, "wait_complete")
    with api_server.browser("auditor") as client:
        found = client.post("/hubspot-prefs/api/lookup", json={"address": ADDRESS})
    [row] = found.json()["rows"]
    assert row["requested_at"] == "2026-03-01T09:00:00.000Z"
    assert row["deadline"]["state"] != "none", row["deadline"]
