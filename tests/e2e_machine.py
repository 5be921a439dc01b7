"""``[core] hostname_callable`` of the e2e Celery workers: each stands for a machine of its own."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("E2E_MACHINE") or socket.getfqdn()
