"""What the operators take from Airflow's task context: the task instance's identity, and where its
ledger goes by default. The layers below (runs, ledger, client) never see the context itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..ledger.checkpoint import TaskIdentity


def safe_segment(value: object) -> str:
    """A file-name segment that keeps ``value`` distinct: different values never share one.

    Characters outside ``[A-Za-z0-9_-]`` are percent-encoded (``:`` -> ``%3A``, ``+`` -> ``%2B``),
    and a leading dot too, so that ``.`` and ``..`` stay names.
    """
    text = quote(str(value), safe="-_.~")
    return "%2E" + text[1:] if text.startswith(".") else text or "%00"


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"))


def task_key(context: Any) -> list[str]:
    ti = context["ti"]
    # "[" never appears in a safe_segment, so the map index cannot collide with a task id.
    task = safe_segment(ti.task_id) + (f"[{ti.map_index}]" if getattr(ti, "map_index", -1) >= 0 else "")
    return [safe_segment(ti.dag_id), safe_segment(ti.run_id), task]


def default_ledger_path(context: Any) -> str:
    dag, run, task = task_key(context)
    return str(airflow_home() / "hubspot_prefs" / "ledgers" / dag / run / f"{task}.csv")


def task_identity(context: Any) -> TaskIdentity:
    """The task instance and try of ``context``, with the deployment it runs in (its API server URL)."""
    from airflow.sdk import conf

    ti = context["ti"]
    deployment = conf.get("core", "execution_api_server_url", fallback="") or conf.get(
        "api", "base_url", fallback=""
    )
    map_index = getattr(ti, "map_index", None)
    return TaskIdentity(
        deployment=str(deployment or ""),
        dag_id=str(ti.dag_id),
        run_id=str(ti.run_id),
        task_id=str(ti.task_id),
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(getattr(ti, "try_number", 1) or 1),
    )
