"""One try of a batch task in a process of its own: ``python -m tests.batch_try '<json>'``.

Stands in for a worker: the test SIGKILLs it mid-batch, then runs the next try elsewhere (another
work dir, as on another machine). The connection and AIRFLOW_HOME come from the environment.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any


def context(run_id: str, try_number: int, task_id: str = "unsubscribe") -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="ledger_state", run_id=run_id, task_id=task_id, map_index=-1, try_number=try_number
    )
    return {"ti": ti, "run_id": run_id}


def main(spec: dict[str, Any]) -> None:
    from airflow_provider_hubspot_prefs.operators import HubSpotBatchUnsubscribeAllOperator

    operator = HubSpotBatchUnsubscribeAllOperator(task_id="unsubscribe", **spec["operator"])
    print(json.dumps(operator.execute(context(spec["run_id"], spec["try_number"]))))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
