"""Error classes, retry rules and their timing, checked over HTTP against the emulator."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import httpx
import pytest

from airflow_provider_hubspot_prefs.client import (
    HubSpotAuthenticationError,
    HubSpotInputError,
    HubSpotNotFoundError,
    HubSpotPermissionError,
    HubSpotPreferencesClient,
    HubSpotRateLimitError,
    HubSpotResponseError,
    HubSpotServerError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    HubSpotValidationError,
    OperationStatus,
    PrivateAppTokenAuth,
    RetryPolicy,
    SetStatusSuccessReason,
)
from airflow_provider_hubspot_prefs.client.policy import retry_after_seconds
from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN
from airflow_provider_hubspot_prefs.emulator.server import free_port

from ..conftest import api_requests

KNOWN = "alice@example.com"


def fault(emulator, **spec):
    emulator.control("POST", "faults", json=spec)


def test_validation_error_carries_hubspots_fields_and_is_not_retried(make_client, emulator):
    client = make_client(max_retries=5)
    with pytest.raises(HubSpotValidationError) as err:
        client.set_status(KNOWN, status_state="SUBSCRIBED", subscription_id=999_999)
    e = err.value
    assert (e.status_code, e.category) == (400, "VALIDATION_ERROR")
    assert "999999" in e.message
    assert len(e.correlation_id) == 36
    assert e.endpoint == "/communication-preferences/v4/statuses/{subscriberIdString}"
    assert e.correlation_id in str(e)
    assert len(api_requests(emulator)) == 1  # a 400 is never retried


def test_batch_over_the_emulators_maximum_is_a_400(make_client, emulator):
    emulator.control("PATCH", "config", json={"max_batch_size": 3})
    with pytest.raises(HubSpotValidationError, match="at most 3"):
        make_client().batch_unsubscribe_all([f"p{i}@example.com" for i in range(4)])


def test_unknown_token_is_authentication_error(make_client):
    with pytest.raises(HubSpotAuthenticationError) as err:
        make_client(token="pat-unknown").get_definitions()
    assert err.value.category == "INVALID_AUTHENTICATION"
    assert "pat-unknown" not in str(err.value) and "pat-unknown" not in repr(err.value)


def test_missing_scopes_are_named(make_client, emulator):
    emulator.control(
        "POST", "tokens", json={"token": "pat-read-only", "scopes": ["communication_preferences.read"]}
    )
    client = make_client(token="pat-read-only")
    assert client.get_definitions().results  # read is granted
    with pytest.raises(HubSpotPermissionError) as err:
        client.batch_unsubscribe_all([KNOWN])
    assert err.value.category == "MISSING_SCOPES"
    assert err.value.missing_scopes == ["communication_preferences.statuses.batch.write"]
    assert "communication_preferences.statuses.batch.write" in str(err.value)
    with pytest.raises(HubSpotPermissionError) as err:
        client.set_status(KNOWN, status_state="SUBSCRIBED", subscription_id=1001)
    assert err.value.missing_scopes in (
        ["communication_preferences.write"],
        ["communication_preferences.read_write"],
    )


def test_not_found(make_client):
    with pytest.raises(HubSpotNotFoundError):
        make_client().get_unsubscribe_all_status("never-seen@example.com")


def test_retry_after_is_honoured_and_timed_against_the_header(make_client, emulator):
    fault(emulator, status=429, count=1, retry_after=1)
    client = make_client(retry_policy=RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02))
    assert client.get_definitions().results
    first, second = api_requests(emulator)
    assert (first["status"], second["status"]) == (429, 200)
    gap = second["time"] - first["time"]
    assert 1.0 <= gap < 1.6, gap  # the header said 1 s; the policy's own backoff would be 0.01 s


def test_429_without_retry_after_backs_off_exponentially(make_client, emulator):
    fault(emulator, status=429, count=3)
    client = make_client(retry_policy=RetryPolicy(max_retries=3, initial_delay=0.2, max_delay=1.0, jitter=0))
    client.get_definitions()
    times = [r["time"] for r in api_requests(emulator)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    for gap, expected in zip(gaps, (0.2, 0.4, 0.8), strict=False):
        assert expected <= gap < expected + 0.3, gaps


def test_rate_limit_exhausted_raises_with_policy(make_client, emulator):
    emulator.control("PATCH", "config", json={"rate_limit_max": 2, "rate_limit_interval_ms": 60_000})
    client = make_client(max_retries=0)
    client.get_definitions()
    client.get_definitions()
    assert client.last_rate_limit.remaining == 0 and client.last_rate_limit.max == 2
    assert client.last_rate_limit.interval_ms == 60_000
    with pytest.raises(HubSpotRateLimitError) as err:
        client.get_definitions()
    assert err.value.policy_name == "TEN_SECONDLY_ROLLING" and not err.value.is_daily


def test_ten_secondly_limit_is_waited_out(make_client, emulator):
    emulator.control("PATCH", "config", json={"rate_limit_max": 3, "rate_limit_interval_ms": 1000})
    client = make_client(retry_policy=RetryPolicy(max_retries=5, initial_delay=0.01, max_delay=0.02))
    for _ in range(7):
        assert client.get_definitions().results
    statuses = [r["status"] for r in api_requests(emulator)]
    assert statuses.count(200) == 7 and 429 in statuses


def test_daily_limit_is_not_retried(make_client, emulator):
    emulator.control("PATCH", "config", json={"daily_limit": 1})
    client = make_client(max_retries=5)
    client.get_definitions()
    with pytest.raises(HubSpotRateLimitError) as err:
        client.get_definitions()
    assert err.value.is_daily
    assert client.last_rate_limit.daily_remaining == 0
    assert [r["status"] for r in api_requests(emulator)] == [200, 429]


def test_5xx_is_retried_then_succeeds(make_client, emulator):
    fault(emulator, status=503, count=2)
    assert make_client().get_status(KNOWN).results
    assert [r["status"] for r in api_requests(emulator)] == [503, 503, 200]


def test_5xx_exhausting_retries_raises_server_error(make_client, emulator):
    fault(emulator, status=500, count=10)
    with pytest.raises(HubSpotServerError) as err:
        make_client(retry_policy=RetryPolicy(max_retries=2, initial_delay=0.01)).get_definitions()
    assert err.value.status_code == 500 and err.value.correlation_id
    assert len(api_requests(emulator)) == 3


def test_other_4xx_are_never_retried(make_client, emulator):
    for status in (400, 401, 403, 404, 409):
        emulator.control("DELETE", "requests")
        fault(emulator, status=status, count=1)
        with pytest.raises(Exception):  # noqa: B017 - the class per status is covered above
            make_client(max_retries=5).get_definitions()
        assert len(api_requests(emulator)) == 1, status


def test_connection_refused_is_retried_then_raised():
    port = free_port()
    client = HubSpotPreferencesClient(
        PrivateAppTokenAuth(DEMO_TOKEN),
        base_url=f"http://127.0.0.1:{port}",
        retry_policy=RetryPolicy(max_retries=2, initial_delay=0.01),
    )
    started = time.monotonic()
    with pytest.raises(HubSpotTransportError) as err:
        client.get_definitions()
    assert "ConnectError" in str(err.value)
    assert time.monotonic() - started < 5


def test_timeout_raises_timeout_error(make_client, emulator):
    emulator.control("PATCH", "config", json={"latency_ms": 500})
    with pytest.raises(HubSpotTimeoutError):
        make_client(timeout=0.1, max_retries=1).get_definitions()
    # The server finishes both abandoned requests later; wait so they do not land in the next test.
    deadline = time.monotonic() + 5
    while len(api_requests(emulator)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(api_requests(emulator)) == 2  # first try and one retry


def test_cut_off_json_is_retried_then_a_response_error():
    seen = []

    def answer(request):
        seen.append(request)
        return httpx.Response(200, content=b'{"status": "COMPL')

    policy = RetryPolicy(max_retries=2, initial_delay=0.01)
    transport = httpx.MockTransport(answer)
    client = HubSpotPreferencesClient(
        PrivateAppTokenAuth(DEMO_TOKEN), transport=transport, retry_policy=policy
    )
    with pytest.raises(HubSpotResponseError, match="does not match") as caught:
        client.get_definitions()
    assert caught.value.truncated and len(seen) == 3  # a body cut off in transit is sent again


def test_wrong_shape_is_a_response_error():
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"results": "nope"}))
    client = HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), transport=transport)
    with pytest.raises(HubSpotResponseError) as caught:
        client.get_definitions()
    assert not caught.value.truncated  # a wrong shape is not retried: it would come back the same
    assert not caught.value.may_have_applied  # a read
    assert "OperationResponse[SubscriptionDefinition]" in str(caught.value)


def test_fields_hubspot_adds_later_do_not_break_reading_an_answer():
    status = {
        "channel": "EMAIL",
        "source": "API",
        "status": "UNSUBSCRIBED",
        "subscriberIdString": "new@example.com",
        "subscriptionId": "1001",  # a number sent as a string is still read as the number
        "timestamp": "2026-11-25T10:00:00.123Z",
        "setStatusSuccessReason": "UNSUBSCRIBE_FROM_ALL_OCCURRED",
        "someFutureField": {"nested": [1, 2]},
    }
    body = {
        "status": "COMPLETE",
        "results": [{"subscriberIdString": "new@example.com", "statuses": [status], "futureFlag": True}],
        "startedAt": "2026-11-25T10:00:00Z",
        "completedAt": "2026-11-25T10:00:01Z",
        "futureEnvelopeField": "x",
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    client = HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), transport=transport)
    answer = client.batch_unsubscribe_all(["new@example.com"], verbose=True)
    (read,) = answer.results[0].statuses
    assert answer.status is OperationStatus.COMPLETE and read.subscription_id == 1001
    assert read.set_status_success_reason is SetStatusSuccessReason.UNSUBSCRIBE_FROM_ALL_OCCURRED
    assert read.timestamp.timestamp() == pytest.approx(1795600800.123)

    # A field whose value HubSpot's contract does not allow is an error naming where it is.
    status["status"] = "MAYBE"
    with pytest.raises(HubSpotResponseError, match=r"results\[0\]\.statuses\[0\]\.status"):
        client.batch_unsubscribe_all(["new@example.com"], verbose=True)


def test_unreadable_answer_to_a_write_may_have_been_applied():
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"results": "nope"}))
    client = HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), transport=transport)
    with pytest.raises(HubSpotResponseError) as caught:
        client.batch_unsubscribe_all(["a@example.com"])
    assert caught.value.may_have_applied  # 2xx: HubSpot accepted it; the batch ledger says so


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.set_status(KNOWN, status_state="MAYBE", subscription_id=1), "status_state"),
        (
            lambda c: c.set_status(KNOWN, status_state="SUBSCRIBED", subscription_id=1, legal_basis="VIBES"),
            "legal_basis",
        ),
        (lambda c: c.get_status(KNOWN, channel="SMS"), "channel"),
        (lambda c: c.set_status(KNOWN, status_state="SUBSCRIBED", subscription_id=0), "subscription_id"),
        (lambda c: c.set_status(KNOWN, status_state="SUBSCRIBED", subscription_id="1001"), "subscription_id"),
        (lambda c: c.get_status("not-an-email"), "subscriber_id"),
        (lambda c: c.get_status(""), "subscriber_id"),
        (lambda c: c.batch_unsubscribe_all([]), "subscriber_ids"),
        (lambda c: c.batch_unsubscribe_all("a@b.com"), "subscriber_ids"),
        (lambda c: c.batch_unsubscribe_all([f"p{i}@example.com" for i in range(101)]), "subscriber_ids"),
        (lambda c: c.batch_read_statuses([KNOWN, "broken"]), "subscriber_ids[1]"),
        (lambda c: c.get_status(KNOWN, business_unit_id=-1), "business_unit_id"),
    ],
)
def test_bad_input_is_rejected_before_any_request(make_client, emulator, call, field):
    with pytest.raises(HubSpotInputError) as err:
        call(make_client())
    assert str(err.value).startswith(field + ":")
    assert api_requests(emulator) == []


def test_enum_error_lists_the_allowed_values(make_client):
    with pytest.raises(HubSpotInputError) as err:
        make_client().set_status(KNOWN, status_state="MAYBE", subscription_id=1)
    assert "SUBSCRIBED, UNSUBSCRIBED, NOT_SPECIFIED" in str(err.value)


def test_bad_api_version_and_plain_http_to_a_remote_host_are_refused():
    with pytest.raises(HubSpotInputError, match="v4, 2026-03, 2026-09"):
        HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), api_version="v3")
    with pytest.raises(HubSpotInputError, match="https"):
        HubSpotPreferencesClient(PrivateAppTokenAuth(DEMO_TOKEN), base_url="http://api.hubapi.com")


def test_errors_redact_addresses_and_never_hold_the_token(make_client, emulator):
    emulator.control("POST", "tokens", json={"token": "pat-secret-123", "scopes": []})
    client = make_client(token="pat-secret-123")
    with pytest.raises(HubSpotPermissionError) as err:
        client.get_status("jane.doe@example.com")
    assert "pat-secret-123" not in str(err.value) + repr(err.value) + repr(client)
    with pytest.raises(HubSpotInputError) as bad:
        client.get_status("jane.doe@example")
    assert "jane.doe" not in str(bad.value) and "j***@example" in str(bad.value)


def test_user_agent_and_rate_limit_headers(make_client, emulator):
    seen = {}

    def spy(request: httpx.Request) -> None:
        seen.update(request.headers)

    client = make_client()
    client._http.event_hooks["request"] = [spy]
    client.get_definitions()
    assert seen["user-agent"].startswith("airflow-provider-hubspot-prefs/")
    assert seen["authorization"] == f"Bearer {DEMO_TOKEN}"
    assert client.last_rate_limit.max == 100_000 and client.last_rate_limit.remaining == 99_999


def test_async_client_retries_with_the_same_policy(make_async_client, emulator):
    fault(emulator, status=429, count=1, retry_after=1)

    async def go():
        async with make_async_client() as client:
            return await client.get_definitions()

    assert asyncio.run(go()).results
    first, second = api_requests(emulator)
    assert first["status"] == 429 and 1.0 <= second["time"] - first["time"] < 1.6


def test_async_client_raises_the_same_errors(make_async_client):
    async def go():
        async with make_async_client(token="nope") as client:
            await client.get_definitions()

    with pytest.raises(HubSpotAuthenticationError):
        asyncio.run(go())


# ---- Retry-After 0 or in the past: never "retry now", never forever (issue 23, item 1) ----------

NO_USABLE_WAIT = {"zero": {"retry_after": 0}, "past-date": {"retry_after_date": -30}}
QUICK = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, jitter=0.25)


def least_backoff(policy: RetryPolicy, n: int) -> float:
    """The shortest wait the policy's own backoff may give before retry ``n + 1`` (full jitter)."""
    return min(policy.initial_delay * 2**n, policy.max_delay) * (1 - policy.jitter)


def get_definitions_with(make_client, make_async_client, flavour: str, **options):
    """One GET /definitions through the sync or the async client made with ``options``."""
    if flavour == "sync":
        return make_client(**options).get_definitions()

    async def go():
        async with make_async_client(**options) as client:
            return await client.get_definitions()

    return asyncio.run(go())


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("pacing", [None, 190], ids=["pacing-off", "default-pacing"])
@pytest.mark.parametrize("hint", NO_USABLE_WAIT.values(), ids=NO_USABLE_WAIT.keys())
def test_a_429_without_a_usable_wait_backs_off_and_gives_up(
    make_client, make_async_client, emulator, flavour, pacing, hint
):
    """Retry-After: 0 (or a date already past) is no wait at all: the client backs off as if HubSpot
    had named none, and stops after ``max_throttled_retries`` instead of hammering forever."""
    fault(emulator, status=429, count=200, **hint)
    with pytest.raises(HubSpotRateLimitError, match="gave up after") as caught:
        get_definitions_with(make_client, make_async_client, flavour, retry_policy=QUICK, rate_limit=pacing)
    times = [r["time"] for r in api_requests(emulator)]
    assert len(times) == 1 + QUICK.max_throttled_retries
    assert f"{QUICK.max_throttled_retries} throttled retries" in str(caught.value)
    for n, (before, after) in enumerate(itertools.pairwise(times)):
        assert after - before >= least_backoff(QUICK, n) - 0.002, (n, after - before)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_short_retry_after_is_honoured_above_a_floor_that_grows(
    make_client, make_async_client, emulator, flavour
):
    """HubSpot's own figure is waited, but each further 429 of one request waits at least
    ``throttle_step`` more than the one before: a storm of short Retry-Afters slows down."""
    policy = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=1.0, throttle_step=0.05)
    fault(emulator, status=429, count=6, retry_after=0.01)
    assert get_definitions_with(make_client, make_async_client, flavour, retry_policy=policy).results
    times = [r["time"] for r in api_requests(emulator)]
    assert len(times) == 7
    for n, (before, after) in enumerate(itertools.pairwise(times)):
        assert after - before >= 0.05 * (n + 1) - 0.002, (n, after - before)


@pytest.mark.parametrize(
    ("headers", "throttles", "expected"),
    [
        ({"Retry-After": "2"}, 0, 2.0),  # HubSpot's figure
        ({"retry-after-ms": "1500"}, 0, 1.5),
        ({"Retry-After": "0"}, 0, 0.2),  # no wait named: the backoff
        ({"Retry-After": "0"}, 3, 1.6),  # ...which grows
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1, 0.4),  # a date long past: the same
        ({"Retry-After": "soon"}, 0, 0.2),  # unreadable: the same
        ({}, 2, 0.8),
        ({"Retry-After": "0.05"}, 4, 0.5),  # shorter than the floor of a 5th 429: the floor
        ({"Retry-After": "2"}, 29, 3.0),  # the 30th retry, at the floor of 30 x 0.1 s...
        ({"Retry-After": "2"}, 30, None),  # ...is the last
    ],
)
def test_every_form_of_retry_after_on_a_429(headers, throttles, expected):
    policy = RetryPolicy(initial_delay=0.2, max_delay=10.0, jitter=0, throttle_step=0.1)
    response = httpx.Response(429, headers=headers, json={"policyName": "TEN_SECONDLY_ROLLING"})
    wait, _ = policy.retry_or_stop(failures=0, throttles=throttles, throttled_for=0.0, response=response)
    assert wait == (None if expected is None else pytest.approx(expected))


# ---- a Retry-After that is no number; patience, not HubSpot, ending the retries (review of 23, 7) -

STEADY = RetryPolicy(max_retries=3, initial_delay=0.2, max_delay=0.2, jitter=0)


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("status", [503, 429])
def test_a_retry_after_that_is_not_a_number_is_as_if_absent(
    make_client, make_async_client, emulator, flavour, status
):
    """``Retry-After: nan`` reads as a number to ``float()``; it names no wait: the policy's own
    backoff applies (it crashed the sync client in ``time.sleep``, retried the async one at once,
    and ended a 429 at once with "retry after nan s")."""
    nan = json.dumps({"status": status, "retry_after": float("nan")})  # NaN: not strict JSON
    emulator.control("POST", "faults", content=nan, headers={"Content-Type": "application/json"})
    assert get_definitions_with(make_client, make_async_client, flavour, retry_policy=STEADY).results
    first, second = api_requests(emulator)
    assert first["status"] == status and second["time"] - first["time"] >= 0.2 - 0.002


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("hint", [{}, {"retry_after": 0.3}], ids=["no-retry-after", "short-retry-after"])
def test_a_429_storm_that_outlasts_rate_limit_patience_says_so(
    make_client, make_async_client, emulator, flavour, hint
):
    """The client, not HubSpot, stops: the error says it was rate_limit_patience."""
    fault(emulator, status=429, count=200, **hint)
    policy = RetryPolicy(initial_delay=0.05, max_delay=0.2, rate_limit_patience=1.0)
    with pytest.raises(HubSpotRateLimitError, match="rate_limit_patience") as caught:
        get_definitions_with(make_client, make_async_client, flavour, retry_policy=policy)
    assert len(api_requests(emulator)) < 1 + policy.max_throttled_retries
    assert "1 s" in str(caught.value)  # the patience it ran out of


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "nan"},
        {"Retry-After": "inf"},
        {"Retry-After": "-inf"},
        {"Retry-After": "1e999"},
        {"retry-after-ms": "nan"},
        {"retry-after-ms": "inf"},
    ],
)
def test_a_retry_after_that_is_no_finite_number_is_unreadable(headers):
    assert retry_after_seconds(httpx.Headers(headers)) is None
    with_seconds = httpx.Headers({**headers, "Retry-After": "2"}) if "retry-after-ms" in headers else None
    if with_seconds is not None:  # an unreadable retry-after-ms leaves Retry-After to say
        assert retry_after_seconds(with_seconds) == 2.0


# ---- an answer httpx cannot decode (review of issue 23, 8e) --------------------------------------


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_an_undecodable_answer_to_a_write_is_a_client_error_that_may_have_applied(
    make_client, make_async_client, emulator, flavour
):
    """A 2xx whose body does not decode (Content-Encoding: gzip, body not gzip) raises
    httpx.DecodingError, which is no TransportError: it must come out as the client's error, with
    the delivery record, since HubSpot applied the write."""
    fault(emulator, kind="undecodable", count=100, path_contains="unsubscribe-all")
    address = f"undecodable-{flavour}@example.com"
    options = {"retry_policy": RetryPolicy(max_retries=1, initial_delay=0.01)}
    with pytest.raises(HubSpotTransportError, match="DecodingError") as caught:
        if flavour == "sync":
            make_client(**options).batch_unsubscribe_all([address], verbose=True)
        else:

            async def go() -> None:
                async with make_async_client(**options) as client:
                    await client.batch_unsubscribe_all([address], verbose=True)

            asyncio.run(go())
    assert caught.value.may_have_applied
    assert address in {email for email, _ in emulator.backend.changes}
    assert len(api_requests(emulator)) == 2  # mangled in transit, as a body cut off: sent again


def test_an_undecodable_answer_once_is_read_again(make_client, emulator):
    fault(emulator, kind="undecodable", count=1)
    assert make_client().get_definitions().results
    assert len(api_requests(emulator)) == 2
