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

from .errors import HubSpotAuthenticationError
from .policy import parse_error


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
    at once, one token request is made and the others wait for its answer. A failed refresh raises
    ``HubSpotAuthenticationError`` with HubSpot's reason.
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
        )

    def _take(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            # Whatever the status, a refused refresh means the credentials no longer work.
            raise parse_error(
                response,
                method="POST",
                endpoint="/oauth/v1/token",
                redact=self._redact,
                error_class=HubSpotAuthenticationError,
            )
        body = response.json()
        self._access_token = body["access_token"]
        # HubSpot may rotate the refresh token; keep the newest.
        self._refresh_token = body.get("refresh_token") or self._refresh_token
        expires_in = float(body.get("expires_in", 1800))
        margin = min(300.0, expires_in / 10)
        self._refresh_at = time.monotonic() + expires_in - margin
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
