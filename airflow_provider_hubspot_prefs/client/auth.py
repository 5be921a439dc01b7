"""Authentication for httpx: a private-app token, or OAuth 2.0 with refresh-token rotation.

Both are ``httpx.Auth`` flows, so the token request of the OAuth flow goes through the same
connection pool and transport as the API calls, in the sync and the async client alike.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator

import httpx

from .delivery import TOKEN_REQUEST, TokenEndpointFailure
from .errors import HubSpotAuthenticationError, HubSpotResponseError
from .policy import json_or_none, parse_error
from .versions import OAUTH_TOKEN_PATH

log = logging.getLogger(__name__)


def _lifetime(expires_in: object) -> float:
    """Seconds to use an access token before refreshing it: ``expires_in`` less a margin. Without a
    readable, positive ``expires_in`` HubSpot did not say: the token is used until HubSpot answers 401."""
    try:
        seconds = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("inf")
    return seconds - min(300.0, seconds / 10) if seconds > 0 else float("inf")


def _refused_grant(response: httpx.Response) -> bool:
    """HubSpot refused the refresh token itself (``invalid_grant`` / BAD_REFRESH_TOKEN, or a 401)."""
    body = json_or_none(response)
    fields = body if isinstance(body, dict) else {}
    said = {fields.get("error"), fields.get("status"), fields.get("category")}
    return response.status_code == 401 or bool(said & {"invalid_grant", "BAD_REFRESH_TOKEN"})


class PrivateAppTokenAuth(httpx.Auth):
    """``Authorization: Bearer <private app access token>``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a private app access token is required")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "PrivateAppTokenAuth(token=***)"


class OAuthRefreshAuth(httpx.Auth):
    """OAuth 2.0 for public apps: exchanges the refresh token for access tokens as needed.

    The access token is cached and refreshed shortly before ``expires_in`` runs out, and once more
    when HubSpot answers 401 (a token revoked early). One object may serve several clients, sync
    and async (the hook gives all of its clients one), and the refresh is single-flight across all
    of them: however many requests (threads of a sync client, tasks of async clients, in any
    thread's event loop) find the token missing or expired at once, one token request is made and
    the others wait for its answer. A refresh HubSpot refuses (``invalid_grant``, a 401, any other
    4xx) raises ``HubSpotAuthenticationError`` with HubSpot's reason; a 429 or 5xx, or a lost
    connection, is retried by the client under its retry policy, as any call; a 200 without an
    access token raises ``HubSpotResponseError``.

    Rotated refresh tokens: HubSpot documents the refresh token of the install as the one to keep,
    yet may answer a refresh with a new one. The configured refresh token (the connection's, which
    every task starts from) is used as long as HubSpot accepts it; the newest one HubSpot gave is
    kept in memory, never written anywhere. Only when HubSpot refuses the configured one is the
    newest used, from then on, and a warning says that the connection's refresh token no longer
    works: the next task starting from it will fail until the connection is updated.
    """

    def __init__(
        self, *, client_id: str, client_secret: str, refresh_token: str, token_url: str, redact: bool = True
    ) -> None:
        missing = [
            n
            for n, v in (
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("refresh_token", refresh_token),
            )
            if not v
        ]
        if missing:
            raise ValueError(f"OAuth needs {', '.join(missing)}")
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token  # the configured one
        self._rotated: str | None = None  # the newest HubSpot answered, when not the configured one
        self._configured_refused = False
        self._token_url = token_url
        self._redact = redact
        self._access_token: str | None = None
        self._refresh_at = 0.0
        self.refresh_count = 0
        # Held by whoever refreshes: a thread of a sync client, or a task of any event loop.
        self._refreshing = threading.Lock()
        # The tasks of one event loop queue for it on that loop's lock (asyncio locks belong to one
        # loop; a client may be used from several asyncio.run calls, in several threads).
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"OAuthRefreshAuth(client_id={self._client_id!r}, client_secret=***, refresh_token=***)"

    def _stale(self, used: str | None = None) -> bool:
        """The token must be refreshed: none yet, expiring, or still the one HubSpot just refused."""
        if used is not None:
            return used == self._access_token
        return self._access_token is None or time.monotonic() >= self._refresh_at

    def _refresh_with(self) -> str:
        """The refresh token to send: the configured one, unless HubSpot refused it after rotating."""
        return self._rotated if self._configured_refused and self._rotated else self._refresh_token

    def _token_request(self, refresh_token: str) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._token_url,
            data={
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": refresh_token,
            },
            extensions={TOKEN_REQUEST: True},  # a failure on it means the call was never sent
        )

    def _take(self, response: httpx.Response, sent: str) -> bool:
        """Take the token endpoint's answer to a refresh with ``sent``; True: ask again (HubSpot
        refused the configured refresh token after rotating it: the newest one is sent next)."""
        if response.status_code == 429 or response.status_code >= 500:
            raise TokenEndpointFailure(response)  # HubSpot's trouble, not the credentials': retried
        if response.status_code != 200:
            first_refusal = sent == self._refresh_token and not self._configured_refused
            if first_refusal and self._rotated and _refused_grant(response):
                self._configured_refused = True
                log.warning(
                    "HubSpot no longer accepts the connection's refresh token: it answered an earlier "
                    "refresh with a new one. This task goes on with that one (kept in memory only); "
                    "tasks starting from the connection will fail with BAD_REFRESH_TOKEN until the "
                    "connection holds a refresh token HubSpot accepts (re-authorize the app)."
                )
                return True
            raise parse_error(
                response,
                method="POST",
                endpoint=OAUTH_TOKEN_PATH,
                redact=self._redact,
                error_class=HubSpotAuthenticationError,
            )
        body = json_or_none(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise HubSpotResponseError(
                "the token endpoint answered 200 without an access_token",
                method="POST",
                endpoint=OAUTH_TOKEN_PATH,
                status_code=200,
            )
        self._access_token = token
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated not in (sent, self._refresh_token):
            self._rotated = rotated
        self._refresh_at = time.monotonic() + _lifetime(body.get("expires_in"))
        self.refresh_count += 1
        return False

    def _authorize(self, request: httpx.Request) -> str | None:
        used = self._access_token
        request.headers["Authorization"] = f"Bearer {used}"
        return used

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used: str | None = None
        while True:
            if self._stale(used):
                with self._refreshing:
                    if self._stale(used):  # another thread may have refreshed while this one waited
                        again = True
                        while again:
                            sent = self._refresh_with()
                            token = yield self._token_request(sent)
                            token.read()
                            again = self._take(token, sent)
            if used is not None:  # the retry after a 401
                self._authorize(request)
                yield request
                return
            used = self._authorize(request)
            response = yield request
            if response.status_code != 401:
                return

    async def _take_refreshing(self) -> None:
        """Acquire the refresh lock without blocking the event loop: a sync client's thread or
        another loop's task may hold it for a token request's round trip."""
        while not self._refreshing.acquire(blocking=False):
            await asyncio.sleep(0.01)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.setdefault(loop, asyncio.Lock())
        used: str | None = None
        while True:
            if self._stale(used):
                async with lock:
                    await self._take_refreshing()
                    try:
                        if self._stale(used):  # another task, thread or loop may have refreshed
                            again = True
                            while again:
                                sent = self._refresh_with()
                                token = yield self._token_request(sent)
                                await token.aread()
                                again = self._take(token, sent)
                    finally:
                        self._refreshing.release()
            if used is not None:
                self._authorize(request)
                yield request
                return
            used = self._authorize(request)
            response = yield request
            if response.status_code != 401:
                return
