"""What the operator snippets need to run with ``dag.test()`` against the emulator (not shown in the
docs): ``hubspot_prefs_default`` pointing at it, and the snippet in the DAGs folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EMULATOR_TOKEN = "pat-emulator-demo-token"


@contextmanager
def runnable(snippet: str, base_url: str) -> Iterator[None]:
    """``dag.test()`` runs a DAG as parsed from the DAGs folder: link ``snippet`` (a file) there and
    point ``hubspot_prefs_default`` at the emulator; both undone after."""
    from airflow.sdk import conf

    name = "AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT"
    before = os.environ.get(name)
    connection = {"conn_type": "hubspot_prefs", "password": EMULATOR_TOKEN, "extra": {"base_url": base_url}}
    os.environ[name] = json.dumps(connection)
    link = Path(conf.get("core", "dags_folder")) / f"docs_snippet_{Path(snippet).name}"
    link.symlink_to(Path(snippet).resolve())
    try:
        yield
    finally:
        link.unlink()
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
