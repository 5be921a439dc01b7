"""Who may call: private-app tokens, OAuth access tokens and the scopes each operation needs."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import (
    ALL_SCOPES,
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    EmulatorConfig,
)
from .problems import ApiProblem

READ_SCOPE = "communication_preferences.read"
WRITE_SCOPE = "communication_preferences.write"
READ_WRITE_SCOPE = "communication_preferences.read_write"
BATCH_READ_SCOPE = "communication_preferences.statuses.batch.read"
BATCH_WRITE_SCOPE = "communication_preferences.statuses.batch.write"
# Alternatives of scope sets per operation, as the specs' ``security`` sections list them.
SCOPES: dict[str, tuple[frozenset[str], ...]] = {
    "read": (frozenset({READ_WRITE_SCOPE}), frozenset({READ_SCOPE})),
    "write": (frozenset({READ_WRITE_SCOPE}), frozenset({WRITE_SCOPE})),
    "links": (frozenset({READ_SCOPE, WRITE_SCOPE}), frozenset({READ_WRITE_SCOPE})),
    "batch_read": (frozenset({BATCH_READ_SCOPE}),),
    "batch_write": (frozenset({BATCH_WRITE_SCOPE}),),
}


@dataclass
class AccessToken:
    app: str
    scopes: frozenset[str]
    expires_at: float | None  # monotonic; None = private-app token (never expires)


class Access:
    """Tokens, OAuth and scopes (a part of ``PortalBackend``)."""

    lock: Any
    config: EmulatorConfig

    def _reset_access(self) -> None:
        self.oauth_clients = {DEMO_OAUTH_CLIENT_ID: DEMO_OAUTH_CLIENT_SECRET}
        self.refresh_tokens = {DEMO_REFRESH_TOKEN: DEMO_OAUTH_CLIENT_ID}
        self.access_tokens: dict[str, AccessToken] = {}
        self.token_requests = 0

    def add_token(self, token: str, scopes: Iterable[str] | None = None) -> None:
        with self.lock:
            self.config.tokens[token] = sorted(ALL_SCOPES if scopes is None else scopes)

    def revoke(self, token: str) -> bool:
        with self.lock:
            found = self.access_tokens.pop(token, None) is not None
            found = self.refresh_tokens.pop(token, None) is not None or found
            return self.config.tokens.pop(token, None) is not None or found

    def authenticate(self, authorization: str | None) -> AccessToken:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiProblem(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            )
        with self.lock:
            if token in self.config.tokens:
                return AccessToken(
                    app=f"private:{token}", scopes=frozenset(self.config.tokens[token]), expires_at=None
                )
            access = self.access_tokens.get(token)
        if access is None:
            raise ApiProblem(
                401, "INVALID_AUTHENTICATION", "The access token provided is invalid or revoked."
            )
        if access.expires_at is not None and time.monotonic() >= access.expires_at:
            raise ApiProblem(
                401,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired. Refresh the access token.",
            )
        return access

    @staticmethod
    def authorize(token: AccessToken, operation: str) -> None:
        alternatives = SCOPES[operation]
        if any(alt <= token.scopes for alt in alternatives):
            return
        missing = sorted(min(alternatives, key=lambda alt: len(alt - token.scopes)) - token.scopes)
        raise ApiProblem(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
            context={"missingScopes": missing},
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": missing},
                }
            ],
        )

    def oauth_token(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.token_requests += 1
            if form.get("grant_type") != "refresh_token":
                raise ApiProblem(
                    400,
                    "BAD_GRANT_TYPE",
                    "grant_type must be refresh_token",
                    extra={"error": "unsupported_grant_type"},
                )
            client_id = form.get("client_id", "")
            if self.oauth_clients.get(client_id) != form.get("client_secret") or not client_id:
                raise ApiProblem(
                    400,
                    "BAD_CLIENT_ID",
                    "missing or unknown client id or secret",
                    extra={"error": "invalid_client"},
                )
            refresh = form.get("refresh_token", "")
            if self.refresh_tokens.get(refresh) != client_id:
                raise ApiProblem(
                    400,
                    "BAD_REFRESH_TOKEN",
                    "missing or unknown refresh token",
                    extra={"error": "invalid_grant"},
                )
            if self.config.refresh_token_rotation != "none":
                if self.config.refresh_token_rotation == "strict":
                    del self.refresh_tokens[refresh]
                refresh = "emu-refresh-" + secrets.token_urlsafe(24)
                self.refresh_tokens[refresh] = client_id
            access = "emu-oauth-" + secrets.token_urlsafe(24)
            ttl = self.config.access_token_ttl
            self.access_tokens[access] = AccessToken(
                app=f"oauth:{client_id}", scopes=ALL_SCOPES, expires_at=time.monotonic() + ttl
            )
            return {
                "token_type": "bearer",
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": ttl,
            }
