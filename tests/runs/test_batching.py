"""``runs.batching.send_pending`` on its own: where each row ends when sending stops early."""

from __future__ import annotations

import asyncio

from airflow_provider_hubspot_prefs.client.errors import HubSpotRateLimitError
from airflow_provider_hubspot_prefs.ledger import Outcome
from airflow_provider_hubspot_prefs.ledger.inputs import records_from_values
from airflow_provider_hubspot_prefs.ledger.store import WorkStore
from airflow_provider_hubspot_prefs.runs.batching import BatchAborted, send_pending
from airflow_provider_hubspot_prefs.runs.classify import classify

SENT = 1_795_507_200.0  # 2026-11-24T08:00:00Z


def daily_limit() -> HubSpotRateLimitError:
    return HubSpotRateLimitError(
        status_code=429,
        method="POST",
        endpoint="/communication-preferences/2026-09/statuses/batch/unsubscribe-all",
        category="RATE_LIMITS",
        message="You have reached your daily limit.",
        body={"policyName": "DAILY"},
    )


def test_a_daily_limit_after_a_killed_try_fails_what_that_try_sent(tmp_path):
    """Review 23 finding 2: try 1 sent lines 2-3 and was killed; try 2's first write (lines 1-2) meets
    the daily limit (refused: nothing applied). Lines 2-3 end ``failed`` (try 1's write may have been
    applied); lines 1 and 4, which no try got through to HubSpot, stay ``not_attempted`` without a
    first send."""
    path = tmp_path / "store.sqlite"
    try1 = WorkStore(path)
    try1.ingest(records_from_values(["a@example.com", "b@example.com", "c@example.com", "d@example.com"]))
    try1.claim(1)
    try1.start_attempt([2, 3], SENT)
    try1.close()
    store = WorkStore(path)
    store.reopen_retried()
    store.claim(2)

    async def send(chunk):
        raise daily_limit()

    def answer(chunk, response):
        return classify(chunk, response, applied=Outcome.UNSUBSCRIBED, unchanged=Outcome.ALREADY_UNSUBSCRIBED)

    try:
        asyncio.run(
            send_pending(store, send, batch_size=2, max_in_flight=1, classify_answer=answer, resumed=True)
        )
    except BatchAborted as exc:
        assert exc.remaining == 4
    else:
        raise AssertionError("the daily limit did not stop the batch")
    rows = {r[0]: r for r in store.ledger_rows()}
    for line in (2, 3):
        assert rows[line][3] == "failed", rows[line]
        assert rows[line][4].startswith("sent by an earlier try at 2026-11-24T08:00:00.000Z"), rows[line]
        assert "HubSpot may have applied it" in rows[line][4]
    for line in (1, 4):
        assert rows[line][3] == "not_attempted" and rows[line][4].startswith("not sent: HTTP 429"), rows[line]
        assert rows[line][9] is None, rows[line]  # refused: never applied, so not a first send
    store.close()
