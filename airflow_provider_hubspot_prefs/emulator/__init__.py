"""A local HubSpot Communication Preferences API for tests, demos and dry runs of DAGs.

It imports nothing from ``client/``: it is written from HubSpot's documentation and specs, so
that it can catch the client's mistakes instead of sharing them.
"""

from .app import create_app
from .backend import PortalBackend
from .config import (
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    DEMO_TOKEN,
    EmulatorConfig,
)
from .server import EmulatorServer

__all__ = [
    "DEMO_OAUTH_CLIENT_ID",
    "DEMO_OAUTH_CLIENT_SECRET",
    "DEMO_REFRESH_TOKEN",
    "DEMO_TOKEN",
    "EmulatorConfig",
    "EmulatorServer",
    "PortalBackend",
    "create_app",
]
