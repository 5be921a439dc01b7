"""The provider's views in the Airflow UI: a task instance's ledger, a run's ledgers, the lookup.

Registered through the ``airflow.plugins`` entry point, so that installing the provider is enough.
Importing this module stays cheap (every Airflow process loads plugins): the FastAPI app is built
on the api-server's first request to it (``app.LazyApp``).
"""

from __future__ import annotations

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from .app import LazyApp

URL_PREFIX = "/hubspot-prefs"


def _base_path() -> str:
    """The path part of ``[api] base_url`` (Airflow behind a path prefix), without its trailing slash."""
    from urllib.parse import urlsplit

    base_url = conf.get("api", "base_url", fallback="") or ""
    path = urlsplit(base_url).path if "://" in base_url else base_url
    return path.rstrip("/")


def views_under(base: str) -> list[dict[str, str]]:
    """The views the UI shows as iframes; ``{DAG_ID}`` etc. are filled in (URL-encoded) by the UI."""
    root = f"{base}{URL_PREFIX}"
    run = "dag_id={DAG_ID}&run_id={RUN_ID}"
    return [
        {
            "name": "HubSpot ledger",
            "href": f"{root}/ti?{run}&task_id={{TASK_ID}}&map_index={{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": "hubspot_ledger",
        },
        {
            "name": "HubSpot ledgers",
            "href": f"{root}/run?{run}",
            "destination": "dag_run",
            "url_route": "hubspot_ledgers",
        },
        {
            "name": "HubSpot lookup",
            "href": f"{root}/lookup",
            "destination": "nav",
            "category": "browse",
            "url_route": "hubspot_lookup",
        },
    ]


class HubSpotPreferencesPlugin(AirflowPlugin):
    """Airflow plugin of airflow-provider-hubspot-prefs: the compliance views (see the package docs)."""

    name = "hubspot_prefs"
    # Airflow reads both lists from the class; they are built once, at import.
    fastapi_apps = [  # noqa: RUF012
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "HubSpot Preferences ledgers"}
    ]
    external_views = views_under(_base_path())
