"""State and rules of the emulated HubSpot portal.

Written from HubSpot's documentation and OpenAPI specs (never from this package's client), so
that the emulator can serve as the test oracle. HTTP handlers in ``app.py`` only translate
requests into calls of ``PortalBackend`` and its answers or ``ApiProblem`` into responses.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .config import (
    ALL_SCOPES,
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    EmulatorConfig,
)

STATUS_STATES = ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED")
LEGAL_BASES = (
    "CONSENT_WITH_NOTICE",
    "LEGITIMATE_INTEREST_CLIENT",
    "LEGITIMATE_INTEREST_OTHER",
    "LEGITIMATE_INTEREST_PQL",
    "NON_GDPR",
    "PERFORMANCE_OF_CONTRACT",
    "PROCESS_AND_STORE",
)
CHANNELS = ("EMAIL",)
SOURCE = "Communication Preferences API"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]+$")

R = "communication_preferences.read"
W = "communication_preferences.write"
RW = "communication_preferences.read_write"
BATCH_R = "communication_preferences.statuses.batch.read"
BATCH_W = "communication_preferences.statuses.batch.write"
# Alternatives of scope sets per operation, as the specs' ``security`` sections list them.
SCOPES: dict[str, tuple[frozenset[str], ...]] = {
    "read": (frozenset({RW}), frozenset({R})),
    "write": (frozenset({RW}), frozenset({W})),
    "links": (frozenset({R, W}), frozenset({RW})),
    "batch_read": (frozenset({BATCH_R}),),
    "batch_write": (frozenset({BATCH_W}),),
}


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def now_iso() -> str:
    return iso(time.time())


class ApiProblem(Exception):
    """An error answer in HubSpot's ``Error`` shape."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        sub_category: str | None = None,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.sub_category = sub_category
        self.context = context
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def validation(message: str, field_name: str, value: Any = None, code: str = "INVALID") -> ApiProblem:
    detail: dict[str, Any] = {"message": message, "in": field_name, "code": code}
    ctx = {field_name: [str(value)]} if value is not None else None
    if ctx:
        detail["context"] = ctx
    return ApiProblem(400, "VALIDATION_ERROR", message, context=ctx, errors=[detail])


@dataclass
class Definition:
    id: int
    name: str
    description: str
    business_unit_id: int = 0
    purpose: str = "Marketing"
    is_active: bool = True
    is_default: bool = False
    created_at: str = "2024-01-15T09:00:00.000Z"
    updated_at: str = "2026-03-01T09:00:00.000Z"

    def to_api(self, translations: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "description": self.description,
            "businessUnitId": self.business_unit_id,
            "communicationMethod": "Email",
            "purpose": self.purpose,
            "isActive": self.is_active,
            "isDefault": self.is_default,
            "isInternal": False,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if translations:
            stamp = 1_705_309_200_000
            data["subscriptionTranslations"] = [
                {
                    "subscriptionId": self.id,
                    "languageCode": "de",
                    "name": f"{self.name} (de)",
                    "description": f"{self.description} (de)",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                }
            ]
        return data


def seed_definitions() -> list[Definition]:
    return [
        Definition(1001, "Marketing Information", "Marketing offers and updates.", is_default=True),
        Definition(1002, "One to One", "One to one emails.", purpose="Sales", is_default=True),
        Definition(1003, "Customer Service Communication", "Service updates.", purpose="Service"),
        Definition(1004, "Newsletter", "Monthly newsletter."),
        Definition(1005, "Legacy Promotions", "Retired promotions list.", is_active=False),
        Definition(2001, "Brand B Newsletter", "Newsletter of business unit 1.", business_unit_id=1),
    ]


SEED_CONTACTS = ("alice@example.com", "bob@example.org", "carol+news@example.net")


@dataclass
class StatusRecord:
    status: str
    legal_basis: str | None
    legal_basis_explanation: str | None
    timestamp: str


FAULT_KINDS = ("error", "drop_before", "drop_after", "slow", "malformed", "partial")


@dataclass
class Fault:
    """A fault for the next ``count`` requests whose path contains ``path_contains`` (and ends
    with ``path_endswith``).

    ``kind`` says what happens:

    - ``error``: answer ``status`` (429 with ``policy_name`` and, if set, the
      ``X-HubSpot-RateLimit-Daily-Remaining`` header ``daily_remaining``; 5xx; 4xx) without running
      the request;
    - ``drop_before`` / ``drop_after``: close the connection without an answer, before or after the
      request was applied (the client cannot know which);
    - ``slow``: apply the request, then answer only after ``delay`` seconds;
    - ``malformed``: apply the request, then answer 200 with a truncated JSON body;
    - ``partial``: apply a batch except the inputs containing ``reject_contains``, which come back
      in ``errors`` with ``category`` and ``message`` (HTTP 207 where the version answers 207).
    """

    status: int = 500
    count: int = 1
    path_contains: str = ""
    path_endswith: str = ""
    retry_after: float | None = None
    category: str | None = None
    policy_name: str | None = None
    kind: str = "error"
    delay: float = 0.0
    reject_contains: str = ""
    message: str | None = None
    daily_remaining: int | None = None
    every: int = 1  # hit every n-th matching request only: scattered faults instead of a burst
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")


@dataclass
class PendingWrite:
    """A write accepted in asynchronous mode, applied (or canceled) once ``due`` has passed."""

    due: float
    emails: list[str]
    apply: Callable[[], list[dict[str, Any]]]
    canceled: bool


@dataclass
class AppUsage:
    window: deque[float] = field(default_factory=deque)
    day: str = ""
    daily_count: int = 0


@dataclass
class AccessToken:
    app: str
    scopes: frozenset[str]
    expires_at: float | None  # monotonic; None = private-app token (never expires)


class PortalBackend:
    """One emulated HubSpot portal: definitions, statuses, wide opt-outs, tokens, limits, faults."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.lock = threading.RLock()
        self.reset()

    # ---- administration ------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.definitions = seed_definitions()
            self.contacts: set[str] = set(SEED_CONTACTS)
            self.statuses: dict[tuple[str, int], StatusRecord] = {}
            self.wide: dict[tuple[str, int], str] = {}
            for email in SEED_CONTACTS:
                for sub_id in (1001, 1004):
                    self.statuses[(email, sub_id)] = StatusRecord(
                        "SUBSCRIBED", "CONSENT_WITH_NOTICE", "Signed up on the website", now_iso()
                    )
            self.usage: dict[str, AppUsage] = {}
            self.faults: list[Fault] = []
            self.request_log: list[dict[str, Any]] = []
            self.oauth_clients = {DEMO_OAUTH_CLIENT_ID: DEMO_OAUTH_CLIENT_SECRET}
            self.refresh_tokens = {DEMO_REFRESH_TOKEN: DEMO_OAUTH_CLIENT_ID}
            self.access_tokens: dict[str, AccessToken] = {}
            self.token_requests = 0
            self.pending: list[PendingWrite] = []
            self.inflight: dict[str, int] = {}
            self.last_operation: dict[str, str] = {}
            # How often each (contact, subscription) really changed state: a write applied twice
            # would show here even where the final state looks the same.
            self.changes: Counter[tuple[str, int]] = Counter()
            # Every status write that reached the portal, applied or not: (contact, subscription, state).
            self.status_writes: list[tuple[str, int, str]] = []

    def add_token(self, token: str, scopes: Iterable[str] | None = None) -> None:
        with self.lock:
            self.config.tokens[token] = sorted(ALL_SCOPES if scopes is None else scopes)

    def add_contacts(self, emails: Iterable[str], unsubscribed_at: str | None = None) -> None:
        """Add contacts; with ``unsubscribed_at`` (ISO time) they unsubscribed from all back then."""
        with self.lock:
            added = [e.lower() for e in emails]
            self.contacts.update(added)
            if unsubscribed_at is None:
                return
            for email in added:
                for d in self.definitions:
                    self.statuses[(email, d.id)] = StatusRecord("UNSUBSCRIBED", None, None, unsubscribed_at)
                    self.wide[(email, d.business_unit_id)] = unsubscribed_at

    def set_history(
        self,
        email: str,
        sub_id: int,
        state: str,
        at: str,
        legal_basis: str | None = None,
        explanation: str | None = None,
    ) -> None:
        """Give a contact a status set at ``at`` (ISO time), as if it happened then (a sandbox's past)."""
        with self.lock:
            email = email.lower()
            self.require_definition(sub_id)
            self.contacts.add(email)
            self.statuses[(email, sub_id)] = StatusRecord(state, legal_basis, explanation, at)

    def set_opted_out(self, email: str, at: str, business_unit_id: int = 0) -> None:
        """Have a contact opt out of all email of a business unit at ``at`` (ISO time)."""
        with self.lock:
            email = email.lower()
            self.contacts.add(email)
            self.wide[(email, business_unit_id)] = at

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def revoke(self, token: str) -> bool:
        with self.lock:
            found = self.access_tokens.pop(token, None) is not None
            found = self.refresh_tokens.pop(token, None) is not None or found
            return self.config.tokens.pop(token, None) is not None or found

    def log_request(
        self, method: str, path: str, status: int, started: float, correlation_id: str | None = None
    ) -> None:
        with self.lock:
            self.request_log.append(
                {
                    "method": method,
                    "path": path,
                    "status": status,
                    "time": started,
                    "correlation_id": correlation_id,
                }
            )

    # ---- auth, limits, faults -------------------------------------------------------------------

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

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path_contains in path and path.endswith(fault.path_endswith):
                    fault.seen += 1
                    if fault.seen % max(fault.every, 1):
                        continue
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def consume_rate_limit(self, app: str) -> dict[str, str]:
        """Count one request of ``app``; return HubSpot's rate-limit headers or raise 429."""
        cfg = self.config
        interval = cfg.rate_limit_interval_ms / 1000
        now = time.monotonic()
        today = datetime.now(timezone.utc).date().isoformat()
        with self.lock:
            usage = self.usage.setdefault(app, AppUsage())
            if usage.day != today:
                usage.day, usage.daily_count = today, 0
            while usage.window and usage.window[0] <= now - interval:
                usage.window.popleft()
            headers = {
                "X-HubSpot-RateLimit-Max": str(cfg.rate_limit_max),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.rate_limit_interval_ms),
                "X-HubSpot-RateLimit-Daily": str(cfg.daily_limit),
            }
            if usage.daily_count >= cfg.daily_limit:
                headers.update(
                    {
                        "X-HubSpot-RateLimit-Remaining": str(cfg.rate_limit_max - len(usage.window)),
                        "X-HubSpot-RateLimit-Daily-Remaining": "0",
                    }
                )
                raise self.rate_limited("DAILY", headers, None)
            if len(usage.window) >= cfg.rate_limit_max:
                wait = usage.window[0] + interval - now
                headers.update(
                    {
                        "X-HubSpot-RateLimit-Remaining": "0",
                        "X-HubSpot-RateLimit-Daily-Remaining": str(cfg.daily_limit - usage.daily_count),
                    }
                )
                raise self.rate_limited("TEN_SECONDLY_ROLLING", headers, max(1, math.ceil(wait)))
            usage.window.append(now)
            usage.daily_count += 1
            headers["X-HubSpot-RateLimit-Remaining"] = str(cfg.rate_limit_max - len(usage.window))
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(cfg.daily_limit - usage.daily_count)
            return headers

    @staticmethod
    def rate_limited(policy: str, headers: dict[str, str], retry_after: float | None) -> ApiProblem:
        if retry_after is not None:
            headers = {**headers, "Retry-After": f"{retry_after:g}"}
        limit = "daily" if policy == "DAILY" else policy.lower()
        return ApiProblem(
            429,
            "RATE_LIMITS",
            f"You have reached your {limit} limit.",
            headers=headers,
            extra={"errorType": "RATE_LIMIT", "policyName": policy},
        )

    # ---- OAuth ---------------------------------------------------------------------------------

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

    # ---- operations: synchronous, or asynchronous with PENDING -> COMPLETE | CANCELED ------------

    def run_write(
        self, emails: list[str], apply: Callable[[], list[dict[str, Any]]]
    ) -> tuple[str, list[dict[str, Any]], float]:
        """Apply a write now or queue it; return (operation status, results, completion time)."""
        with self.lock:
            self.settle()
            cfg = self.config
            cancel = cfg.cancel_next_writes > 0
            if cancel:
                cfg.cancel_next_writes -= 1
            self.contacts.update(emails)
            delay = cfg.processing_delay_ms / 1000
            if delay <= 0:
                status = "CANCELED" if cancel else "COMPLETE"
                results = [] if cancel else apply()
                for email in emails:
                    if not self.inflight.get(email):
                        self.last_operation[email] = status
                return status, results, time.time()
            self.pending.append(PendingWrite(time.monotonic() + delay, list(emails), apply, cancel))
            for email in emails:
                self.inflight[email] = self.inflight.get(email, 0) + 1
                self.last_operation[email] = "PENDING"
            return "PENDING", [], time.time() + delay

    def settle(self) -> None:
        """Apply (or cancel) every queued write whose time has come, in the order received."""
        now = time.monotonic()
        with self.lock:
            while self.pending and self.pending[0].due <= now:
                op = self.pending.pop(0)
                if not op.canceled:
                    op.apply()
                for email in op.emails:
                    self.inflight[email] -= 1
                    if not self.inflight[email]:
                        self.last_operation[email] = "CANCELED" if op.canceled else "COMPLETE"

    def read_status(self, emails: Iterable[str]) -> str:
        """Operation status a read reports: the state of the latest writes to these contacts."""
        with self.lock:
            self.settle()
            states = {self.last_operation.get(e, "COMPLETE") for e in emails}
        if "CANCELED" in states:
            return "CANCELED"
        return "PROCESSING" if "PENDING" in states else "COMPLETE"

    # ---- the portal ----------------------------------------------------------------------------

    def business_units(self) -> set[int]:
        return {d.business_unit_id for d in self.definitions}

    def check_business_unit(self, bu: int) -> int:
        if bu not in self.business_units():
            raise validation(f"Business unit {bu} does not exist in this portal.", "businessUnitId", bu)
        return bu

    def definition(self, sub_id: int) -> Definition | None:
        return next((d for d in self.definitions if d.id == sub_id), None)

    def require_definition(self, sub_id: int) -> Definition:
        found = self.definition(sub_id)
        if found is None:
            raise validation(
                f"Subscription {sub_id} does not exist in this portal.",
                "subscriptionId",
                sub_id,
                code="INVALID_SUBSCRIPTION_ID",
            )
        return found

    def list_definitions(self, bu: int | None, translations: bool) -> list[dict[str, Any]]:
        return [d.to_api(translations) for d in self.definitions if bu is None or d.business_unit_id == bu]

    def is_known(self, email: str) -> bool:
        return email in self.contacts

    def require_known(self, email: str) -> None:
        if not self.is_known(email):
            raise ApiProblem(
                404,
                "OBJECT_NOT_FOUND",
                "No contact or subscriber with that subscriberIdString.",
                context={"subscriberIdString": ["1 id"]},
            )

    def _public_status(self, email: str, d: Definition, reason: str | None = None) -> dict[str, Any]:
        rec = self.statuses.get((email, d.id))
        data: dict[str, Any] = {
            "channel": "EMAIL",
            "source": SOURCE,
            "status": rec.status if rec else "NOT_SPECIFIED",
            "subscriberIdString": email,
            "subscriptionId": d.id,
            "subscriptionName": d.name,
            "businessUnitId": d.business_unit_id,
            "timestamp": rec.timestamp if rec else now_iso(),
        }
        if rec and rec.legal_basis:
            data["legalBasis"] = rec.legal_basis
        if rec and rec.legal_basis_explanation:
            data["legalBasisExplanation"] = rec.legal_basis_explanation
        if reason:
            data["setStatusSuccessReason"] = reason
        return data

    def statuses_of(self, email: str, bu: int) -> list[dict[str, Any]]:
        return [self._public_status(email, d) for d in self.definitions if d.business_unit_id == bu]

    def wide_statuses_of(self, email: str, bu: int, all_units: bool) -> list[dict[str, Any]]:
        units = sorted(self.business_units()) if all_units else [bu]
        return [
            {
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED" if (email, unit) in self.wide else "NOT_SPECIFIED",
                "subscriberIdString": email,
                "timestamp": self.wide.get((email, unit)) or now_iso(),
                "wideStatusType": "PORTAL_WIDE" if unit == 0 else "BUSINESS_UNIT_WIDE",
                "businessUnitId": unit,
            }
            for unit in units
        ]

    def set_status(
        self, email: str, state: str, sub_id: int, legal_basis: str | None, explanation: str | None
    ) -> dict[str, Any]:
        d = self.require_definition(sub_id)
        with self.lock:
            self.status_writes.append((email, sub_id, state))
            key = (email, sub_id)
            prior = self.statuses[key].status if key in self.statuses else "NOT_SPECIFIED"
            wide_key = (email, d.business_unit_id)
            if state == "SUBSCRIBED" and wide_key in self.wide:
                del self.wide[wide_key]
                reason = "RESUBSCRIBE_OCCURRED"
            elif state == prior:
                reason = "NO_STATUS_CHANGE"
            else:
                reason = "REQUESTED_CHANGE_OCCURRED"
            if reason != "NO_STATUS_CHANGE" or key not in self.statuses:
                self.statuses[key] = StatusRecord(state, legal_basis, explanation, now_iso())
            if reason != "NO_STATUS_CHANGE":
                self.changes[key] += 1
            self.contacts.add(email)
            return self._public_status(email, d, reason)

    def unsubscribe_all(self, email: str, bu: int, verbose: bool) -> list[dict[str, Any]]:
        if not self.config.keep_state:
            reason = "UNSUBSCRIBE_FROM_ALL_OCCURRED"
            return [
                {**self._public_status(email, d, reason), "status": "UNSUBSCRIBED"}
                for d in self.definitions
                if d.business_unit_id == bu
            ]
        with self.lock:
            results = []
            for d in self.definitions:
                if d.business_unit_id != bu:
                    continue
                key = (email, d.id)
                rec = self.statuses.get(key)
                if rec is not None and rec.status == "UNSUBSCRIBED":
                    if verbose:
                        results.append(self._public_status(email, d, "NO_STATUS_CHANGE"))
                    continue
                self.statuses[key] = StatusRecord(
                    "UNSUBSCRIBED",
                    rec.legal_basis if rec else None,
                    rec.legal_basis_explanation if rec else None,
                    now_iso(),
                )
                self.changes[key] += 1
                results.append(self._public_status(email, d, "UNSUBSCRIBE_FROM_ALL_OCCURRED"))
            self.wide.setdefault((email, bu), now_iso())
            self.contacts.add(email)
            return results

    # 2026-09 v3-style operations: subscriptionId is a string, status SUBSCRIBED / NOT_SUBSCRIBED.

    def v3_status(self, email: str, d: Definition) -> dict[str, Any]:
        rec = self.statuses.get((email, d.id))
        wide = (email, d.business_unit_id) in self.wide
        data: dict[str, Any] = {
            "id": str(d.id),
            "name": d.name,
            "description": d.description,
            "status": "SUBSCRIBED" if rec and rec.status == "SUBSCRIBED" and not wide else "NOT_SUBSCRIBED",
            "sourceOfStatus": ("PORTAL_WIDE_STATUS" if d.business_unit_id == 0 else "BRAND_WIDE_STATUS")
            if wide
            else "SUBSCRIPTION_STATUS",
            "preferenceGroupName": d.purpose,
        }
        if d.business_unit_id:
            data["brandId"] = d.business_unit_id
        if rec and rec.legal_basis:
            data["legalBasis"] = rec.legal_basis
        if rec and rec.legal_basis_explanation:
            data["legalBasisExplanation"] = rec.legal_basis_explanation
        return data

    def v3_update(
        self, action: str, email: str, sub_id: int, legal_basis: str | None, explanation: str | None
    ) -> dict[str, Any]:
        d = self.require_definition(sub_id)
        with self.lock:
            wide_key = (email, d.business_unit_id)
            if action == "subscribe" and wide_key in self.wide:
                raise validation(
                    "The contact opted out of all email; use /resubscribe with a legal basis.", "emailAddress"
                )
            if action == "resubscribe":
                if legal_basis is None:
                    raise validation("A legal basis is required to resubscribe a contact.", "legalBasis")
                self.wide.pop(wide_key, None)
            state = "UNSUBSCRIBED" if action == "unsubscribe" else "SUBSCRIBED"
            self.statuses[(email, sub_id)] = StatusRecord(state, legal_basis, explanation, now_iso())
            self.contacts.add(email)
            return self.v3_status(email, d)

    def v3_statuses(self, email: str) -> dict[str, Any]:
        with self.lock:
            return {
                "recipient": email,
                "subscriptionStatuses": [self.v3_status(email, d) for d in self.definitions],
            }


def is_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 254 and bool(_EMAIL.match(value))
