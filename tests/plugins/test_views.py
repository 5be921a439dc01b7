"""The views' answers through Airflow's real api-server app: counts, paging, download, redaction,
the lookup with HubSpot's live state, and no address in any URL or log line."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_hubspot_prefs.emulator.server import EmulatorServer

from ..conftest import api_requests, connect_to_emulator
from .conftest import ApiServer, write_ledger

RUN_ID = "scheduled__2026-03-02T00:00:00+00:00"
TI = {"dag_id": "nightly", "run_id": RUN_ID, "task_id": "unsubscribe", "map_index": "-1"}
ATTENTION = {
    "failed",
    "invalid_input",
    "not_attempted",
    "needs_opt_in",
    "kept_newer_in_hubspot",
    "submitted",
    "pending",
}
OUTCOMES = ["unsubscribed", "already_unsubscribed", "failed", "invalid_input", "duplicate", "submitted"]


def ledger_rows(count: int) -> list[dict[str, object]]:
    """``count`` rows cycling through OUTCOMES, each with its own address."""
    rows: list[dict[str, object]] = []
    for line in range(1, count + 1):
        outcome = OUTCOMES[line % len(OUTCOMES)]
        address = f"person{line}@example.com"
        rows.append(
            {
                "line": line,
                "input": address if outcome != "invalid_input" else f"person{line} at example.com",
                "subscriber_id": address if outcome != "invalid_input" else "",
                "outcome": outcome,
                "reason": f"HubSpot refused {address}" if outcome == "failed" else "",
                "category": "VALIDATION_ERROR" if outcome == "failed" else "",
                "correlation_id": f"corr-{line}",
                "first_sent_at": "2026-03-02T09:00:00.000Z" if outcome != "invalid_input" else "",
            }
        )
    return rows


def file_counts(path: Path) -> Counter[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return Counter(row["outcome"] for row in csv.DictReader(handle))


def test_the_task_instance_view_counts_equal_the_ledger_file(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    ledger = write_ledger(tmp_path / "ledger.csv", ledger_rows(600))
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    with api_server.browser("auditor") as client:
        answer = client.get("/hubspot-prefs/api/ti", params=TI)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    expected = file_counts(ledger)
    assert view["summary"]["outcomes"] == dict(expected)
    assert view["summary"]["rows"] == sum(expected.values()) == 600
    assert view["summary"]["attention"] == sum(n for o, n in expected.items() if o in ATTENTION)
    assert view["index_matches_file"] is True
    assert view["summary"]["deadlines"] is None  # the task set none
    assert view["may_see_addresses"] is True
    first = view["attention"]["rows"]
    assert len(first) == 50 and first[0]["subscriber_id"] == f"person{first[0]['line']}@example.com"


def test_the_unmapped_placeholder_of_the_ui_reads_as_map_index_minus_one(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    index_ledger(write_ledger(tmp_path / "l.csv", ledger_rows(5)), "nightly", RUN_ID, "unsubscribe")
    with api_server.browser("auditor") as client:
        # The UI leaves "{MAP_INDEX}" as it is when the task instance has no map index.
        answer = client.get("/hubspot-prefs/api/ti", params={**TI, "map_index": "{MAP_INDEX}"})
    assert answer.status_code == 200 and answer.json()["entry"]["map_index"] == -1


def test_a_task_instance_without_a_ledger_says_so(api_server: ApiServer, index_root: Path):
    with api_server.browser("auditor") as client:
        answer = client.get("/hubspot-prefs/api/ti", params={**TI, "task_id": "report"})
    assert answer.status_code == 404
    assert "No ledger is indexed for this task instance" in answer.json()["detail"]
    assert answer.json()["report_available"] is False


def test_an_index_that_cannot_be_keyed_is_named_with_the_reason(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
):
    # An index on shared storage needs the configured key; without it the lookup says what to set.
    monkeypatch.setenv("AIRFLOW__HUBSPOT_PREFS__INDEX_PATH", "s3://ledgers/index")
    monkeypatch.delenv("AIRFLOW__HUBSPOT_PREFS__INDEX_KEY", raising=False)
    with api_server.browser("auditor") as client:
        answer = client.post("/hubspot-prefs/api/lookup", json={"address": "jane@example.com"})
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("The ledger index is unavailable:")
    assert "index_key" in answer.json()["detail"]


def test_failures_page_through_25000_rows_with_a_moving_cursor_no_row_twice_none_missing(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    ledger = write_ledger(tmp_path / "big.csv", ledger_rows(25_000))
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    with ledger.open(newline="") as handle:
        wanted = [int(r["line"]) for r in csv.DictReader(handle) if r["outcome"] in ATTENTION]
    seen: list[int] = []
    cursors: list[int] = []
    cursor: int | None = None
    with api_server.browser("auditor") as client:
        while True:
            params = {**TI, "limit": "500", **({"after_line": str(cursor)} if cursor is not None else {})}
            answer = client.get("/hubspot-prefs/api/ti/failures", params=params)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            assert len(page["rows"]) <= 500
            seen.extend(int(row["line"]) for row in page["rows"])
            cursor = page["next_after_line"]
            if cursor is None:
                break
            assert not cursors or cursor > cursors[-1]
            cursors.append(cursor)
        # A cursor naming no failed or refused row (line 1 is "already_unsubscribed") is refused,
        # not read as "from the start".
        refused = client.get("/hubspot-prefs/api/ti/failures", params={**TI, "after_line": "1"})
        assert refused.status_code == 400
    assert len(seen) == len(set(seen)) and seen == wanted
    assert len(wanted) == 12_500 and len(cursors) == 24


def test_the_download_is_the_file_and_every_answer_says_no_store(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    ledger = write_ledger(tmp_path / "ledger.csv", ledger_rows(3_000))
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    with api_server.browser("auditor") as client:
        download = client.get("/hubspot-prefs/api/ti/ledger", params=TI)
        others = [
            client.get("/hubspot-prefs/ti", params=TI),
            client.get("/hubspot-prefs/api/ti", params=TI),
            client.get("/hubspot-prefs/api/ti/failures", params=TI),
            client.get("/hubspot-prefs/api/run", params={"dag_id": "nightly", "run_id": RUN_ID}),
            client.get("/hubspot-prefs/api/ti", params={**TI, "task_id": "none"}),
            client.get("/hubspot-prefs/assets/ti.js"),
        ]
    assert download.status_code == 200
    assert download.content == ledger.read_bytes()
    assert download.headers["content-disposition"].startswith("attachment;")
    for answer in [download, *others]:
        assert answer.headers["cache-control"] == "no-store", answer.url
        assert answer.headers["pragma"] == "no-cache", answer.url


def test_a_user_without_the_address_permission_sees_rows_redacted_and_gets_no_download_nor_lookup(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    ledger = write_ledger(tmp_path / "ledger.csv", ledger_rows(300))
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe")
    with api_server.browser("viewer") as client:
        view = client.get("/hubspot-prefs/api/ti", params=TI)
        page = client.get("/hubspot-prefs/api/ti/failures", params={**TI, "limit": "500"})
        download = client.get("/hubspot-prefs/api/ti/ledger", params=TI)
        lookup = client.post("/hubspot-prefs/api/lookup", json={"address": "person2@example.com"})
    assert view.status_code == 200 and page.status_code == 200
    assert view.json()["may_see_addresses"] is False
    assert view.json()["summary"]["outcomes"] == dict(file_counts(ledger))  # counts are no addresses
    rows = page.json()["rows"]
    assert rows and all(r["subscriber_id"] in ("", "p***@example.com") for r in rows)
    assert not re.search(r"person\d+@", view.text + page.text)  # no address anywhere, reasons included
    assert download.status_code == 403 and "HubSpot Preferences Addresses" in download.json()["detail"]
    assert lookup.status_code == 403


def test_the_run_view_lists_every_ledger_of_the_run(api_server: ApiServer, tmp_path: Path, index_ledger):
    for map_index in (0, 1, 2):
        ledger = write_ledger(tmp_path / f"chunk{map_index}.csv", ledger_rows(10 + map_index))
        index_ledger(ledger, "nightly", RUN_ID, "unsubscribe", map_index=map_index)
    index_ledger(
        write_ledger(tmp_path / "other.csv", ledger_rows(4)), "nightly", "another_run", "unsubscribe"
    )
    with api_server.browser("viewer") as client:
        answer = client.get("/hubspot-prefs/api/run", params={"dag_id": "nightly", "run_id": RUN_ID})
    assert answer.status_code == 200
    ledgers = answer.json()["ledgers"]
    assert [(e["task_id"], e["map_index"], e["rows"]) for e in ledgers] == [
        ("unsubscribe", 0, 10),
        ("unsubscribe", 1, 11),
        ("unsubscribe", 2, 12),
    ]
    assert ledgers[1]["outcomes"] == dict(file_counts(tmp_path / "chunk1.csv"))


ADDRESS = "jane.doe@example.com"


def _runs_with(address: str, tmp_path: Path, index_ledger, conn_id: str) -> None:
    """Three runs of ``nightly`` and one of ``secret_dag`` handled ``address`` (among others)."""
    for n, (dag_id, outcome) in enumerate(
        [
            ("nightly", "failed"),
            ("nightly", "submitted"),
            ("nightly", "unsubscribed"),
            ("secret_dag", "unsubscribed"),
        ]
    ):
        rows = ledger_rows(40)
        rows[n + 5] = {
            "line": n + 6,
            "input": address.upper(),
            "subscriber_id": address,
            "outcome": outcome,
            "reason": "rate limited" if outcome == "failed" else "",
            "correlation_id": f"corr-run{n}",
            "first_sent_at": f"2026-03-0{n + 2}T09:00:00.000Z",
        }
        ledger = write_ledger(tmp_path / dag_id / f"run{n}.csv", rows)
        index_ledger(ledger, dag_id, f"scheduled__2026-03-0{n + 2}", "unsubscribe", hubspot_conn_id=conn_id)


def test_the_lookup_finds_the_rows_of_every_run_in_readable_dags_and_reads_hubspot_now(
    api_server: ApiServer,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    index_ledger,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
):
    conn_id = connect_to_emulator(monkeypatch, emulator)
    emulator.control(
        "POST", "contacts", json={"emails": [ADDRESS], "unsubscribed_at": "2026-03-04T09:00:00Z"}
    )
    _runs_with(ADDRESS, tmp_path, index_ledger, conn_id)
    caplog.set_level(logging.DEBUG)
    with api_server.browser("analyst") as client:
        analyst = client.post("/hubspot-prefs/api/lookup", json={"address": f"  {ADDRESS.upper()} "})
    with api_server.browser("auditor") as client:
        auditor = client.post("/hubspot-prefs/api/lookup", json={"address": ADDRESS})
    assert analyst.status_code == 200, analyst.text
    found = analyst.json()
    assert [(r["dag_id"], r["run_id"], r["line"], r["outcome"]) for r in found["rows"]] == [
        ("nightly", "scheduled__2026-03-02", "6", "failed"),
        ("nightly", "scheduled__2026-03-03", "7", "submitted"),
        ("nightly", "scheduled__2026-03-04", "8", "unsubscribed"),
    ]
    assert found["rows"][0]["correlation_id"] == "corr-run0" and found["rows"][0]["reason"] == "rate limited"
    assert found["rows"][0]["deadline"] == {"state": "no_deadline", "due_at": None}
    assert {r["dag_id"] for r in auditor.json()["rows"]} == {"nightly", "secret_dag"}
    assert len(auditor.json()["rows"]) == 4
    # HubSpot's state now, read once for the one connection the four ledgers share.
    [now] = found["hubspot_now"]
    assert now["ok"] is True and now["connection"] == conn_id and now["error"] is None
    assert [(w["type"], w["status"]) for w in now["wide"]] == [("PORTAL_WIDE", "UNSUBSCRIBED")]
    # The address went to HubSpot in request bodies, never in a URL; nor in a URL of the api-server,
    # nor in any log line it wrote.
    for request in api_requests(emulator):
        assert ADDRESS not in json.dumps(request.get("path", "")) and "jane" not in request.get("path", "")
    # Airflow's access log goes through structlog to the process's output, uvicorn's to logging.
    output = capfd.readouterr()
    lines = [record.getMessage() for record in caplog.records] + (output.out + output.err).splitlines()
    assert any("/hubspot-prefs/api/lookup" in line for line in lines)  # the access log was captured
    assert not [line for line in lines if "jane" in line.lower()]


def test_a_failed_live_read_shows_its_error_never_a_status(
    api_server: ApiServer,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    index_ledger,
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_BROKEN",
        json.dumps(
            {"conn_type": "hubspot_prefs", "password": "wrong-token", "extra": {"base_url": emulator.url}}
        ),
    )
    _runs_with(ADDRESS, tmp_path, index_ledger, "hubspot_broken")
    with api_server.browser("auditor") as client:
        answer = client.post("/hubspot-prefs/api/lookup", json={"address": ADDRESS})
    assert answer.status_code == 200, answer.text
    [now] = answer.json()["hubspot_now"]
    assert now["ok"] is False and now["wide"] == [] and now["subscriptions"] == []
    assert "401" in now["error"] or "Unauthorized" in now["error"] or "auth" in now["error"].lower(), now[
        "error"
    ]
    assert "wrong-token" not in answer.text


def test_the_lookup_page_sends_the_address_in_a_post_body_only(api_server: ApiServer):
    with api_server.browser("auditor") as client:
        page = client.get("/hubspot-prefs/lookup").text
        script = client.get("/hubspot-prefs/assets/lookup.js").text
        fallback = client.post(
            "/hubspot-prefs/lookup/no-script", content=b"", headers={"Content-Type": "x/none"}
        )
        by_query = client.request("GET", "/hubspot-prefs/api/lookup", params={"address": ADDRESS})
    form = re.search(r"<form[^>]*>", page)
    assert form and 'method="post"' in form.group(0) and 'action="lookup/no-script"' in form.group(0)
    field = re.search(r"<input[^>]*>", page)
    assert field and "name=" not in field.group(0)  # a form submitted without its script sends nothing
    assert 'call("api/lookup", {' in script and 'method: "POST"' in script
    assert "JSON.stringify({ address })" in script
    assert not re.search(r"[?&]address|URLSearchParams|location", script)
    assert fallback.status_code == 400 and "nothing was" in fallback.text
    assert by_query.status_code == 405  # the API takes no address from a URL
