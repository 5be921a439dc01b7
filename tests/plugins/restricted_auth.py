"""An auth manager for the plugin's tests: Airflow's SimpleAuthManager with real per-user limits.

SimpleAuthManager grants every reader every DAG and every custom view. This subclass keeps its
users, passwords and tokens, and refuses:
- ``viewer`` and ``analyst`` the DAG ``secret_dag``;
- ``viewer`` the custom view ``HubSpot Preferences Addresses`` (``analyst`` may see addresses),
so that the per-DAG denial and the redaction are judged by the auth manager the api-server calls.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

SECRET_DAG = "secret_dag"
ADDRESSES = "HubSpot Preferences Addresses"
NO_SECRET_DAG = {"viewer", "analyst"}
NO_ADDRESSES = {"viewer"}


class RestrictedAuthManager(SimpleAuthManager):
    """SimpleAuthManager with two limits: ``secret_dag`` and the addresses, for some users."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        if user.get_name() in NO_SECRET_DAG and details is not None and details.id == SECRET_DAG:
            return False
        return bool(
            super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        )

    def is_authorized_custom_view(self, *, method: Any, resource_name: str, user: Any) -> bool:
        if user.get_name() in NO_ADDRESSES and resource_name == ADDRESSES:
            return False
        return bool(super().is_authorized_custom_view(method=method, resource_name=resource_name, user=user))
