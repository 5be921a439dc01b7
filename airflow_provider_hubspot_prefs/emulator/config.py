"""Settings of the emulator; every one can be changed at run time through ``/_emulator/config``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# A token with every scope that works with no option, so that the README's demo needs no setup.
DEMO_TOKEN = "pat-emulator-demo-token"
DEMO_OAUTH_CLIENT_ID = "emulator-client-id"
DEMO_OAUTH_CLIENT_SECRET = "emulator-client-secret"
DEMO_REFRESH_TOKEN = "emulator-refresh-token"

ALL_SCOPES = frozenset(
    {
        "communication_preferences.read",
        "communication_preferences.write",
        "communication_preferences.read_write",
        "communication_preferences.statuses.batch.read",
        "communication_preferences.statuses.batch.write",
    }
)

REFRESH_TOKEN_ROTATIONS = ("none", "new", "strict")


@dataclass
class EmulatorConfig:
    """What the emulated portal allows; defaults follow HubSpot's Professional private-app limits.

    :param rate_limit_max: requests per rolling interval per app (HubSpot: 100, 190 or 250).
    :param rate_limit_interval_ms: length of the rolling interval (HubSpot: 10 s).
    :param daily_limit: requests per day per app before the DAILY policy answers 429.
    :param max_batch_size: largest ``inputs`` array a batch endpoint accepts; 400 above it.
    :param latency_ms: added to every API response, to reproduce network round trips.
    :param access_token_ttl: ``expires_in`` of OAuth access tokens, in seconds.
    :param refresh_token_rotation: what a refresh does to the refresh token: ``none`` (answers
        the same one, as HubSpot documents: store the one from the install and reuse it), ``new``
        (answers a new one; the old one keeps working) or ``strict`` (answers a new one; the one
        just used stops working).
    :param processing_delay_ms: asynchronous mode when above 0: writes answer PENDING and take
        effect this long after; reads of the contacts concerned answer PROCESSING meanwhile.
    :param cancel_next_writes: that many next writes end CANCELED and never take effect.
    :param keep_state: False makes unsubscribe-all answer as for a new contact without storing
        anything: a sink for benchmarks that push millions of addresses through.
    """

    rate_limit_max: int = 190
    rate_limit_interval_ms: int = 10_000
    daily_limit: int = 1_000_000
    max_batch_size: int = 100
    latency_ms: float = 0.0
    access_token_ttl: int = 1800
    refresh_token_rotation: str = "none"
    processing_delay_ms: float = 0.0
    cancel_next_writes: int = 0
    keep_state: bool = True
    tokens: dict[str, list[str]] = field(default_factory=lambda: {DEMO_TOKEN: sorted(ALL_SCOPES)})

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(
                f"unknown settings: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        rotation = changes.get("refresh_token_rotation", self.refresh_token_rotation)
        if rotation not in REFRESH_TOKEN_ROTATIONS:
            choices = ", ".join(REFRESH_TOKEN_ROTATIONS)
            raise ValueError(f"refresh_token_rotation must be one of {choices}, not {rotation!r}")
        for key, value in changes.items():
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = {f"{t[:8]}...": scopes for t, scopes in self.tokens.items()}
        return data
