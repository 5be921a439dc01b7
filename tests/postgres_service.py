"""A throwaway PostgreSQL server on a free port (Debian's, installed by scripts/install-services).

PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's ``postgres`` user and
its commands run through ``runuser``. The data folder is a fresh private temp dir, removed on exit.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_hubspot_prefs.emulator.server import free_port


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return os.path.dirname(found[-1]) if found else None


@contextmanager
def postgres_server(database: str = "airflow") -> Iterator[str]:
    """Start PostgreSQL (loopback only, no fsync); yield a SQLAlchemy URL of ``database``; stop it."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        message = "PostgreSQL is missing: scripts/install-services installs it"
        if os.environ.get("CI"):
            raise RuntimeError(message)
        import pytest

        pytest.skip(message)
    as_root = os.getuid() == 0
    folder = tempfile.mkdtemp(prefix="hubspot-prefs-pg-")
    if as_root:
        shutil.chown(folder, user="postgres")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*(["runuser", "-u", "postgres", "--"] if as_root else []), *args]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=60)

    port = free_port()
    data = os.path.join(folder, "data")
    run(f"{bin_dir}/initdb", "-D", data, "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200"
    try:
        run(f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-l", f"{folder}/server.log", "-w", "start")
        run(f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", database)
        yield f"postgresql+psycopg2://airflow@127.0.0.1:{port}/{database}"
    finally:
        if os.path.exists(f"{data}/postmaster.pid"):
            run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "30", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)
