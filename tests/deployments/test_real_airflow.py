"""The provider in a real Airflow 3 deployment: api-server, scheduler, dag-processor, triggerer.

LocalExecutor and SQLite in a throwaway AIRFLOW_HOME, the emulator on loopback, connections made
through the REST API (and, in the browser test, through the UI's form), DAG runs triggered through
the REST API. Slow (minutes): marked ``e2e``.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_hubspot_prefs.emulator import EmulatorConfig, EmulatorServer

from ..airflow_deployment import AirflowDeployment
from ..browser import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# Distinctive secrets, so that finding one anywhere in logs, XCom or rendered fields means a leak.
OAUTH_CLIENT_ID = "e2e-client-" + secrets.token_hex(4)
OAUTH_CLIENT_SECRET = "e2e-client-secret-" + secrets.token_hex(12)
REFRESH_TOKEN = "e2e-refresh-" + secrets.token_hex(12)
UI_TOKEN = "pat-e2e-ui-" + secrets.token_hex(12)
ASYNC_CONFIG = EmulatorConfig(rate_limit_max=100_000, processing_delay_ms=4000)


@pytest.fixture(scope="module")
def hubspot() -> Any:
    """An emulator of its own, answering writes with PENDING for 4 s (HubSpot's asynchronous mode)."""
    with EmulatorServer(EmulatorConfig(**asdict(ASYNC_CONFIG))) as server:
        server.backend.oauth_clients[OAUTH_CLIENT_ID] = OAUTH_CLIENT_SECRET
        server.backend.refresh_tokens[REFRESH_TOKEN] = OAUTH_CLIENT_ID
        server.backend.add_token(UI_TOKEN)
        yield server


@pytest.fixture(scope="module")
def airflow(hubspot, tmp_path_factory) -> Any:
    home = tmp_path_factory.mktemp("airflow-home")
    with AirflowDeployment(home, os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).running() as deployment:
        # The default connection, through the REST API: OAuth, so that client secret and refresh
        # token travel through every task that the secrets check below reads.
        deployment.add_connection(
            "hubspot_prefs_default",
            "hubspot_prefs",
            extra={
                "base_url": hubspot.url,
                "client_id": OAUTH_CLIENT_ID,
                "client_secret": OAUTH_CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "rate_limit": 100_000,
            },
        )
        yield deployment


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-data")


@pytest.fixture(scope="module")
def flagship_run(airflow, hubspot, data) -> dict[str, Any]:
    addresses = [f"withdrawn.{i:05d}@example.com" for i in range(1500)]
    source = data / "withdrawals.txt"
    source.write_text("\n".join([*addresses, "WITHDRAWN.00001@EXAMPLE.COM", "not-an-address"]) + "\n")
    run_id = airflow.trigger(
        "hubspot_gdpr_unsubscribe", {"input_path": str(source), "ledger_dir": str(data / "ledgers")}
    )
    state = airflow.wait_for_run("hubspot_gdpr_unsubscribe", run_id, timeout=300)
    return {"run_id": run_id, "state": state, "addresses": addresses}


def test_flagship_dag_runs_with_a_really_deferred_sensor(airflow, hubspot, flagship_run, data):
    run_id = flagship_run["run_id"]
    assert flagship_run["state"] == "success", airflow.task_instances("hubspot_gdpr_unsubscribe", run_id)
    states = {ti["task_id"]: ti["state"] for ti in airflow.task_instances("hubspot_gdpr_unsubscribe", run_id)}
    assert states == dict.fromkeys(("unsubscribe_all", "wait_until_complete", "report"), "success")

    # The sensor handed its wait to the triggerer: seen deferred, and the trigger's own log says it ran.
    assert "deferred" in airflow.seen_states[("hubspot_gdpr_unsubscribe", run_id, "wait_until_complete")]
    logs = airflow.task_logs("hubspot_gdpr_unsubscribe", run_id, "wait_until_complete")
    trigger_logs = [text for name, text in logs.items() if ".trigger." in name]
    assert trigger_logs, sorted(logs)
    assert "Trigger fired event" in trigger_logs[0]
    assert "All 1500 contact(s) are unsubscribed from all email" in trigger_logs[0]

    report = json.loads(next((data / "ledgers").rglob("report.json")).read_text())
    # Written PENDING, confirmed by the deferred sensor from the ledger.
    assert report["total_inputs"] == 1502
    assert report["outcomes"] == {"unsubscribed": 1500, "duplicate": 1, "invalid_input": 1}
    assert all((a, 0) in hubspot.backend.wide for a in flagship_run["addresses"])


@pytest.fixture(scope="module")
def other_example_runs(airflow, flagship_run, data) -> dict[str, tuple[str, str]]:
    source = data / "fanout.txt"
    source.write_text("".join(f"fanout.{i:04d}@example.net\n" for i in range(900)))
    runs = {
        "hubspot_consent_update": airflow.trigger(
            "hubspot_consent_update",
            {"subscribers": ["alice@example.com", "erin@example.com"], "ledger_dir": str(data / "consent")},
        ),
        "hubspot_large_list_fanout": airflow.trigger(
            "hubspot_large_list_fanout",
            {"input_path": str(source), "ledger_dir": str(data / "fanout"), "chunk_size": 300},
        ),
    }
    return {dag_id: (run_id, airflow.wait_for_run(dag_id, run_id)) for dag_id, run_id in runs.items()}


def test_other_example_dags_succeed(other_example_runs):
    assert {dag: state for dag, (_, state) in other_example_runs.items()} == {
        "hubspot_consent_update": "success",
        "hubspot_large_list_fanout": "success",
    }


def test_status_export_schedules_the_report_through_its_asset(airflow, hubspot, flagship_run, data):
    """The export announces its file as an asset; the scheduler then runs the report DAG scheduled
    on that asset, which reads the counts and the path from the event."""
    airflow.wait_for_dag("hubspot_status_report")
    airflow.api("PATCH", "/dags/hubspot_status_report", json={"is_paused": False})
    source = data / "audit.txt"
    source.write_text(
        "\n".join([*flagship_run["addresses"][:250], "nobody.at.all@example.com", "oops"]) + "\n"
    )
    run_id = airflow.trigger(
        "hubspot_status_export", {"input_path": str(source), "export_dir": str(data / "exports")}
    )
    assert airflow.wait_for_run("hubspot_status_export", run_id) == "success"
    deadline = time.monotonic() + 120
    while not (runs := airflow.api("GET", "/dags/hubspot_status_report/dagRuns")["dag_runs"]):
        assert time.monotonic() < deadline, "the scheduler did not run the report on the asset event"
        time.sleep(1)
    (report,) = runs
    assert report["run_type"] == "asset_triggered"
    assert airflow.wait_for_run("hubspot_status_report", report["dag_run_id"]) == "success"
    seen = airflow.api(
        "GET",
        f"/dags/hubspot_status_report/dagRuns/{report['dag_run_id']}/taskInstances/report/xcomEntries/return_value",
        params={"deserialize": True},
    )["value"]
    assert seen["contacts"] == 251 and seen["not_found"] == 1 and seen["invalid_input"] == 1, seen
    exported = Path(seen["output_path"])
    assert exported.parent.parent == data / "exports" and exported.is_file()
    rows = exported.read_text().splitlines()
    assert len(rows) - 1 == seen["rows"]  # the header, then the rows the event counted


def test_consent_sync_runs_nightly_from_a_database_connection(airflow, hubspot, data):
    """The sync DAG reads a SQLite consent table through an Airflow connection made in the REST
    API; unpausing it may also start its scheduled run, which waits for the other (one run at a
    time): together they write each differing row exactly once and keep HubSpot's newer choices."""
    from ..consent_support import consent_table

    hubspot.control("PATCH", "config", json={"processing_delay_ms": 0})  # writes answered COMPLETE
    try:
        table = consent_table(hubspot.backend, data / "consent.db", contacts=200, prefix="nightly")
        airflow.add_connection("hubspot_prefs_consent_db", "sqlite", host=str(table.path))
        run_id = airflow.trigger("hubspot_consent_sync", {"ledger_dir": str(data / "consent_sync")})
        assert airflow.wait_for_run("hubspot_consent_sync", run_id) == "success"
        runs = airflow.api("GET", "/dags/hubspot_consent_sync/dagRuns")["dag_runs"]
        nights = []
        for run in runs:
            assert airflow.wait_for_run("hubspot_consent_sync", run["dag_run_id"]) == "success"
            nights.append(
                airflow.api(
                    "GET",
                    f"/dags/hubspot_consent_sync/dagRuns/{run['dag_run_id']}/taskInstances/report/xcomEntries/return_value",
                    params={"deserialize": True},
                )["value"]
            )
    finally:
        hubspot.control("PATCH", "config", json={"processing_delay_ms": ASYNC_CONFIG.processing_delay_ms})
    written = [w for w in hubspot.backend.status_writes if w[0].startswith("nightly.")]
    assert sorted(written) == sorted(table.writes)  # each differing row once, over all the runs
    assert sorted(night["written"] for night in nights)[-1] == len(table.writes)
    assert sum(night["written"] for night in nights) == len(table.writes)
    for key in table.kept:
        assert hubspot.backend.statuses[key].status == "SUBSCRIBED"
    assert all(night["outcomes"].get("kept_newer_in_hubspot") == len(table.kept) for night in nights)


def _write_requests(hubspot) -> int:
    return sum(1 for r in hubspot.backend.request_log if r["path"].endswith("batch/unsubscribe-all"))


def _start_batch(airflow, hubspot, source: Path, ledger: Path, writes: int) -> tuple[str, dict[str, Any]]:
    """Trigger the batch DAG and return once its first try has sent ``writes`` batch requests."""
    before = _write_requests(hubspot)
    run_id = airflow.trigger(
        "test_resume_after_kill", {"input_path": str(source), "ledger_path": str(ledger)}
    )
    deadline = time.monotonic() + 120
    while _write_requests(hubspot) - before < writes:
        assert time.monotonic() < deadline, "the batch did not get going"
        time.sleep(0.05)
    (ti,) = airflow.task_instances("test_resume_after_kill", run_id)
    assert ti["state"] == "running" and ti["try_number"] == 1 and ti["pid"]
    return run_id, ti


@pytest.mark.parametrize("where", ["same worker", "another worker"])
def test_worker_killed_mid_batch_resumes_from_its_checkpoint(airflow, hubspot, data, where):
    """SIGKILL of the task's process; Airflow retries it; the retry continues where the first stopped.

    "another worker": the work store is removed right after the kill, as on a retry that lands on a
    machine whose temp dir never saw the first try; it resumes from the checkpoint next to the ledger.
    """
    config = hubspot.backend.config
    config.update({"processing_delay_ms": 0, "latency_ms": 40})
    name = where.replace(" ", "-")
    try:
        total = 30_000
        source = data / f"resume-{name}.txt"
        people = [f"resume.{name}.{i:05d}@example.org" for i in range(total)]
        source.write_text("".join(f"{address}\n" for address in people))
        ledger = data / f"resume-ledger-{name}.csv"
        before = _write_requests(hubspot)
        run_id, ti = _start_batch(airflow, hubspot, source, ledger, writes=80)
        os.kill(int(ti["pid"]), signal.SIGKILL)
        sent_before_kill = _write_requests(hubspot) - before
        if where == "another worker":
            shutil.rmtree(airflow.home / "work-stores")

        assert airflow.wait_for_run("test_resume_after_kill", run_id, timeout=300) == "success"
    finally:
        config.update({"processing_delay_ms": ASYNC_CONFIG.processing_delay_ms, "latency_ms": 0})

    (ti,) = airflow.task_instances("test_resume_after_kill", run_id)
    assert ti["try_number"] == 2
    assert "up_for_retry" in airflow.seen_states[("test_resume_after_kill", run_id, "unsubscribe")]
    logs = airflow.task_logs("test_resume_after_kill", run_id, "unsubscribe")
    resumed_from = (
        "this worker's work store" if where == "same worker" else "the checkpoint next to the ledger"
    )
    assert f"Resuming from {resumed_from} (30000 inputs)" in logs["attempt=2.log"]

    with open(ledger, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["input"] for r in rows] == people
    # Every contact was changed by this task run, whichever try did it: none reads "already".
    assert Counter(r["outcome"] for r in rows) == {"unsubscribed": total}
    changed = {email for email, _ in hubspot.backend.changes if email.startswith(f"resume.{name}.")}
    assert changed == set(people)
    assert not [
        r for r in hubspot.control("GET", "changes")["repeated"] if r[0].startswith(f"resume.{name}.")
    ]
    # Not started over: the retry sent what the killed try had not finished; on the same worker at
    # most the two chunks in flight go twice, elsewhere what was answered after the last checkpoint.
    sent = _write_requests(hubspot) - before
    print(f"resume ({where}): {sent_before_kill} batch requests before SIGKILL, {sent} in all (300 needed)")
    assert sent_before_kill >= 80
    if where == "same worker":
        assert 300 <= sent <= 302
    else:
        assert 300 <= sent < 300 + sent_before_kill


def test_no_secret_or_address_in_logs_xcom_or_rendered_fields(airflow, flagship_run, other_example_runs):
    runs = [("hubspot_gdpr_unsubscribe", flagship_run["run_id"])]
    runs += [(dag_id, run_id) for dag_id, (run_id, _) in other_example_runs.items()]
    secrets_ = [OAUTH_CLIENT_SECRET, REFRESH_TOKEN, UI_TOKEN]
    addresses = flagship_run["addresses"]
    looked_at = Counter()

    for name, text in airflow.all_log_text().items():
        looked_at["log files"] += 1
        for secret in secrets_:
            assert secret not in text, f"secret in {name}"
        if "/dag_id=" in name:
            leaked = [a for a in addresses[:200] if a in text]
            assert not leaked, f"{leaked[:3]} in {name}"
    for dag_id, run_id in runs:
        for ti in airflow.task_instances(dag_id, run_id):
            base = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
            if ti["map_index"] >= 0:
                base += f"/{ti['map_index']}"
            rendered = json.dumps(airflow.api("GET", base).get("rendered_fields"))
            looked_at["rendered fields"] += 1
            entries = airflow.api(
                "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries"
            )
            for entry in entries["xcom_entries"]:
                value = airflow.api(
                    "GET",
                    f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries/{entry['key']}",
                    params={"map_index": entry["map_index"], "deserialize": True, "stringify": True},
                )
                looked_at["xcom values"] += 1
                for secret in secrets_:
                    assert secret not in json.dumps(value) and secret not in rendered
    # The check looked at something: task logs, trigger logs, component output, XCom, rendered fields.
    assert looked_at["log files"] > 15 and looked_at["xcom values"] >= 5 and looked_at["rendered fields"] >= 8


def test_cli_tests_connections_stored_in_the_deployment(airflow, hubspot):
    """``airflow connections test`` on the REST-made OAuth connection, and on one added by the CLI."""
    hubspot.backend.request_log.clear()
    good = airflow.cli("connections", "test", "hubspot_prefs_default")
    assert "Connection success!" in good.stdout
    # The refresh token was exchanged for an access token, which then read the definitions.
    assert [r["path"] for r in hubspot.backend.request_log] == [
        "/oauth/v1/token",
        "/communication-preferences/v4/definitions",
    ]

    bad_token = "pat-e2e-not-issued-" + secrets.token_hex(6)
    extra = json.dumps({"base_url": hubspot.url})
    airflow.cli(
        "connections", "add", "hubspot_prefs_bad", "--conn-type", "hubspot_prefs",
        "--conn-password", bad_token, "--conn-extra", extra,
    )  # fmt: skip
    bad = airflow.cli("connections", "test", "hubspot_prefs_bad", check=False)
    output = bad.stdout + bad.stderr
    assert "Connection failed" in output and "HTTP 401 INVALID_AUTHENTICATION" in output
    assert bad_token not in output and OAUTH_CLIENT_SECRET not in good.stdout + good.stderr


def test_connection_form_in_the_ui_offers_our_fields_and_saves_a_working_connection(
    airflow, hubspot, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def option(text: str) -> Any:
        return browser.find_element(By.XPATH, f"//*[@role='option'][normalize-space()='{text}']")

    browser.get(f"{airflow.url}/connections")
    browser.find_element(By.XPATH, "//button[normalize-space()='Add Connection']").click()
    browser.find_element(By.NAME, "connection_id").send_keys("hubspot_prefs_ui")
    browser.find_element(By.CSS_SELECTOR, "[role=dialog] input[role=combobox]").send_keys("HubSpot")
    option("HubSpot Communication Preferences").click()

    # The token field: relabeled, masked, with our placeholder; host/login/port/schema hidden.
    token = browser.find_element(By.NAME, "password")
    assert token.get_attribute("type") == "password"
    assert token.get_attribute("placeholder") == "pat-na1-..."
    dialog = browser.find_element(By.CSS_SELECTOR, "[role=dialog]")
    assert "Private app access token" in dialog.text
    browser.implicitly_wait(0)  # the form is drawn (the token field is there): absence needs no wait
    assert not browser.find_elements(By.NAME, "host") and not browser.find_elements(By.NAME, "login")
    browser.implicitly_wait(15)
    token.send_keys(UI_TOKEN)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "connection-form-token.png"))  # the token shows as dots

    browser.find_element(By.XPATH, "//button[normalize-space()='Extra Fields']").click()
    WebDriverWait(browser, 15).until(lambda b: b.find_element(By.ID, "element_base_url").is_displayed())
    for label in ("API version", "Base URL", "Business unit ID", "OAuth client ID", "OAuth client secret"):
        assert label in dialog.text
    for secret_field in ("element_client_secret", "element_refresh_token"):
        assert browser.find_element(By.ID, secret_field).get_attribute("type") == "password"
    assert browser.find_element(By.ID, "element_client_id").get_attribute("type") == "text"
    base_url = browser.find_element(By.ID, "element_base_url")
    assert base_url.get_attribute("placeholder")  # with https://api.hubapi.com as its suggestion
    suggestions = browser.find_elements(By.CSS_SELECTOR, "datalist#list_base_url option")
    assert [s.get_attribute("value") for s in suggestions] == ["https://api.hubapi.com"]
    base_url.send_keys(hubspot.url)

    # API version is a choice of the three versions, not free text.
    browser.find_elements(By.CSS_SELECTOR, "[role=dialog] input[role=combobox]")[-1].click()
    offered = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "[role=option]")]
    assert offered == ["v4", "2026-03", "2026-09"]
    option("2026-03").click()
    rate_limit = browser.find_element(By.NAME, "element_rate_limit")
    rate_limit.send_keys(Keys.CONTROL, "a")
    rate_limit.send_keys("100000")

    shot = ARTIFACTS / "connection-form.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot of the filled form: {shot}")
    browser.find_element(By.XPATH, "//button[normalize-space()='Save']").click()

    deadline = time.monotonic() + 30
    while airflow.http.get("/connections/hubspot_prefs_ui").status_code != 200:
        assert time.monotonic() < deadline, "the form did not save the connection"
        time.sleep(0.5)
    saved = airflow.api("GET", "/connections/hubspot_prefs_ui")
    assert saved["conn_type"] == "hubspot_prefs" and saved["password"] != UI_TOKEN
    extra = json.loads(saved["extra"])
    assert extra["base_url"] == hubspot.url and extra["api_version"] == "2026-03"
    assert int(extra["rate_limit"]) == 100_000

    # The saved connection works in a DAG run, with the version chosen in the form.
    hubspot.backend.request_log.clear()
    run_id = airflow.trigger(
        "test_named_connection", {"conn_id": "hubspot_prefs_ui", "subscriber": "ui.form@example.com"}
    )
    assert airflow.wait_for_run("test_named_connection", run_id, timeout=180) == "success"
    paths = [r["path"] for r in hubspot.backend.request_log]
    assert "/communication-preferences/2026-03/statuses/ui.form@example.com/unsubscribe-all" in paths
    assert ("ui.form@example.com", 0) in hubspot.backend.wide


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie is gone for our purpose
        return handle.read().split(") ", 1)[1][0] != "Z"


def test_overlapping_tries_after_a_scheduler_crash_leave_one_true_ledger(airflow, hubspot, data):
    """The scheduler dies while a batch waits on slow answers; the new scheduler resets the orphaned
    task and starts try 2 while try 1 still runs. Whatever order they end in, the ledger is try 2's,
    complete and true, and try 1 writes nothing over it. Runs last: it restarts the scheduler."""
    config = hubspot.backend.config
    config.update({"processing_delay_ms": 0, "latency_ms": 400})
    total = 6_000
    people = [f"overlap.{i:05d}@example.org" for i in range(total)]
    source = data / "overlap.txt"
    source.write_text("".join(f"{address}\n" for address in people))
    ledger = data / "overlap-ledger.csv"
    try:
        run_id, ti = _start_batch(airflow, hubspot, source, ledger, writes=10)
        first_pid = int(ti["pid"])
        airflow.kill_and_restart("scheduler", down_for=1)

        deadline = time.monotonic() + 120
        while True:
            (ti,) = airflow.task_instances("test_resume_after_kill", run_id)
            if ti["try_number"] == 2 and ti["state"] == "running":
                break
            assert time.monotonic() < deadline, f"no second try started: {ti}"
            time.sleep(0.1)
        overlapped = _alive(first_pid)
        config.update({"latency_ms": 20})
        assert airflow.wait_for_run("test_resume_after_kill", run_id, timeout=300) == "success"
    finally:
        config.update({"processing_delay_ms": ASYNC_CONFIG.processing_delay_ms, "latency_ms": 0})

    assert overlapped, "try 1 had already ended when try 2 ran: the tries did not overlap"
    # Try 1 either noticed the takeover and stopped, or was killed and its on_kill left the ledger.
    first = airflow.task_logs("test_resume_after_kill", run_id, "unsubscribe").get("attempt=1.log", "")
    stopped = "Stopped without writing: try 2 took over" in first
    assert stopped or "ledger untouched" in first, first[-2000:]
    print(f"overlap: try 1 still ran when try 2 started; it {'stopped' if stopped else 'was killed'}")
    with open(ledger, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["input"] for r in rows] == people
    assert Counter(r["outcome"] for r in rows) == {"unsubscribed": total}
    changed = {email for email, _ in hubspot.backend.changes if email.startswith("overlap.")}
    assert changed == set(people)
    assert not [r for r in hubspot.control("GET", "changes")["repeated"] if r[0].startswith("overlap.")]
    assert json.loads((data / "overlap-ledger.csv.checkpoint.json").read_text())["try_number"] == 2
