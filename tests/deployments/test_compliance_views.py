"""The compliance views in a real Airflow 3 deployment with the login on, through Chromium.

api-server, scheduler, dag-processor and triggerer (LocalExecutor, SQLite); SimpleAuthManager with
one user who logs in through the real login form. The flagship DAG runs three times over CSV exports
that share one address; then the auditor opens a run's task instance and its "HubSpot ledger" tab,
looks the shared address up from the nav, and logs out, after which every endpoint of the plugin
refuses the old token. During the lookup the address is in no URL the browser asked for and in no
line of the api-server's log. Screenshots go to the test artifacts. Slow (minutes): marked ``e2e``.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx
import pytest

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, EmulatorConfig, EmulatorServer

from ..airflow_deployment import AirflowDeployment
from ..browser import ARTIFACTS, requested_urls
from ..plugins.test_access import plugin_endpoints

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DAG_ID = "hubspot_gdpr_unsubscribe"
TASK_ID = "unsubscribe_all"
SHARED = "shared.person@example.com"
RUNS = 3
AUDITOR, PASSWORD = "auditor", "auditor-pw-" + secrets.token_hex(8)
INDEX_KEY = "e2e-index-key-" + secrets.token_hex(16)
WEEKS_AGO = 28 * 86_400  # far past CAN-SPAM's 10 business days


@pytest.fixture(scope="module")
def hubspot() -> Iterator[EmulatorServer]:
    """Writes are answered PENDING for 1 s: the flagship's sensor confirms them, as with HubSpot."""
    with EmulatorServer(EmulatorConfig(rate_limit_max=100_000, processing_delay_ms=1000)) as server:
        yield server


@pytest.fixture(scope="module")
def airflow(hubspot: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("airflow-home")
    index = tmp_path_factory.mktemp("lookup-index")
    deployment = AirflowDeployment(
        home,
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"],
        users={AUDITOR: ("admin", PASSWORD)},
        extra_env={
            "AIRFLOW__HUBSPOT_PREFS__INDEX_PATH": str(index),
            "AIRFLOW__HUBSPOT_PREFS__INDEX_KEY": INDEX_KEY,
        },
    )
    with deployment.running():
        deployment.add_connection(
            "hubspot_prefs_default",
            "hubspot_prefs",
            password=DEMO_TOKEN,
            extra={"base_url": hubspot.url, "rate_limit": 100_000},
        )
        yield deployment


def _write_export(path: Path, run: int, now: float) -> str:
    """A spreadsheet's CSV export (UTF-8 with BOM, CRLF): the shared address, people of this run
    only, one line that is no address, one request made weeks ago. Returns that late person."""
    late = f"late.asker.{run}@example.org"

    def when(ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - ago))

    rows = [["Name", "Email", "requested_at"], ["Shared Person", SHARED.title(), when(3600 * (run + 1))]]
    rows += [[f"Person {run}.{i}", f"person.{run}.{i:02d}@example.org", when(600)] for i in range(12)]
    rows += [["Late Asker", late, when(WEEKS_AGO)], ["Nobody", "not-an-address", when(600)]]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        csv.writer(out, lineterminator="\r\n").writerows(rows)
    return late


@pytest.fixture(scope="module")
def runs(airflow: AirflowDeployment, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Three finished runs of the flagship DAG: run id, ledger file, the late asker's address."""
    data, now = tmp_path_factory.mktemp("compliance-data"), time.time()
    started = []
    for run in range(RUNS):
        source = data / f"withdrawals-{run}.csv"
        late = _write_export(source, run, now)
        conf = {"input_path": str(source), "ledger_dir": str(data / "ledgers"), "csv_column": "Email"}
        started.append({"run_id": airflow.trigger(DAG_ID, conf), "late": late})
    for run in started:
        state = airflow.wait_for_run(DAG_ID, run["run_id"], timeout=300)
        assert state == "success", airflow.task_instances(DAG_ID, run["run_id"])
        summary = airflow.api(
            "GET",
            f"/dags/{DAG_ID}/dagRuns/{run['run_id']}/taskInstances/{TASK_ID}/xcomEntries/return_value",
            params={"deserialize": True},
        )["value"]
        run["ledger"] = Path(summary["ledger_path"])
    return started


def _ledger_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _log_in(browser: Any, airflow: AirflowDeployment) -> None:
    """Through the login form of Airflow's SimpleAuthManager, as a person would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(airflow.url)
    WebDriverWait(browser, 30).until(lambda b: "/auth/login" in b.current_url)
    browser.find_element(By.NAME, "username").send_keys(AUDITOR)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
    WebDriverWait(browser, 30).until(lambda b: "/auth/" not in b.current_url and b.get_cookie("_token"))


def _into_the_view(browser: Any) -> None:
    """Into the iframe in which the UI shows an external view (its page, under the plugin's URL)."""
    from selenium.webdriver.common.by import By

    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _api_server_log(airflow: AirflowDeployment) -> str:
    return (airflow.home / "api-server.out").read_text(errors="replace")


def test_the_task_instance_tab_shows_the_counts_of_the_ledger_file(airflow, runs, browser, tmp_path):
    from selenium.webdriver.common.by import By

    first = runs[0]
    file_rows = _ledger_rows(first["ledger"])
    _log_in(browser, airflow)
    browser.get(f"{airflow.url}/dags/{DAG_ID}/runs/{quote(first['run_id'], safe='')}/tasks/{TASK_ID}")
    browser.find_element(By.XPATH, "//a[normalize-space()='HubSpot ledger']").click()
    _into_the_view(browser)
    browser.find_element(By.CSS_SELECTOR, "svg.chart")
    shown = {
        cells[0].text: int(cells[1].text)
        for row in browser.find_elements(By.CSS_SELECTOR, "#view table:first-of-type tbody tr")
        if len(cells := row.find_elements(By.TAG_NAME, "td")) == 2
    }
    counts = Counter(row["outcome"] for row in file_rows)
    assert shown == dict(counts)
    assert counts["unsubscribed"] == 14 and counts["invalid_input"] == 1, counts  # a real mix, confirmed
    # The person who asked weeks ago is listed past the deadline, by the ledger's line.
    (late,) = [row for row in file_rows if row["subscriber_id"] == first["late"]]
    past = browser.find_elements(By.XPATH, "//h2[. = 'Past the deadline']/following::table[1]/tbody/tr/td[1]")
    assert [cell.text for cell in past] == [late["line"]]
    browser.switch_to.default_content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "compliance-ti-view.png"))

    # The ledger downloads from the view, as the file itself (Airflow 3.3's frame allows downloads).
    _into_the_view(browser)
    browser.find_element(By.LINK_TEXT, "Download the ledger (CSV)").click()
    saved = tmp_path / "downloads"
    deadline = time.monotonic() + 30
    while not (done := list(saved.glob("*.csv"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p.read_bytes() for p in done] == [first["ledger"].read_bytes()], done


def test_the_run_tab_lists_its_ledger_and_the_report_task_opens_its_report_page(airflow, runs, browser):
    from selenium.webdriver.common.by import By

    run = runs[1]
    file_rows = _ledger_rows(run["ledger"])
    counts = Counter(row["outcome"] for row in file_rows)
    _log_in(browser, airflow)
    run_page = f"{airflow.url}/dags/{DAG_ID}/runs/{quote(run['run_id'], safe='')}"
    browser.get(run_page)
    browser.find_element(By.XPATH, "//a[normalize-space()='HubSpot ledgers']").click()
    _into_the_view(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "#view table tbody tr")
    shown = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    # One ledger: the sensor that confirmed it kept it the batch task's, rather than indexing its own.
    assert [row[:2] for row in shown] == [[TASK_ID, str(len(file_rows))]]
    assert dict(pair.split(": ") for pair in shown[0][2].split(", ")) == {
        k: str(n) for k, n in counts.items()
    }

    # The report task has no ledger, says so, and links the HTML page it wrote beside the ledger.
    browser.switch_to.default_content()
    browser.get(f"{run_page}/tasks/report")
    browser.find_element(By.XPATH, "//a[normalize-space()='HubSpot ledger']").click()
    _into_the_view(browser)
    assert "No ledger is indexed for this task instance" in browser.find_element(By.ID, "view").text
    browser.find_element(By.LINK_TEXT, "Open the task's report").click()  # in the frame: no popups
    assert browser.find_element(By.TAG_NAME, "h1").text == "HubSpot unsubscribe report"
    assert str(run["ledger"]) in browser.find_element(By.TAG_NAME, "body").text
    late = next(row for row in file_rows if row["subscriber_id"] == run["late"])
    listed = browser.find_elements(By.XPATH, "//h3[@class='past']/following::table[1]/tbody/tr/td[1]")
    assert late["line"] in [cell.text for cell in listed]


def test_the_lookup_finds_the_three_runs_and_hubspots_state_and_leaks_the_address_nowhere(
    airflow, hubspot, runs, browser
):
    from selenium.webdriver.common.by import By

    _log_in(browser, airflow)
    browser.find_element(By.XPATH, "//button[normalize-space()='Browse']").click()
    browser.find_element(By.XPATH, "//*[@role='menuitem'][normalize-space()='HubSpot lookup']").click()
    _into_the_view(browser)
    logged_before, asked_before = len(_api_server_log(airflow)), len(hubspot.backend.request_log)
    # Typed as the person wrote it in the spreadsheet; the lookup normalizes it.
    browser.find_element(By.ID, "address").send_keys(SHARED.title())
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    browser.find_element(By.XPATH, "//h2[starts-with(., 'Ledger rows (3,')]")
    found = browser.find_elements(
        By.XPATH, "//h2[starts-with(., 'Ledger rows')]/following::table[1]/tbody/tr"
    )
    shown = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in found]
    # Each run's row of the address, as its ledger file holds it: one per run, all three runs.
    columns = ("line", "outcome", "reason", "requested_at", "first_sent_at", "confirmed_at", "correlation_id")
    expected = []
    for run in runs:
        (row,) = [row for row in _ledger_rows(run["ledger"]) if row["subscriber_id"] == SHARED]
        expected.append([DAG_ID, run["run_id"], TASK_ID, *(row[column] for column in columns)])
    assert sorted(row[:10] for row in shown) == sorted(expected)
    assert [row[4] for row in shown] == ["unsubscribed"] * RUNS
    # HubSpot's live answer, read through the DAG's connection on the api-server.
    wide = browser.find_elements(By.XPATH, "//th[. = 'Unsubscribe from all']/ancestor::table[1]/tbody/tr/td")
    kind, status, since = (cell.text for cell in wide)
    assert (kind, status) == ("PORTAL_WIDE", "UNSUBSCRIBED")
    assert _instant(since) == _instant(hubspot.backend.wide[(SHARED, 0)])  # the emulator's own record
    browser.switch_to.default_content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1800, 1000)  # the whole table, correlation ids included, for the docs
    browser.save_screenshot(str(ARTIFACTS / "compliance-lookup.png"))

    urls = [unquote(unquote(url)).lower() for url in [*requested_urls(browser), browser.current_url]]
    assert any(url.endswith("/hubspot-prefs/api/lookup") for url in urls), urls
    assert not [url for url in urls if "shared.person" in url], json.dumps(urls)
    log = _api_server_log(airflow)
    # The lookup reached the api-server and was logged there, but its address was not.
    logged = log[logged_before:].splitlines()
    assert [line for line in logged if "POST" in line and "/hubspot-prefs/api/lookup" in line], logged
    assert not [line for line in log.splitlines() if "shared.person" in line.lower()]
    # The live read asked HubSpot with the address in request bodies too, not in URLs.
    asked = hubspot.backend.request_log[asked_before:]
    assert asked and not [r for r in asked if "shared.person" in unquote(r["path"] + r["query"]).lower()]


def test_after_logout_every_endpoint_refuses_the_old_token(airflow, runs, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _log_in(browser, airflow)
    token = browser.get_cookie("_token")["value"]
    ti = {"dag_id": DAG_ID, "run_id": runs[0]["run_id"], "task_id": TASK_ID, "map_index": "-1"}
    run = {"dag_id": DAG_ID, "run_id": runs[0]["run_id"]}
    endpoints = plugin_endpoints(ti, run, {"address": SHARED})
    with httpx.Client(base_url=airflow.url, cookies={"_token": token}, timeout=60) as client:
        answers = {(m, p): client.request(m, p, params=q, json=b).status_code for m, p, q, b in endpoints}
    # Before logout the same token opens every one (the no-script form answers 400 by design; this
    # task returned no report page, its report task did).
    expected = {
        ("POST", "/hubspot-prefs/lookup/no-script"): 400,
        ("GET", "/hubspot-prefs/api/ti/report"): 404,
    }
    assert answers == {**dict.fromkeys(answers, 200), **expected}

    browser.find_element(By.XPATH, "//button[normalize-space()='User']").click()
    browser.find_element(By.XPATH, "//*[@role='menuitem'][normalize-space()='Logout']").click()
    browser.find_element(By.XPATH, "//*[@role='dialog']//button[normalize-space()='Confirm']").click()
    WebDriverWait(browser, 30).until(lambda b: "/auth/login" in b.current_url)

    for credentials in ({"cookies": {"_token": token}}, {"headers": {"Authorization": f"Bearer {token}"}}):
        with httpx.Client(base_url=airflow.url, timeout=60, **credentials) as client:
            for method, path, query, body in endpoints:
                answer = client.request(method, path, params=query, json=body)
                # Airflow revoked the token at logout: refused as invalid, before the route runs.
                assert answer.status_code == 403, (method, path, credentials, answer.text)
                assert answer.json() == {"detail": "Invalid JWT token"}
    # What the browser shows with the old cookie put back: a refusal, no view.
    browser.add_cookie({"name": "_token", "value": token, "path": "/"})
    browser.get(f"{airflow.url}/hubspot-prefs/ti?{urlencode(ti)}")
    assert "Invalid JWT token" in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(ARTIFACTS / "compliance-after-logout.png"))
    # The lookups of this test (answered, then refused) left the address in no api-server log line.
    assert not [line for line in _api_server_log(airflow).splitlines() if "shared.person" in line.lower()]
