"""Authentication for httpx: a private-app token, or OAuth 2.0 with refresh-token rotation.

Both are ``httpx.Auth`` flows, so the token request of the OAuth flow goes through the same
connection pool and transport as the API calls, in the sync and the async client alike.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator

import httpx

from .delivery import TOKEN_REQUEST, TokenEndpointFailure
from .errors import HubSpotAuthenticationError, HubSpotResponseError
from .policy import json_or_none, parse_error
from .versions import OAUTH_TOKEN_PATH


def _lifetime(expires_in: object) -> float:
    """Seconds to use an access token before refreshing it: ``expires_in`` less a margin. Without a
    readable, positive ``expires_in`` HubSpot did not say: the token is used until HubSpot answers 401."""
    try:
        seconds = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("inf")
    return seconds - min(300.0, seconds / 10) if seconds > 0 else float("inf")


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
    when HubSpot answers 401 (a token revoked early). The refresh is single-flight: however many
    requests (threads of the sync client, tasks of the async one) find the token missing or expired
    at once, one token request is made and the others wait for its answer. A refresh HubSpot
    refuses (``invalid_grant``, a 401, any other 4xx) raises ``HubSpotAuthenticationError`` with
    HubSpot's reason; a 429 or 5xx, or a lost connection, is retried by the client under its retry
    policy, as any call; a 200 without an access token raises ``HubSpotResponseError``.
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
        self._refresh_token = refresh_token
        self._token_url = token_url
        self._redact = redact
        self._access_token: str | None = None
        self._refresh_at = 0.0
        self.refresh_count = 0
        self._thread_lock = threading.Lock()
        # asyncio locks belong to one event loop; a client may be used from several asyncio.run calls.
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

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._token_url,
            data={
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "refresh_token": self._refresh_token,
            },
            extensions={TOKEN_REQUEST: True},  # a failure on it means the call was never sent
        )

    def _take(self, response: httpx.Response) -> None:
        if response.status_code == 429 or response.status_code >= 500:
            raise TokenEndpointFailure(response)  # HubSpot's trouble, not the credentials': retried
        if response.status_code != 200:
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
        # HubSpot may rotate the refresh token; keep the newest.
        self._refresh_token = body.get("refresh_token") or self._refresh_token
        self._refresh_at = time.monotonic() + _lifetime(body.get("expires_in"))
        self.refresh_count += 1

    def _authorize(self, request: httpx.Request) -> str | None:
        used = self._access_token
        request.headers["Authorization"] = f"Bearer {used}"
        return used

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used: str | None = None
        while True:
            if self._stale(used):
                with self._thread_lock:
                    if self._stale(used):  # another thread may have refreshed while this one waited
                        token = yield self._token_request()
                        token.read()
                        self._take(token)
            if used is not None:  # the retry after a 401
                self._authorize(request)
                yield request
                return
            used = self._authorize(request)
            response = yield request
            if response.status_code != 401:
                return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.setdefault(loop, asyncio.Lock())
        used: str | None = None
        while True:
            if self._stale(used):
                async with lock:
                    if self._stale(used):
                        token = yield self._token_request()
                        await token.aread()
                        self._take(token)
            if used is not None:
                self._authorize(request)
                yield request
                return
            used = self._authorize(request)
            response = yield request
            if response.status_code != 401:
                return
