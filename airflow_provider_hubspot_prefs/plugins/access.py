"""Who may see what: every answer of the plugin is decided by Airflow's configured auth manager.

- Logged in: ``get_user`` of Airflow's API (the ``_token`` cookie the UI's iframe sends, or a
  Bearer token), so that a revoked token (after logout) is refused here as everywhere.
- A task instance's or a run's ledgers: read access to the DAG's task instances
  (``requires_access_dag``), as Airflow's own task-instance pages ask.
- Addresses (unredacted rows, the ledger download, the lookup): the custom view
  ``HubSpot Preferences Addresses``, which an auth manager may grant to some readers of a DAG and
  not to others; a user without it sees runs with addresses redacted.

The auth manager is the process-wide one (``get_auth_manager``): the plugin's sub-app has no
``app.state.auth_manager`` of its own, so dependencies reading it from the request do not work here.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.models.dag import DagModel
from airflow.utils.session import create_session
from fastapi import Depends, HTTPException, status
from sqlalchemy import select

ADDRESSES_RESOURCE = "HubSpot Preferences Addresses"

# The authenticated user (401 without a token, 403 for an invalid or revoked one).
User = GetUserDep
# Read access to the task instances of the DAG named by the request's ``dag_id`` parameter (403 else).
DAG_READ = Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))


def may_see_addresses(user: Any) -> bool:
    """Whether the auth manager lets ``user`` see addresses (the custom view, method GET)."""
    return bool(
        get_auth_manager().is_authorized_custom_view(
            method="GET", resource_name=ADDRESSES_RESOURCE, user=user
        )
    )


def require_addresses(user: Any) -> None:
    """Refuse (403) a user who may not see addresses."""
    if not may_see_addresses(user):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Seeing addresses needs the permission {ADDRESSES_RESOURCE!r}, which this user lacks.",
        )


def readable_dag_ids(user: Any, dag_ids: set[str]) -> set[str]:
    """Those of ``dag_ids`` whose task instances ``user`` may read.

    DAGs still in the metadata database are judged with their team (``get_authorized_dag_ids``);
    the ledgers of a DAG since deleted are judged by its id alone, so that an auditor with access
    to every DAG still finds them.
    """
    manager = get_auth_manager()
    known = manager.get_authorized_dag_ids(user=user, method="GET")
    gone = dag_ids - known - _existing_dag_ids(dag_ids)
    allowed = (dag_ids & known) | (
        manager.filter_authorized_dag_ids(dag_ids=gone, user=user, method="GET") if gone else set()
    )
    # The same access the task-instance views ask (DAG_READ): reading a DAG does not always mean
    # reading its task instances, whose ledgers these are.
    return {
        dag_id
        for dag_id in allowed
        if manager.is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.TASK_INSTANCE,
            details=DagDetails(id=dag_id),
            user=user,
        )
    }


def _existing_dag_ids(dag_ids: set[str]) -> set[str]:
    with create_session() as session:
        return set(session.scalars(select(DagModel.dag_id).where(DagModel.dag_id.in_(dag_ids))))
