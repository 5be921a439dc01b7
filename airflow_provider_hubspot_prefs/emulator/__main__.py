"""``python -m airflow_provider_hubspot_prefs.emulator --port 8765 --token T``"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from .app import create_app
from .backend import PortalBackend
from .config import DEMO_OAUTH_CLIENT_ID, DEMO_REFRESH_TOKEN, DEMO_TOKEN, EmulatorConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_hubspot_prefs.emulator",
        description="A local HubSpot Communication Preferences API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help=f"an accepted private-app token with every scope (repeatable); {DEMO_TOKEN!r} always works",
    )
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per interval per app")
    parser.add_argument("--rate-interval-ms", type=int, default=10_000)
    parser.add_argument("--daily-limit", type=int, default=1_000_000)
    parser.add_argument("--max-batch-size", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API response")
    parser.add_argument("--access-token-ttl", type=int, default=1800, help="OAuth expires_in, seconds")
    parser.add_argument(
        "--processing-delay-ms",
        type=float,
        default=0.0,
        help="asynchronous mode: writes answer PENDING and apply after this delay",
    )
    parser.add_argument(
        "--no-state",
        action="store_true",
        help="benchmark sink: unsubscribe-all stores nothing and answers as for new contacts",
    )
    args = parser.parse_args(argv)

    config = EmulatorConfig(
        rate_limit_max=args.rate_limit,
        rate_limit_interval_ms=args.rate_interval_ms,
        daily_limit=args.daily_limit,
        max_batch_size=args.max_batch_size,
        latency_ms=args.latency_ms,
        access_token_ttl=args.access_token_ttl,
        processing_delay_ms=args.processing_delay_ms,
        keep_state=not args.no_state,
    )
    backend = PortalBackend(config)
    for token in args.token:
        backend.add_token(token)
    print(
        f"HubSpot emulator on http://{args.host}:{args.port} (demo token {DEMO_TOKEN!r}, "
        f"OAuth client {DEMO_OAUTH_CLIENT_ID!r} with refresh token {DEMO_REFRESH_TOKEN!r})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(create_app(backend), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
