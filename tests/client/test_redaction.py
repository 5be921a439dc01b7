"""Addresses are redacted in what operators log and return, unless redaction is turned off; the
ledger keeps them whole because it is the record."""

from __future__ import annotations

import pytest

from airflow_provider_hubspot_prefs.operators import (
    HubSpotBatchUnsubscribeAllOperator,
    HubSpotUnsubscribeAllOperator,
)

from ..batch_try import context
from ..dag_support import ledger_rows


@pytest.fixture(autouse=True)
def _connection(hubspot_connection):
    """The default connection points at the emulator."""


@pytest.mark.parametrize(("redact", "shown"), [(True, "j***@example.com"), (False, "jane.doe@example.com")])
def test_single_contact_result_and_log_line(emulator, capfd, redact, shown):
    operator = HubSpotUnsubscribeAllOperator(
        task_id="one", subscriber_id="jane.doe@example.com", redact_emails=redact
    )
    result = operator.execute(context("manual__1", 1, "one"))
    assert result["subscriber"] == shown
    logged = "".join(capfd.readouterr())
    assert f"{shown}: unsubscribed" in logged
    assert ("jane.doe@example.com" in logged) is not redact


def test_ledger_keeps_the_full_address_while_logs_do_not(emulator, tmp_path, capfd):
    operator = HubSpotBatchUnsubscribeAllOperator(
        task_id="batch", subscribers=["jane.doe@example.com", "broken@"], ledger_path=str(tmp_path / "l.csv")
    )
    summary = operator.execute(context("manual__1", 1, "batch-redaction"))
    logged = "".join(capfd.readouterr())
    assert "Ledger written to" in logged  # the log was captured
    assert [r["subscriber_id"] for r in ledger_rows(tmp_path / "l.csv")] == ["jane.doe@example.com", ""]
    assert "jane.doe@example.com" not in logged and "jane.doe@example.com" not in str(summary)
