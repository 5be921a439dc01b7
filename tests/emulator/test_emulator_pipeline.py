"""The emulator's request pipeline on its own: the order of its steps decides what a client sees."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN, PortalBackend
from airflow_provider_hubspot_prefs.emulator.faults import DROPPED, Fault
from airflow_provider_hubspot_prefs.emulator.pipeline import serve

PATH = "/communication-preferences/v4/statuses/batch/write"


def request(token: str | None = DEMO_TOKEN) -> Request:
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "POST", "path": PATH, "headers": headers, "query_string": b""})


def answer(backend: PortalBackend, req: Request, kind: str = "batch_write") -> tuple[Any, list[str]]:
    ran: list[str] = []

    async def handler(_: Request, __: PortalBackend) -> Any:
        ran.append("handler")
        return {"status": "COMPLETE"}

    return asyncio.run(serve(backend, req, kind, handler)), ran


def test_an_answer_carries_the_rate_headers_and_a_correlation_id():
    backend = PortalBackend()
    response, ran = answer(backend, request())
    assert response.status_code == 200 and ran == ["handler"]
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == str(backend.config.rate_limit_max - 1)
    assert response.headers["X-HubSpot-Correlation-Id"]


def test_an_unauthenticated_request_is_refused_before_it_counts_against_the_limit():
    backend = PortalBackend()
    response, ran = answer(backend, request(token=None))
    assert response.status_code == 401 and ran == [] and backend.usage == {}


def test_a_missing_scope_is_refused_after_counting_and_keeps_the_rate_headers():
    backend = PortalBackend()
    backend.add_token("pat-read-only", ["communication_preferences.read"])
    response, ran = answer(backend, request("pat-read-only"))
    assert response.status_code == 403 and ran == []
    assert json.loads(response.body)["category"] == "MISSING_SCOPES"
    assert "X-HubSpot-RateLimit-Remaining" in response.headers


def test_an_injected_error_comes_before_authentication():
    backend = PortalBackend()
    backend.add_fault(Fault(status=503, path_endswith="batch/write"))
    response, ran = answer(backend, request(token=None))
    assert response.status_code == 503 and ran == []


def test_a_connection_dropped_after_the_write_ran_the_write():
    backend = PortalBackend()
    backend.add_fault(Fault(kind="drop_after", path_endswith="batch/write"))
    req = request()
    response, ran = answer(backend, req)
    assert ran == ["handler"] and response.status_code == DROPPED and req.scope["emulator.drop"] is True


def test_a_connection_dropped_before_the_write_did_not_run_it():
    backend = PortalBackend()
    backend.add_fault(Fault(kind="drop_before", path_endswith="batch/write"))
    response, ran = answer(backend, request())
    assert ran == [] and response.status_code == DROPPED


def test_a_request_still_served_when_the_portal_is_reset_stays_out_of_the_new_log(emulator, make_client):
    """A slow answer that ends after a reset (a test's leftover) must not show in the next test's log."""
    import threading
    import time

    emulator.control("POST", "faults", json={"kind": "slow", "delay": 1.0, "path_endswith": "/definitions"})
    client = make_client()
    slow = threading.Thread(target=client.get_definitions)
    slow.start()
    time.sleep(0.3)  # the request is being served
    emulator.control("POST", "reset")
    slow.join()
    assert emulator.control("GET", "requests")["requests"] == []
