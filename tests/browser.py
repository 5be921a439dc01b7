"""Headless Debian Chromium driven by Selenium, for the tests of pages in a real browser.

scripts/install-browser puts Chromium and its driver in place (CI runs it): a missing browser fails
the test rather than skipping it, so that a UI test can never pass by not running.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Where screenshots are kept (CI uploads the folder as the run's artifacts).
ARTIFACTS = Path(
    os.environ.get("HUBSPOT_PREFS_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")
)
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@contextlib.contextmanager
def chromium(profile: Path, downloads: Path) -> Iterator[Any]:
    """A Chromium WebDriver with its own profile folder, saving downloads in ``downloads`` without
    asking; quit on leaving the block."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "Chromium missing: run scripts/install-browser"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        # This machine has no internet: without these, Chromium keeps dialling Google's services.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # The DevTools network events, so that a test can list every URL the browser asked for, those
    # of frames, scripts and fetches included (``requested_urls``).
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(15)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """The URLs of every request the browser sent since the last call (the log is read once)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
