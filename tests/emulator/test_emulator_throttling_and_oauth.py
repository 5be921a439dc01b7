"""What the emulator says when it throttles, and its OAuth token endpoint's faults and rotations,
over HTTP: the odd answers the client must survive (issue 23)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from airflow_provider_hubspot_prefs.emulator import (
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_TOKEN,
)

DEFINITIONS = "/communication-preferences/v4/definitions"
TOKEN = "/oauth/v1/token"


def get_definitions(emulator) -> httpx.Response:
    return httpx.get(emulator.url + DEFINITIONS, headers={"Authorization": f"Bearer {DEMO_TOKEN}"})


def refresh(emulator, refresh_token: str = DEMO_REFRESH_TOKEN) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": DEMO_OAUTH_CLIENT_ID,
        "client_secret": DEMO_OAUTH_CLIENT_SECRET,
        "refresh_token": refresh_token,
    }
    return httpx.post(emulator.url + TOKEN, data=form)


def test_a_429_can_say_retry_after_zero(emulator):
    emulator.control("POST", "faults", json={"status": 429, "retry_after": 0})
    answer = get_definitions(emulator)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "0"


def test_a_429_can_say_retry_after_a_date_in_the_past(emulator):
    emulator.control("POST", "faults", json={"status": 429, "retry_after_date": -30})
    answer = get_definitions(emulator)
    when = email.utils.parsedate_to_datetime(answer.headers["Retry-After"])
    assert answer.status_code == 429 and 25 < time.time() - when.timestamp() < 40


def test_a_portal_of_100_per_10_seconds_says_so_in_its_headers(emulator):
    emulator.control("PATCH", "config", json={"rate_limit_max": 100, "rate_limit_interval_ms": 10_000})
    answer = get_definitions(emulator)
    assert answer.headers["X-HubSpot-RateLimit-Max"] == "100"
    assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert answer.headers["X-HubSpot-RateLimit-Remaining"] == "99"


def test_the_token_endpoint_answers_the_faults_that_name_it(emulator):
    emulator.control("POST", "faults", json={"status": 503, "count": 2, "path_endswith": TOKEN})
    assert [refresh(emulator).status_code for _ in range(3)] == [503, 503, 200]
    emulator.control("POST", "faults", json={"kind": "wrong_shape", "path_endswith": TOKEN})
    wrong = refresh(emulator)
    assert wrong.status_code == 200 and "access_token" not in wrong.json()


def test_a_fault_without_a_path_is_left_for_the_api(emulator):
    emulator.control("POST", "faults", json={"status": 503})
    assert refresh(emulator).status_code == 200
    assert get_definitions(emulator).status_code == 503


@pytest.mark.parametrize(("rotation", "old_still_works"), [("new", True), ("strict", False)])
def test_refresh_tokens_can_rotate(emulator, rotation, old_still_works):
    emulator.control("PATCH", "config", json={"refresh_token_rotation": rotation})
    first = refresh(emulator).json()
    assert first["refresh_token"] != DEMO_REFRESH_TOKEN
    again = refresh(emulator)
    assert (again.status_code == 200) is old_still_works
    if not old_still_works:
        assert again.json()["error"] == "invalid_grant"
    assert refresh(emulator, first["refresh_token"]).status_code == 200


def test_by_default_the_refresh_token_stays_the_same(emulator):
    assert refresh(emulator).json()["refresh_token"] == DEMO_REFRESH_TOKEN
    with pytest.raises(httpx.HTTPStatusError, match="400"):
        emulator.control("PATCH", "config", json={"refresh_token_rotation": "sometimes"})
