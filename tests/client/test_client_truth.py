"""What the client tells the ledger must be true: when to stop, how long HubSpot asked to wait, and
which request an outcome came from. Over real HTTP against the emulator (the single-flight OAuth
refresh is tested in test_oauth.py).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_hubspot_prefs.client import (
    HubSpotRateLimitError,
    HubSpotServerError,
    RetryPolicy,
)
from airflow_provider_hubspot_prefs.emulator import (
    DEMO_TOKEN,
)
from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

from ..batch_try import context
from ..conftest import api_requests
from ..dag_support import ledger_rows
from ..ledger_support import check_truth

WRITE_PATH = "batch/unsubscribe-all"


def write_input(path: Path, count: int, prefix: str = "c") -> tuple[Path, list[str]]:
    lines = [f"{prefix}{i:05d}@example.com" for i in range(count)]
    path.write_text("".join(f"{line}\n" for line in lines))
    return path, lines


def batch(source: Path, ledger: Path, **kwargs) -> HubSpotBatchUnsubscribeAllOperator:
    return HubSpotBatchUnsubscribeAllOperator(
        task_id="unsubscribe", input_path=str(source), ledger_path=str(ledger), **kwargs
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_hubspot_stops_the_batch_fast_with_one_message(airflow_db, monkeypatch, tmp_path):
    """Item 12: nothing listens at the base URL; the batch stops after unreachable_timeout."""
    connection = {
        "conn_type": "hubspot_prefs",
        "password": DEMO_TOKEN,
        "extra": {"base_url": f"http://127.0.0.1:{free_port()}", "unreachable_timeout": 2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT", json.dumps(connection))
    source, lines = write_input(tmp_path / "in.txt", 20_000)
    started = time.monotonic()
    with pytest.raises(AirflowException) as caught:
        batch(source, tmp_path / "ledger.csv").execute(context("manual__unreachable", 1))
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "Batch stopped" in message and "no answer from HubSpot for" in message
    assert "(unreachable_timeout 2 s)" in message
    assert elapsed < 15, elapsed  # not ~12 minutes of every chunk's retries
    rows = ledger_rows(tmp_path / "ledger.csv")
    assert [r["input"] for r in rows] == lines
    assert {r["outcome"] for r in rows} == {"not_attempted"}
    assert "no answer from HubSpot" in rows[-1]["reason"]


def test_daily_limit_signalled_only_by_the_header_stops_the_batch(
    emulator, airflow_db, hubspot_connection, tmp_path
):
    """Item 13: a 429 whose only daily sign is X-HubSpot-RateLimit-Daily-Remaining: 0."""
    fault = {"status": 429, "daily_remaining": 0, "count": 1000, "path_endswith": WRITE_PATH}
    emulator.control("POST", "faults", json=fault)
    source, lines = write_input(tmp_path / "in.txt", 2_000)
    with pytest.raises(AirflowException, match="Batch stopped"):
        batch(source, tmp_path / "ledger.csv", max_in_flight=2).execute(context("manual__daily", 1))
    sent = [r for r in api_requests(emulator) if r["path"].endswith(WRITE_PATH)]
    assert len(sent) <= 2  # the chunks already in flight; none sent into the limit after them
    rows = ledger_rows(tmp_path / "ledger.csv")
    assert check_truth(emulator, rows, lines) == {"not_attempted": 2_000}


def test_client_does_not_retry_a_header_only_daily_429(make_client, emulator):
    emulator.control("POST", "faults", json={"status": 429, "daily_remaining": 0, "count": 5})
    with pytest.raises(HubSpotRateLimitError) as caught:
        make_client(retry_policy=RetryPolicy(max_retries=3, initial_delay=0.01)).get_definitions()
    assert caught.value.is_daily and len(api_requests(emulator)) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 429, "retry_after": 600}, HubSpotRateLimitError),
        ({"status": 503, "retry_after": 120}, HubSpotServerError),
    ],
    ids=["429", "503"],
)
def test_retry_after_beyond_what_the_client_waits_fails_with_hubspots_figure(
    make_client, emulator, fault, error
):
    """Item 15: not a quick retry against HubSpot's wish; the error says how long HubSpot asked."""
    emulator.control("POST", "faults", json={**fault, "count": 3})
    started = time.monotonic()
    with pytest.raises(error) as caught:
        make_client(retry_policy=RetryPolicy(max_retries=3, initial_delay=0.01)).get_definitions()
    assert time.monotonic() - started < 5 and len(api_requests(emulator)) == 1
    assert f"HubSpot asked to retry after {fault['retry_after']} s" in str(caught.value)


def test_a_retry_after_within_patience_is_waited_out(make_client, emulator):
    emulator.control("POST", "faults", json={"status": 429, "retry_after": 1.5, "count": 1})
    started = time.monotonic()
    make_client(retry_policy=RetryPolicy(max_retries=3, initial_delay=0.01)).get_definitions()
    assert time.monotonic() - started >= 1.5 and len(api_requests(emulator)) == 2


def test_ledger_rows_carry_the_requests_correlation_id(emulator, airflow_db, hubspot_connection, tmp_path):
    """Item 16: the request's X-HubSpot-Correlation-Id, and the error's own id in error_id."""
    fault = {"kind": "partial", "reject_contains": "+held", "count": 100, "path_endswith": WRITE_PATH}
    emulator.control("POST", "faults", json=fault)
    lines = [f"ok{i:03d}@example.com" if i % 5 else f"p{i:03d}+held@example.com" for i in range(300)]
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{line}\n" for line in lines))
    with pytest.raises(AirflowException, match="failed"):
        batch(source, tmp_path / "ledger.csv").execute(context("manual__correlation", 1))
    rows = ledger_rows(tmp_path / "ledger.csv")
    check_truth(emulator, rows, lines)
    answered = {r["correlation_id"] for r in api_requests(emulator) if r["path"].endswith(WRITE_PATH)}
    assert len(answered) == 3 and None not in answered
    assert {r["correlation_id"] for r in rows} == answered  # every row names its request
    failed = [r for r in rows if r["outcome"] == "failed"]
    assert len(failed) == 60 and all(r["error_id"] and r["error_id"] not in answered for r in failed)
