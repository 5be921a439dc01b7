"""Airflow Hook: turns a ``hubspot_prefs`` connection into configured HubSpot clients."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException

from ..client import (
    DEFAULT_BASE_URL,
    AsyncHubSpotPreferencesClient,
    HubSpotError,
    HubSpotPreferencesClient,
    OAuthRefreshAuth,
    PrivateAppTokenAuth,
    RetryPolicy,
    token_url,
)
from ..client.core import check_base_url, tls_context
from ..client.machine_budget import MachineBudget
from ..client.ratelimit import DEFAULT_INTERVAL, DEFAULT_MAX_REQUESTS, RateLimiter, SharedBudget
from ..client.shared_budget import RedisBudget
from ..client.validation import DEFAULT_MAX_BATCH_SIZE
from ..client.versions import ApiVersion, parse_version

if TYPE_CHECKING:
    from ..runs.verification import Expectation

EXTRA_PREFIX = "extra__hubspot_prefs__"
OAUTH_FIELDS = ("client_id", "client_secret", "refresh_token")


class HubSpotConnectionError(AirflowFailException, ValueError):
    """The connection cannot be used as it is (missing credentials, malformed extras).

    A task fails at once on it: retrying cannot mend a connection's configuration.
    """


@dataclass(frozen=True)
class ConnectionSettings:
    """What a ``hubspot_prefs`` connection says, parsed and checked; secrets stay out of ``repr``."""

    conn_id: str
    base_url: str
    api_version: ApiVersion
    token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    business_unit_id: int | None = None
    timeout: float = 30.0
    max_retries: int = 5
    unreachable_timeout: float = 30.0
    rate_limit: int = DEFAULT_MAX_REQUESTS
    rate_limit_interval: float = DEFAULT_INTERVAL
    ca_bundle: str | None = None
    rate_limit_redis_conn_id: str | None = None
    rate_limit_key: str | None = None
    rate_limit_machine_budget: bool = True

    def __repr__(self) -> str:
        auth = "oauth" if self.client_id else "private-app token"
        return (
            f"ConnectionSettings(conn_id={self.conn_id!r}, base_url={self.base_url!r}, "
            f"api_version={self.api_version.value!r}, auth={auth})"
        )

    def auth(self, redact: bool = True) -> httpx.Auth:
        if self.client_id and self.client_secret and self.refresh_token:
            return OAuthRefreshAuth(
                client_id=self.client_id,
                client_secret=self.client_secret,
                refresh_token=self.refresh_token,
                token_url=token_url(self.base_url),
                redact=redact,
            )
        assert self.token is not None
        return PrivateAppTokenAuth(self.token)

    @property
    def budget_key(self) -> str:
        """Names the shared rate budget: one per HubSpot app (and account) at one address (an
        emulator is not HubSpot), never the secret itself."""
        if self.rate_limit_key:
            return str(self.rate_limit_key)
        app = f"oauth:{self.client_id}" if self.client_id else f"token:{self.token}"
        return hashlib.sha256(f"{self.base_url}\n{app}".encode()).hexdigest()[:24]

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.client_secret, self.refresh_token) if s]


def _extra(extras: dict[str, Any], name: str) -> Any:
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(EXTRA_PREFIX + name)
    return None if value == "" else value


def parse_connection(
    conn_id: str, password: str | None, host: str | None, extras: dict[str, Any]
) -> ConnectionSettings:
    """Check a connection's fields and extras; raise ``HubSpotConnectionError`` saying what is wrong."""
    oauth = {name: _extra(extras, name) for name in OAUTH_FIELDS}
    given = [name for name, value in oauth.items() if value]
    if given and len(given) != len(OAUTH_FIELDS):
        missing = ", ".join(n for n in OAUTH_FIELDS if n not in given)
        raise HubSpotConnectionError(f"Connection {conn_id!r} sets OAuth extras but lacks {missing}.")
    if not given and not password:
        raise HubSpotConnectionError(
            f"Connection {conn_id!r} has no credentials: put a private app access token in the password "
            "field, or set the extras client_id, client_secret and refresh_token for OAuth."
        )

    for name in ("verify", "verify_ssl", "insecure"):
        if _extra(extras, name) is not None:
            raise HubSpotConnectionError(
                f"Connection {conn_id!r} sets the extra {name!r}: TLS certificate verification cannot be "
                "turned off, as requests carry the token. For a private certificate authority, give its "
                "PEM file in the extra 'ca_bundle'."
            )
    base_url = _extra(extras, "base_url") or (host if host and "://" in host else None) or DEFAULT_BASE_URL
    try:
        api_version = parse_version(_extra(extras, "api_version"))
        business_unit_id = _extra(extras, "business_unit_id")
        timeout = _extra(extras, "timeout")
        max_retries = _extra(extras, "max_retries")
        unreachable_timeout = _extra(extras, "unreachable_timeout")
        rate_limit = _extra(extras, "rate_limit")
        rate_limit_interval = _extra(extras, "rate_limit_interval")
        ca_bundle = _extra(extras, "ca_bundle")
        redis_conn_id = _extra(extras, "rate_limit_redis_conn_id")
        rate_limit_key = _extra(extras, "rate_limit_key")
        machine_budget = _extra(extras, "rate_limit_machine_budget")
        if machine_budget is not None and not isinstance(machine_budget, bool):
            if str(machine_budget).lower() not in ("true", "false"):
                raise ValueError(f"rate_limit_machine_budget must be true or false, not {machine_budget!r}")
            machine_budget = str(machine_budget).lower() == "true"
        if ca_bundle is not None:
            tls_context(str(ca_bundle))  # a missing or broken file is a connection error, now
        return ConnectionSettings(
            conn_id=conn_id,
            base_url=check_base_url(str(base_url)),
            api_version=api_version,
            token=None if given else password,
            client_id=oauth["client_id"],
            client_secret=oauth["client_secret"],
            refresh_token=oauth["refresh_token"],
            business_unit_id=None if business_unit_id is None else int(business_unit_id),
            timeout=30.0 if timeout is None else float(timeout),
            max_retries=5 if max_retries is None else int(max_retries),
            unreachable_timeout=30.0 if unreachable_timeout is None else float(unreachable_timeout),
            rate_limit=DEFAULT_MAX_REQUESTS if rate_limit is None else int(rate_limit),
            rate_limit_interval=DEFAULT_INTERVAL
            if rate_limit_interval is None
            else float(rate_limit_interval),
            ca_bundle=ca_bundle,
            rate_limit_redis_conn_id=str(redis_conn_id) if redis_conn_id else None,
            rate_limit_key=str(rate_limit_key) if rate_limit_key else None,
            rate_limit_machine_budget=machine_budget is not False,
        )
    except (HubSpotError, ValueError, TypeError) as exc:
        raise HubSpotConnectionError(f"Connection {conn_id!r} has a malformed extra: {exc}") from None


class HubSpotPreferencesHook(BaseHook):
    """Interact with HubSpot's Communication Preferences API.

    :param hubspot_conn_id: Airflow connection of type ``hubspot_prefs``. Its password is a
        private-app access token; or its extras hold ``client_id``, ``client_secret`` and
        ``refresh_token`` for OAuth. Extras ``api_version``, ``business_unit_id``, ``timeout``,
        ``max_retries``, ``base_url``, ``rate_limit`` (requests per ``rate_limit_interval``
        seconds, default 190 per 10; 0 turns pacing off) tune the client; the processes of one
        machine share that budget in a file of the work folder (``rate_limit_machine_budget``
        false: they do not), every machine shares it through ``rate_limit_redis_conn_id`` (an
        Airflow Redis connection); ``ca_bundle`` names a PEM file of a private certificate
        authority (TLS verification itself is always on).
    :param api_version: ``v4``, ``2026-03`` or ``2026-09``; overrides the connection's extra.
    :param timeout: seconds per request; overrides the connection's extra.
    :param max_retries: retries of 429/5xx/connection errors; overrides the connection's extra.
    :param max_batch_size: largest batch the client sends in one request (default 100).
    :param redact_emails: redact email addresses in errors and log lines (default True).
    """

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_prefs_default"
    conn_type = "hubspot_prefs"
    hook_name = "HubSpot Communication Preferences"

    def __init__(
        self,
        hubspot_conn_id: str = default_conn_name,
        api_version: str | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        redact_emails: bool = True,
    ) -> None:
        super().__init__()
        self.hubspot_conn_id = hubspot_conn_id
        self._api_version = parse_version(api_version) if api_version else None
        self._timeout = timeout
        self._max_retries = max_retries
        self._limiter: RateLimiter | None = None
        self.max_batch_size = max_batch_size
        self.redact_emails = redact_emails

    def _settings_from(self, conn: Any) -> ConnectionSettings:
        settings = parse_connection(
            conn.conn_id or self.hubspot_conn_id, conn.password, conn.host, conn.extra_dejson or {}
        )
        from airflow.sdk.log import mask_secret

        for secret in settings.secrets:
            mask_secret(secret)
        return settings

    @cached_property
    def settings(self) -> ConnectionSettings:
        return self._settings_from(self.get_connection(self.hubspot_conn_id))

    @property
    def api_version(self) -> ApiVersion:
        return self._api_version or self.settings.api_version

    @property
    def business_unit_id(self) -> int | None:
        """The connection's default business unit (None: the portal)."""
        return self.settings.business_unit_id

    def _client_options(self, settings: ConnectionSettings) -> dict[str, Any]:
        return {
            "base_url": settings.base_url,
            "api_version": self._api_version or settings.api_version,
            "timeout": self._timeout if self._timeout is not None else settings.timeout,
            "max_retries": self._max_retries if self._max_retries is not None else settings.max_retries,
            "retry_policy": RetryPolicy(unreachable_timeout=settings.unreachable_timeout),
            "rate_limit": settings.rate_limit,  # 0: no pacing at all
            "rate_limiter": self._rate_limiter(settings),
            "max_batch_size": self.max_batch_size,
            "redact_emails": self.redact_emails,
            "ca_bundle": settings.ca_bundle,
        }

    def _rate_limiter(self, settings: ConnectionSettings) -> RateLimiter | None:
        """One limiter per hook, shared by its sync client and every async client it makes."""
        if not settings.rate_limit:
            return None
        if self._limiter is None:
            self._limiter = RateLimiter(
                settings.rate_limit, settings.rate_limit_interval, shared=self._shared_budget(settings)
            )
        return self._limiter

    def _shared_budget(self, settings: ConnectionSettings) -> SharedBudget | None:
        """The app's budget shared by every worker: in Redis when the connection names a Redis
        connection (every machine), else in a file of the work folder (every process of this
        machine), unless the connection turns that off."""
        if not settings.rate_limit_redis_conn_id:
            if not settings.rate_limit_machine_budget:
                return None
            from ..ledger.checkpoint import default_work_dir
            from ..ledger.private_files import private_folder

            name = hashlib.sha256(settings.budget_key.encode()).hexdigest()[:24]
            path = default_work_dir() / "rate_budgets" / f"{name}.sqlite"
            try:
                private_folder(default_work_dir())  # refused if another local user made it first
                return MachineBudget(path, settings.rate_limit, settings.rate_limit_interval)
            except (OSError, sqlite3.Error) as exc:  # e.g. a read-only disk: pace from headers instead
                self.log.warning("Rate budget file %s unusable (%s); pacing this client alone", path, exc)
                return None
        try:
            from airflow.providers.redis.hooks.redis import RedisHook
        except ImportError:
            raise HubSpotConnectionError(
                f"Connection {settings.conn_id!r} sets rate_limit_redis_conn_id, but Airflow's Redis "
                "provider is not installed: pip install 'airflow-provider-hubspot-prefs[redis]'"
            ) from None
        redis = RedisHook(redis_conn_id=settings.rate_limit_redis_conn_id).get_conn()
        return RedisBudget(redis, settings.budget_key, settings.rate_limit, settings.rate_limit_interval)

    @cached_property
    def _auth(self) -> httpx.Auth:
        """One token state for every client of this hook: an access token one client fetched, and a
        refresh token HubSpot rotated for it, serve the others (the connection's refresh token may
        work only once)."""
        return self.settings.auth(self.redact_emails)

    @cached_property
    def _client(self) -> HubSpotPreferencesClient:
        return HubSpotPreferencesClient(self._auth, **self._client_options(self.settings))

    def get_conn(self) -> HubSpotPreferencesClient:
        """The pooled synchronous client, created once per hook."""
        return self._client

    async def get_async_conn(self) -> AsyncHubSpotPreferencesClient:
        """A new async client for the running event loop (close it with ``await client.aclose()``).

        The connection is fetched with the async API, so triggers do not block the triggerer's loop.
        """
        if "settings" not in self.__dict__:
            self.__dict__["settings"] = self._settings_from(await self.aget_connection(self.hubspot_conn_id))
        return AsyncHubSpotPreferencesClient(self._auth, **self._client_options(self.settings))

    def confirm_ledger(
        self, ledger: str, expectation: Expectation, *, business_unit_id: int | None = None
    ) -> dict[str, int]:
        """Bring a batch ledger's ``submitted`` rows to what HubSpot now reports (see
        ``runs.verification.confirm_ledger``); returns how many rows took each outcome."""
        from ..runs.verification import confirm_ledger

        async def confirm() -> dict[str, int]:
            client = await self.get_async_conn()
            try:
                return await confirm_ledger(client, ledger, expectation, business_unit_id=business_unit_id)
            finally:
                await client.aclose()

        return asyncio.run(confirm())

    def close(self) -> None:
        if "_client" in self.__dict__:
            self._client.close()
            del self.__dict__["_client"]

    def test_connection(self) -> tuple[bool, str]:
        """Read the subscription definitions: cheap, and it proves the credentials and the base URL."""
        try:
            definitions = self.get_conn().get_definitions()
        except (HubSpotError, HubSpotConnectionError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            self.close()
        return True, (
            f"Connected to HubSpot Communication Preferences {self.api_version.value} at "
            f"{self.settings.base_url}: {len(definitions.results)} subscription definitions."
        )
