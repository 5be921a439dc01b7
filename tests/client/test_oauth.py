"""OAuth 2.0 refresh-token flow against the emulator's /oauth/v1/token."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from airflow_provider_hubspot_prefs.client import (
    AsyncHubSpotPreferencesClient,
    HubSpotAuthenticationError,
    HubSpotError,
    HubSpotPreferencesClient,
    HubSpotResponseError,
    HubSpotServerError,
    HubSpotTransportError,
    OAuthRefreshAuth,
    RetryPolicy,
    token_url,
)
from airflow_provider_hubspot_prefs.emulator import (
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
)

from ..conftest import FAST_RETRY


def oauth(emulator, refresh_token=DEMO_REFRESH_TOKEN, secret=DEMO_OAUTH_CLIENT_SECRET):
    return OAuthRefreshAuth(
        client_id=DEMO_OAUTH_CLIENT_ID,
        client_secret=secret,
        refresh_token=refresh_token,
        token_url=token_url(emulator.url),
    )


def token_requests(emulator) -> int:
    return int(emulator.control("GET", "requests")["tokenRequests"])


def test_access_token_is_fetched_once_and_cached(emulator):
    auth = oauth(emulator)
    with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
        for _ in range(5):
            client.get_definitions()
    assert token_requests(emulator) == 1 and auth.refresh_count == 1


def test_refreshes_shortly_before_expiry(emulator):
    emulator.control("PATCH", "config", json={"access_token_ttl": 2})
    auth = oauth(emulator)
    with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
        client.get_definitions()
        time.sleep(1.0)
        client.get_definitions()  # 1.0 s into a 2 s token: still valid, margin is 0.2 s
        assert token_requests(emulator) == 1
        time.sleep(0.9)  # 1.9 s: inside the margin, refreshed before HubSpot would say 401
        client.get_definitions()
    assert token_requests(emulator) == 2
    assert all(r["status"] == 200 for r in emulator.control("GET", "requests")["requests"])


def test_revoked_access_token_is_refreshed_once_on_401(emulator):
    auth = oauth(emulator)
    with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
        client.get_definitions()
        emulator.control("POST", "revoke", json={"token": auth._access_token})
        assert client.get_status("alice@example.com").results
    statuses = [
        (r["path"].split("/")[1], r["status"]) for r in emulator.control("GET", "requests")["requests"]
    ]
    cp = "communication-preferences"
    assert statuses == [("oauth", 200), (cp, 200), (cp, 401), ("oauth", 200), (cp, 200)]
    assert token_requests(emulator) == 2


def test_bad_refresh_token_fails_clearly_without_leaking(emulator):
    auth = oauth(emulator, refresh_token="stale-refresh-token")
    client = HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY)
    with client, pytest.raises(HubSpotAuthenticationError) as err:
        client.get_definitions()
    assert err.value.category == "BAD_REFRESH_TOKEN"
    text = str(err.value) + repr(err.value) + repr(auth)
    assert "stale-refresh-token" not in text and DEMO_OAUTH_CLIENT_SECRET not in text


def test_bad_client_secret_is_rejected(emulator):
    client = HubSpotPreferencesClient(oauth(emulator, secret="wrong"), base_url=emulator.url)
    with client, pytest.raises(HubSpotAuthenticationError, match="BAD_CLIENT_ID"):
        client.get_definitions()


def test_async_client_uses_the_same_flow(emulator):
    auth = oauth(emulator)

    async def go():
        async with AsyncHubSpotPreferencesClient(
            auth, base_url=emulator.url, retry_policy=FAST_RETRY
        ) as client:
            await client.get_definitions()
            emulator.control("POST", "revoke", json={"token": auth._access_token})
            return await client.get_definitions()

    assert asyncio.run(go()).results
    assert token_requests(emulator) == 2


def test_oauth_refresh_is_single_flight_across_threads(emulator):
    """Item 14, sync client: eight threads make their first call at once."""
    emulator.control("PATCH", "config", json={"latency_ms": 100})  # the token request takes a while
    with HubSpotPreferencesClient(oauth(emulator), base_url=emulator.url, rate_limit=None) as client:
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def call() -> None:
            barrier.wait()
            try:
                client.get_definitions()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors and token_requests(emulator) == 1


def test_oauth_refresh_is_single_flight_across_tasks(emulator):
    """Item 14, async client: eight tasks make their first call at once."""
    emulator.control("PATCH", "config", json={"latency_ms": 100})

    async def calls() -> None:
        async with AsyncHubSpotPreferencesClient(
            oauth(emulator), base_url=emulator.url, rate_limit=None
        ) as client:
            await asyncio.gather(*(client.get_definitions() for _ in range(8)))

    asyncio.run(calls())
    assert token_requests(emulator) == 1


def test_oauth_refresh_is_single_flight_across_clients_threads_and_event_loops(emulator):
    """Review of issue 23, 6: one auth object serves a hook's sync client and its async clients,
    which may run in other threads' event loops. However many of them find the token missing at
    once, one refresh goes out: under strict rotation, a second one would send a refresh token
    the first had just used up."""
    emulator.control("PATCH", "config", json={"latency_ms": 100, "refresh_token_rotation": "strict"})
    auth = oauth(emulator)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def sync_calls() -> None:
        with HubSpotPreferencesClient(auth, base_url=emulator.url, rate_limit=None) as client:
            barrier.wait()
            client.get_definitions()

    def async_calls() -> None:
        async def calls() -> None:
            async with AsyncHubSpotPreferencesClient(auth, base_url=emulator.url, rate_limit=None) as client:
                barrier.wait()  # every thread is here: the loops start their calls together
                await asyncio.gather(*(client.get_definitions() for _ in range(4)))

        asyncio.run(calls())

    def guarded(target) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(f,)) for f in [sync_calls] * 3 + [async_calls] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and token_requests(emulator) == 1


# ---- the token endpoint's transient failures and odd answers (issue 23, item 5) -----------------

TOKEN_PATH = "/oauth/v1/token"
EMPTY_ANSWER = {
    "status": "COMPLETE",
    "results": [],
    "startedAt": "2026-11-26T10:00:00Z",
    "completedAt": "2026-11-26T10:00:00Z",
}


def token_answers(emulator) -> list[int]:
    """The status of every request the token endpoint received, faults included."""
    return [r["status"] for r in emulator.control("GET", "requests")["requests"] if r["path"] == TOKEN_PATH]


def definitions_through(emulator, flavour: str, auth: OAuthRefreshAuth):
    """One GET /definitions with ``auth``, through the sync or the async client (FAST_RETRY)."""
    if flavour == "sync":
        with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
            return client.get_definitions()

    async def go():
        client = AsyncHubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY)
        async with client:
            return await client.get_definitions()

    return asyncio.run(go())


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    "fault",
    [{"status": 503, "count": 2}, {"status": 429, "retry_after": 0, "count": 2}, {"kind": "drop_before"}],
    ids=["503", "429", "dropped"],
)
def test_a_transient_token_endpoint_failure_is_retried(emulator, flavour, fault):
    emulator.control("POST", "faults", json={**fault, "path_endswith": TOKEN_PATH})
    assert definitions_through(emulator, flavour, oauth(emulator)).results
    statuses = [r["status"] for r in emulator.control("GET", "requests")["requests"]]
    assert statuses[-1] == 200 and statuses.count(200) == 2  # one token, one call


def test_a_token_endpoint_that_stays_down_fails_as_a_server_error_not_an_auth_error(emulator):
    emulator.control("POST", "faults", json={"status": 503, "count": 100, "path_endswith": TOKEN_PATH})
    with pytest.raises(HubSpotServerError) as err:
        definitions_through(emulator, "sync", oauth(emulator))
    assert err.value.status_code == 503 and err.value.endpoint == TOKEN_PATH
    assert token_answers(emulator) == [503] * (1 + FAST_RETRY.max_retries)


def test_a_write_whose_token_request_failed_was_not_sent(emulator):
    """A lost token request is not a lost write: HubSpot cannot have applied a call never sent."""
    lost = {"kind": "drop_before", "count": 100, "path_endswith": TOKEN_PATH}
    emulator.control("POST", "faults", json=lost)
    client = HubSpotPreferencesClient(oauth(emulator), base_url=emulator.url, retry_policy=FAST_RETRY)
    with client, pytest.raises(HubSpotTransportError) as err:
        client.batch_unsubscribe_all(["nobody@example.com"], verbose=True)
    assert not err.value.may_have_applied


def test_a_token_answer_without_an_access_token_is_a_clear_error(emulator):
    emulator.control("POST", "faults", json={"kind": "wrong_shape", "path_endswith": TOKEN_PATH})
    with pytest.raises(HubSpotResponseError, match="without an access_token") as err:
        definitions_through(emulator, "sync", oauth(emulator))
    assert err.value.endpoint == TOKEN_PATH and token_answers(emulator) == [200]


def test_a_refused_refresh_token_is_not_retried(emulator):
    with pytest.raises(HubSpotAuthenticationError) as err:
        definitions_through(emulator, "sync", oauth(emulator, refresh_token="stale-refresh-token"))
    assert "invalid_grant" in str(err.value.body) and token_answers(emulator) == [400]


# ---- rotated refresh tokens (issue 23, item 9) ----------------------------------------------------


def refresh_twice(emulator, auth: OAuthRefreshAuth) -> None:
    """Two calls with a refresh between them (the access token revoked), as a long task makes."""
    with HubSpotPreferencesClient(auth, base_url=emulator.url, retry_policy=FAST_RETRY) as client:
        client.get_definitions()
        emulator.control("POST", "revoke", json={"token": auth._access_token})
        client.get_definitions()


def test_a_rotated_refresh_token_that_leaves_the_old_one_working_is_harmless(emulator, caplog):
    """HubSpot answers a new refresh token each time and the connection's keeps working: a task
    that refreshed does not strand the next one, which starts from the connection's token."""
    emulator.control("PATCH", "config", json={"refresh_token_rotation": "new"})
    refresh_twice(emulator, oauth(emulator))
    assert definitions_through(emulator, "sync", oauth(emulator)).results  # the next task
    assert token_answers(emulator) == [200, 200, 200]
    assert "refresh token" not in caplog.text  # nothing to warn of


def test_a_strictly_rotated_refresh_token_keeps_the_task_going_and_says_what_will_fail(emulator, caplog):
    """HubSpot answers a new refresh token and stops accepting the one used. The task that refreshed
    goes on with the new one (kept in memory only, never written anywhere) and says loudly, in its
    log, that the connection's refresh token no longer works; the next task, starting from the
    connection, fails at once with HubSpot's BAD_REFRESH_TOKEN, not retried."""
    emulator.control("PATCH", "config", json={"refresh_token_rotation": "strict"})
    refresh_twice(emulator, oauth(emulator))
    # The second refresh tried the connection's token first (refused), then the rotated one.
    assert token_answers(emulator) == [200, 400, 200]
    assert "HubSpot no longer accepts the connection's refresh token" in caplog.text
    assert DEMO_REFRESH_TOKEN not in caplog.text
    emulator.control("DELETE", "requests")
    with pytest.raises(HubSpotAuthenticationError, match="BAD_REFRESH_TOKEN"):
        definitions_through(emulator, "sync", oauth(emulator))  # the next task
    assert token_answers(emulator) == [400]


@pytest.mark.parametrize(
    "expires_in", [{}, {"expires_in": "soon"}, {"expires_in": -5}], ids=["none", "text", "negative"]
)
def test_a_token_answer_without_a_usable_expires_in_is_used_until_hubspot_refuses_it(expires_in):
    """HubSpot did not say when the token expires: no lifetime is assumed (and an unreadable one is
    no crash); the token is used until a 401, which refreshes it."""
    token_calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/v1/token"):
            token_calls.append(f"access-{len(token_calls) + 1}")
            return httpx.Response(200, json={"access_token": token_calls[-1], **expires_in})
        if request.headers["Authorization"] == "Bearer access-1" and calls.pop():
            return httpx.Response(401, json={"category": "EXPIRED_AUTHENTICATION", "message": "expired"})
        return httpx.Response(200, json=EMPTY_ANSWER)

    calls = [True, False, False]  # popped from the end: the third call with the first token meets a 401
    auth = OAuthRefreshAuth(
        client_id=DEMO_OAUTH_CLIENT_ID,
        client_secret=DEMO_OAUTH_CLIENT_SECRET,
        refresh_token=DEMO_REFRESH_TOKEN,
        token_url="https://api.hubapi.com/oauth/v1/token",
    )
    client = HubSpotPreferencesClient(auth, transport=httpx.MockTransport(answer), rate_limit=None)
    for _ in range(4):
        client.get_definitions()
    assert token_calls == ["access-1", "access-2"]  # one at the start, one on the 401


# ---- a write whose answer was lost, then whose retry fails in the OAuth flow (review of issue 23, 1)


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    "token_fault",
    [{"status": 400, "category": "BAD_REFRESH_TOKEN"}, {"kind": "wrong_shape"}],
    ids=["refresh-refused", "no-access-token"],
)
def test_a_lost_write_whose_retry_fails_in_the_oauth_flow_may_have_applied(emulator, flavour, token_fault):
    """HubSpot applies the write and its answer is lost; by the retry the access token is due for
    refresh, and the refresh fails. The error must still say that the write may have applied."""
    emulator.control("PATCH", "config", json={"access_token_ttl": 1})  # refreshed after 0.9 s
    slow_enough = RetryPolicy(max_retries=3, initial_delay=1.5, max_delay=1.5, jitter=0)
    address = f"lost-then-refused-{flavour}@example.com"

    def arm() -> None:
        emulator.control("POST", "faults", json={"kind": "drop_after", "path_contains": "unsubscribe-all"})
        emulator.control("POST", "faults", json={**token_fault, "path_endswith": TOKEN_PATH})

    if flavour == "sync":
        with HubSpotPreferencesClient(
            oauth(emulator), base_url=emulator.url, retry_policy=slow_enough
        ) as client:
            client.get_definitions()  # the first access token
            arm()
            with pytest.raises(HubSpotError) as err:
                client.batch_unsubscribe_all([address], verbose=True)
    else:

        async def go() -> None:
            client = AsyncHubSpotPreferencesClient(
                oauth(emulator), base_url=emulator.url, retry_policy=slow_enough
            )
            async with client:
                await client.get_definitions()
                arm()
                await client.batch_unsubscribe_all([address], verbose=True)

        with pytest.raises(HubSpotError) as err:
            asyncio.run(go())
    assert isinstance(err.value, (HubSpotAuthenticationError, HubSpotResponseError))
    assert err.value.endpoint == TOKEN_PATH
    assert address in {email for email, _ in emulator.backend.changes}  # HubSpot did apply it
    assert err.value.may_have_applied


def test_a_write_whose_first_attempt_fails_in_the_oauth_flow_was_not_sent(emulator):
    """Nothing was lost before: a refresh refused, or a token answer without a token, sent nothing."""
    emulator.control("POST", "faults", json={"kind": "wrong_shape", "path_endswith": TOKEN_PATH})
    client = HubSpotPreferencesClient(oauth(emulator), base_url=emulator.url, retry_policy=FAST_RETRY)
    with client, pytest.raises(HubSpotResponseError) as err:
        client.batch_unsubscribe_all(["nobody@example.com"], verbose=True)
    assert err.value.delivery is not None and not err.value.may_have_applied
