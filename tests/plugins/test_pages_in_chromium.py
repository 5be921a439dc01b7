"""The pages' scripts in a real browser (headless Chromium): they draw what the API answers, and the
lookup's address leaves the page only in a POST body. Screenshots are kept as test artifacts.

The views are opened directly, as the UI's iframe opens them (same origin, the ``_token`` cookie);
the whole UI around them is the real-deployment test's part.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_hubspot_prefs.emulator.server import EmulatorServer

from ..browser import ARTIFACTS, requested_urls
from ..conftest import connect_to_emulator
from .conftest import ApiServer, write_ledger
from .test_views import RUN_ID, TI, file_counts, ledger_rows

ADDRESS = "jane.doe@example.com"


def _log_in(driver: Any, server: ApiServer, user: str) -> None:
    driver.get(f"{server.url}/hubspot-prefs/assets/views.css")  # a page of the origin, to hold the cookie
    driver.add_cookie({"name": "_token", "value": server.token(user), "path": "/"})


def test_the_pages_show_the_ledger_and_the_lookup_in_chromium(
    api_server: ApiServer,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    index_ledger: Any,
    browser: Any,
):
    from selenium.webdriver.common.by import By

    conn_id = connect_to_emulator(monkeypatch, emulator)
    emulator.control(
        "POST", "contacts", json={"emails": [ADDRESS], "unsubscribed_at": "2026-03-04T09:00:00Z"}
    )
    rows = ledger_rows(700)
    rows[9] = {**rows[9], "input": ADDRESS, "subscriber_id": ADDRESS, "outcome": "failed", "reason": "x"}
    ledger = write_ledger(tmp_path / "ledger.csv", rows)
    index_ledger(ledger, "nightly", RUN_ID, "unsubscribe", hubspot_conn_id=conn_id)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _log_in(browser, api_server, "auditor")

    query = "&".join(f"{k}={v}" for k, v in {**TI, "run_id": RUN_ID.replace("+", "%2B")}.items())
    browser.get(f"{api_server.url}/hubspot-prefs/ti?{query}")
    browser.find_element(By.CSS_SELECTOR, "svg.chart")
    shown = {
        cells[0].text: int(cells[1].text)
        for row in browser.find_elements(By.CSS_SELECTOR, "#view table:first-of-type tbody tr")
        if len(cells := row.find_elements(By.TAG_NAME, "td")) == 2
    }
    assert shown == dict(file_counts(ledger))
    failed_rows = browser.find_elements(
        By.XPATH, "//h2[starts-with(., 'Rows that failed')]/following::table[1]/tbody/tr"
    )
    assert len(failed_rows) == 50
    browser.find_element(By.XPATH, "//button[. = 'More rows']").click()
    browser.find_element(
        By.XPATH, "//h2[starts-with(., 'Rows that failed')]/following::table[1]/tbody/tr[51]"
    )
    browser.save_screenshot(str(ARTIFACTS / "plugin-task-instance-view.png"))

    browser.get(f"{api_server.url}/hubspot-prefs/lookup")
    browser.find_element(By.ID, "address").send_keys(ADDRESS)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    cell = browser.find_element(By.XPATH, "//table[1]/tbody/tr[1]/td[5]")
    assert cell.text == "failed"
    browser.find_element(By.XPATH, "//td[. = 'UNSUBSCRIBED']")
    browser.save_screenshot(str(ARTIFACTS / "plugin-lookup.png"))
    # Every URL the browser asked for (pages, scripts, fetches), and the page's own, is free of the address.
    urls = requested_urls(browser)
    assert any(url.endswith("/hubspot-prefs/api/lookup") for url in urls), urls
    assert not [url for url in [*urls, browser.current_url] if "jane" in url.lower()], json.dumps(urls)
