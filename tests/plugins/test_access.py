"""The plugin's access rules, through Airflow's real api-server app and auth manager."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from airflow_provider_hubspot_prefs.plugins import HubSpotPreferencesPlugin

from .conftest import ApiServer, write_ledger

TI = {
    "dag_id": "nightly",
    "run_id": "scheduled__2026-03-02T00:00:00+00:00",
    "task_id": "unsubscribe",
    "map_index": "-1",
}
SECRET_TI = {**TI, "dag_id": "secret_dag"}
RUN = {"dag_id": TI["dag_id"], "run_id": TI["run_id"]}
LOOKUP = {"address": "jane@example.com"}
Endpoint = tuple[str, str, dict[str, str] | None, dict[str, str] | None]


def plugin_endpoints(ti: dict[str, str], run: dict[str, str], lookup: dict[str, str]) -> list[Endpoint]:
    """Every route of the plugin, for task instance ``ti``, run ``run`` and lookup body ``lookup``:
    (method, path, query, JSON body). The real-deployment test asks them too."""
    return [
        ("GET", "/hubspot-prefs/ti", ti, None),
        ("GET", "/hubspot-prefs/run", run, None),
        ("GET", "/hubspot-prefs/lookup", None, None),
        ("POST", "/hubspot-prefs/lookup/no-script", None, None),
        ("GET", "/hubspot-prefs/assets/views.js", None, None),
        ("GET", "/hubspot-prefs/api/ti", ti, None),
        ("GET", "/hubspot-prefs/api/ti/failures", ti, None),
        ("GET", "/hubspot-prefs/api/ti/ledger", ti, None),
        ("GET", "/hubspot-prefs/api/ti/report", ti, None),
        ("GET", "/hubspot-prefs/api/run", run, None),
        ("POST", "/hubspot-prefs/api/lookup", None, lookup),
    ]


ENDPOINTS = plugin_endpoints(TI, RUN, LOOKUP)


def _call(
    client: httpx.Client, method: str, path: str, query: dict | None, body: dict | None
) -> httpx.Response:
    return client.request(method, path, params=query, json=body)


def test_the_plugin_is_registered_through_its_entry_point_and_mounted_by_the_api_server(
    api_server: ApiServer,
):
    from airflow import plugins_manager

    names = [plugin.name for plugin in plugins_manager._get_plugins()[0]]
    assert HubSpotPreferencesPlugin.name in names
    destinations = {view["destination"] for view in HubSpotPreferencesPlugin.external_views}
    assert destinations == {"task_instance", "dag_run", "nav"}
    # The mount answers (with a refusal: nobody is logged in), Airflow's catch-all UI route does not.
    answer = httpx.get(f"{api_server.url}/hubspot-prefs/lookup")
    assert answer.status_code == 401 and answer.json() == {"detail": "Not authenticated"}


def test_the_endpoint_list_of_these_tests_is_every_route_of_the_plugin():
    from airflow_provider_hubspot_prefs.plugins.app import create_app

    routes = {
        (method, f"/hubspot-prefs{route.path}") for route in create_app().routes for method in route.methods
    }
    tested = {(method, path.replace("views.js", "{name}")) for method, path, _, _ in ENDPOINTS}
    assert routes == tested


def test_without_login_every_endpoint_answers_401_and_says_not_to_cache(api_server: ApiServer):
    with api_server.browser(None) as client:
        for method, path, query, body in ENDPOINTS:
            answer = _call(client, method, path, query, body)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["cache-control"] == "no-store" and answer.headers["pragma"] == "no-cache"


def test_after_logout_the_revoked_token_is_refused_by_every_endpoint(api_server: ApiServer, index_root: Path):
    token = api_server.token("auditor")
    # Log out as the UI does, with the cookie (Airflow 3.2.0 revokes only the cookie's token).
    with httpx.Client(base_url=api_server.url, cookies={"_token": token}) as client:
        assert client.get("/hubspot-prefs/lookup").status_code == 200
        assert client.get("/api/v2/auth/logout", follow_redirects=False).status_code == 307
    for credentials in ({"cookies": {"_token": token}}, {"headers": {"Authorization": f"Bearer {token}"}}):
        with httpx.Client(base_url=api_server.url, **credentials) as client:
            for method, path, query, body in ENDPOINTS:
                answer = _call(client, method, path, query, body)
                assert answer.status_code == 403, (method, path, credentials)
                assert answer.json()["detail"] == "Invalid JWT token"


def test_a_user_denied_a_dag_gets_403_from_its_views_and_the_others_do_not(
    api_server: ApiServer, tmp_path: Path, index_ledger
):
    ledger = write_ledger(
        tmp_path / "secret.csv", [{"line": 1, "input": "a@example.com", "outcome": "failed"}]
    )
    index_ledger(ledger, **{k: v for k, v in SECRET_TI.items() if k != "map_index"})
    for user, expected in (("viewer", 403), ("analyst", 403), ("auditor", 200), ("admin", 200)):
        with api_server.browser(user) as client:
            assert client.get("/hubspot-prefs/api/ti", params=SECRET_TI).status_code == expected, user
            assert client.get("/hubspot-prefs/api/ti/failures", params=SECRET_TI).status_code == expected, (
                user
            )
            assert client.get(
                "/hubspot-prefs/api/run", params={**RUN, "dag_id": "secret_dag"}
            ).status_code == (expected), user


@pytest.mark.parametrize("page", ["ti", "run", "lookup"])
def test_the_pages_load_nothing_from_elsewhere_and_allow_only_this_origin(api_server: ApiServer, page: str):
    with api_server.browser("viewer") as client:
        answer = client.get(f"/hubspot-prefs/{page}", params=TI if page != "lookup" else None)
    assert answer.status_code == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert "http://" not in answer.text and "https://" not in answer.text
