"""Bad input, one row each: the error it gets, and how many requests it cost (0 when checkable locally).

Operators run their ``execute`` over real HTTP against the emulator; the table states the error
class, a fragment of its message, and the number of API requests the emulator saw.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_hubspot_prefs.client import HubSpotInputError
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN
from airflow_provider_hubspot_prefs.operators import (
    HubSpotBatchUnsubscribeAllOperator,
    HubSpotSetSubscriptionStatusOperator,
    HubSpotUnsubscribeAllOperator,
)

from ..batch_try import context as try_context
from ..dag_support import ledger_rows

CONSENT = {"status_state": "SUBSCRIBED", "subscription_id": 1001, "legal_basis": "CONSENT_WITH_NOTICE"}


@dataclass
class Case:
    name: str
    run: Callable[[Path], Any]
    error: type[BaseException] | None  # None: the task goes on and the ledger records the input
    message: str
    requests: int
    ledger: list[tuple[str, str]] = field(default_factory=list)  # (input, outcome), line by line
    token_scopes: list[str] | None = None
    connection: dict[str, Any] | None = None
    revoke: bool = False


def context(task_id: str) -> Any:
    return try_context("manual__1", 1, task_id)


def status(**kwargs: Any) -> Callable[[Path], Any]:
    def run(_: Path) -> Any:
        fields = {"subscriber_ids": "alice@example.com", **CONSENT, **kwargs}
        return HubSpotSetSubscriptionStatusOperator(task_id="status", **fields).execute(context("status"))

    return run


def unsubscribe_one(address: str) -> Callable[[Path], Any]:
    def run(_: Path) -> Any:
        return HubSpotUnsubscribeAllOperator(task_id="one", subscriber_id=address).execute(context("one"))

    return run


def batch(**kwargs: Any) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        operator = HubSpotBatchUnsubscribeAllOperator(
            task_id="batch", ledger_path=str(tmp / "ledger.csv"), **kwargs
        )
        return operator.execute(context(f"batch-{tmp.name}"))

    return run


def batch_file(content: bytes | None, **kwargs: Any) -> Callable[[Path], Any]:
    """A batch over a file holding ``content`` (None: the input path is a directory)."""

    def run(tmp: Path) -> Any:
        source = tmp / "input"
        if content is None:
            source.mkdir()
        else:
            source.write_bytes(content)
        return batch(input_path=str(source), **kwargs)(tmp)

    return run


def oversize_client_batch(_: Path) -> Any:
    from airflow_provider_hubspot_prefs.hooks.hubspot_prefs import HubSpotPreferencesHook

    addresses = [f"c{i}@example.com" for i in range(101)]
    return HubSpotPreferencesHook().get_conn().batch_unsubscribe_all(addresses)


CASES = [
    Case(
        "unknown status_state",
        status(status_state="UNSUSCRIBED"),
        AirflowFailException,
        "status_state: 'UNSUSCRIBED' is not one of SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED",
        0,
    ),
    Case(
        "unknown legal_basis",
        status(legal_basis="CONSENT"),
        AirflowFailException,
        "legal_basis: 'CONSENT' is not one of CONSENT_WITH_NOTICE",
        0,
    ),
    Case("missing subscription id", status(subscription_id=None), AirflowFailException, "subscription_id", 0),
    Case("empty input", batch(subscribers=[]), AirflowFailException, "holds no line at all", 0),
    Case(
        "file that does not exist",
        batch(input_path="/nonexistent/withdrawals.txt"),
        AirflowFailException,
        "cannot read the input /nonexistent/withdrawals.txt: no such file",
        0,
    ),
    Case(
        "directory as input",
        batch_file(None),
        AirflowFailException,
        "input: it is a directory, not a file",
        0,
    ),
    Case(
        "gzip file as input",
        batch_file(gzip.compress(b"a@example.com\n")),
        AirflowFailException,
        "input: it is a gzip file; decompress it first",
        0,
    ),
    Case(
        "xlsx workbook as input",
        batch_file(b"PK\x03\x04" + bytes(100)),
        AirflowFailException,
        "it is a zip archive (an .xlsx workbook?); export it as CSV",
        0,
    ),
    Case(
        "binary file as input",
        batch_file(bytes(range(256)) * 4),
        AirflowFailException,
        "it holds NUL bytes, so it is not a text file",
        0,
    ),
    Case(
        "unknown encoding",
        batch_file(b"a@example.com\n", encoding="latin-9000"),
        AirflowFailException,
        "unknown encoding 'latin-9000'",
        0,
    ),
    Case(
        "csv column that is not there",
        batch_file(b"\xef\xbb\xbfName,E-mail Address\r\nJane,jane@example.com\r\n", csv_column="email"),
        AirflowFailException,
        "'email' is not a column of the input (found: 'Name', 'E-mail Address')",
        0,
    ),
    Case(
        "no line holds a valid address",
        batch_file(b"Jane Doe <jane@example.com>\nJohn Roe <john@example.com>\n"),
        AirflowFailException,
        "None of the 2 line(s) of the input",
        0,
        ledger=[
            ("Jane Doe <jane@example.com>", "invalid_input"),
            ("John Roe <john@example.com>", "invalid_input"),
        ],
    ),
    Case(
        "malformed address",
        unsubscribe_one("jane.doe-at-example.com"),
        AirflowFailException,
        "subscriber_id '***' is not a valid email address: has no '@'",
        0,
    ),
    Case(
        "display name instead of an address",
        unsubscribe_one("Jane Doe <jane@example.com>"),
        AirflowFailException,
        "subscriber_id 'J***@example.com>' is not a valid email address: contains a space at position 5",
        0,
    ),
    Case(
        "zero-width space inside an address",
        unsubscribe_one("jane\u200b@example.com"),
        AirflowFailException,
        "contains U+200B ZERO WIDTH SPACE at position 5",
        0,
    ),
    Case(
        "malformed address in a batch",
        batch(subscribers=["ok@example.com", "broken@", "x y@example.com"]),
        None,
        "",
        1,  # only the valid address is sent
        ledger=[
            ("ok@example.com", "unsubscribed"),
            ("broken@", "invalid_input"),
            ("x y@example.com", "invalid_input"),
        ],
    ),
    Case(
        "duplicated addresses",
        batch(subscribers=["dup@example.com", " DUP@example.com ", "dup@example.com"]),
        None,
        "",
        1,
        ledger=[
            ("dup@example.com", "unsubscribed"),
            (" DUP@example.com ", "duplicate"),
            ("dup@example.com", "duplicate"),
        ],
    ),
    Case(
        "oversize batch_size",
        batch(subscribers=["a@example.com"], batch_size=500),
        AirflowFailException,
        "batch_size must be between 1 and 100, not 500",
        0,
    ),
    Case(
        "oversize client batch",
        oversize_client_batch,
        HubSpotInputError,
        "exceeds the batch maximum of 100",
        0,
    ),
    Case(
        "connection without credentials",
        unsubscribe_one("alice@example.com"),
        AirflowFailException,
        "has no credentials: put a private app access token in the password field",
        0,
        connection={"conn_type": "hubspot_prefs"},
    ),
    Case(
        "revoked token (401)",
        unsubscribe_one("alice@example.com"),
        AirflowException,
        "HTTP 401 INVALID_AUTHENTICATION",
        1,
        revoke=True,
    ),
    Case(
        "missing scopes (403)",
        status(),
        AirflowException,
        "missing scopes: communication_preferences.read_write",
        1,
        token_scopes=["communication_preferences.read"],
    ),
    Case("unknown subscription id", status(subscription_id=987654), AirflowException, "correlationId=", 1),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, emulator, airflow_db, monkeypatch, tmp_path):
    token = DEMO_TOKEN
    if case.token_scopes is not None:
        token = "pat-bad-input-scoped"
        emulator.control("POST", "tokens", json={"token": token, "scopes": case.token_scopes})
    if case.revoke:
        emulator.control("POST", "revoke", json={"token": token})
    connection = case.connection or {"conn_type": "hubspot_prefs", "password": token}
    connection = {**connection, "extra": {"base_url": emulator.url, **connection.get("extra", {})}}
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT", json.dumps(connection))
    emulator.control("DELETE", "requests")

    if case.error is None:
        case.run(tmp_path)
    else:
        with pytest.raises(case.error) as caught:
            case.run(tmp_path)
        assert case.message in str(caught.value)
        assert token not in str(caught.value)
        assert "jane@" not in str(caught.value) and "jane.doe" not in str(caught.value)  # redacted
    assert len(emulator.control("GET", "requests")["requests"]) == case.requests
    if case.ledger:
        rows = ledger_rows(tmp_path / "ledger.csv")
        assert [(row["input"], row["outcome"]) for row in rows] == case.ledger
