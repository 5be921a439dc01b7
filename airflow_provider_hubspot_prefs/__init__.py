"""Apache Airflow provider for HubSpot's Communication Preferences API.

This module stays import-light: Airflow calls ``get_provider_info`` while discovering providers.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.3.0"

CONN_TYPE = "hubspot_prefs"
HOOK_CLASS = "airflow_provider_hubspot_prefs.hooks.hubspot_prefs.HubSpotPreferencesHook"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (UI connection form included)."""
    integration = "HubSpot Communication Preferences"
    return {
        "package-name": "airflow-provider-hubspot-prefs",
        "name": "HubSpot Communication Preferences",
        "description": "Unsubscribe contacts, set subscription statuses with their GDPR legal basis and "
        "wait for HubSpot to complete, through the Communication Preferences API "
        "(v4, 2026-03, 2026-09).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://developers.hubspot.com/docs/api-reference/latest/communication-preferences",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_hubspot_prefs.hooks.hubspot_prefs"],
            }
        ],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": [
                    "airflow_provider_hubspot_prefs.operators.export",
                    "airflow_provider_hubspot_prefs.operators.sync",
                    "airflow_provider_hubspot_prefs.operators.status",
                    "airflow_provider_hubspot_prefs.operators.unsubscribe",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_hubspot_prefs.sensors.operation_status"],
            }
        ],
        "triggers": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_hubspot_prefs.triggers.operation_status"],
            }
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": "HubSpot Communication Preferences",
                "conn-fields": {
                    "api_version": {
                        "label": "API version",
                        "description": "Version of the Communication Preferences API the tasks call.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["v4", "2026-03", "2026-09"],
                            "default": "v4",
                        },
                    },
                    "base_url": {
                        "label": "Base URL",
                        "description": "https://api.hubapi.com or a proxy (http only on loopback).",
                        # Airflow's form shows "examples" as the field's suggestions and placeholder.
                        "schema": {
                            "type": ["string", "null"],
                            "format": "url",
                            "examples": ["https://api.hubapi.com"],
                        },
                    },
                    "business_unit_id": {
                        "label": "Business unit ID",
                        "description": "Default business unit (brand) of the calls; empty for the portal.",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "client_id": {
                        "label": "OAuth client ID",
                        "description": "For a public app: client ID, client secret and refresh token. "
                        "Leave empty when the password holds a private-app token.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_secret": {
                        "label": "OAuth client secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "refresh_token": {
                        "label": "OAuth refresh token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "schema": {"type": ["number", "null"], "default": 30, "minimum": 1},
                    },
                    "rate_limit": {
                        "label": "Rate limit (requests per interval)",
                        "description": "Budget this connection paces itself to: HubSpot's 100, 190 or 250 "
                        "per 10 s for private apps, 110 for public apps. 0 turns pacing off.",
                        "schema": {"type": ["integer", "null"], "default": 190, "minimum": 0},
                    },
                    "rate_limit_redis_conn_id": {
                        "label": "Shared budget: Redis connection",
                        "description": "An Airflow Redis connection in which every worker of this app "
                        "books its requests, so that all of them together stay under the rate limit. Empty: "
                        "the processes of each machine share a budget file, and machines learn of each other "
                        "from HubSpot's headers.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "rate_limit_machine_budget": {
                        "label": "Shared budget: processes of one machine",
                        "description": "Without a Redis connection, the processes of one machine book "
                        "their requests in one file of the work folder, so that together they stay under "
                        "the rate limit. Off: each client paces itself from HubSpot's headers alone.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "rate_limit_key": {
                        "label": "Shared budget: key",
                        "description": "Names the shared budget; connections of the same HubSpot app and "
                        "account must share it. Empty: derived from the base URL and the token or the OAuth "
                        "client id.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "rate_limit_interval": {
                        "label": "Rate-limit interval (seconds)",
                        "schema": {"type": ["number", "null"], "default": 10, "minimum": 1},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of 429, 5xx and connection errors (never of other 4xx).",
                        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 0},
                    },
                    "unreachable_timeout": {
                        "label": "Unreachable after (seconds)",
                        "description": "Stop retrying when HubSpot has not answered any request for this "
                        "long; a batch then stops and its ledger says what was not sent.",
                        "schema": {"type": ["number", "null"], "default": 30, "minimum": 1},
                    },
                    "ca_bundle": {
                        "label": "CA bundle",
                        "description": "PEM file of a private certificate authority (e.g. a TLS-inspecting "
                        "proxy). Certificates are always verified; empty: the public CAs (certifi).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "login"],
                    "relabeling": {"password": "Private app access token"},
                    "placeholders": {"password": "pat-na1-...", "base_url": "https://api.hubapi.com"},
                },
            }
        ],
        # The lookup index of the compliance views (``ledger.index``): tasks write it, the api-server
        # reads it, so every component needs the same two settings.
        "config": {
            "hubspot_prefs": {
                "description": "The ledgers' lookup index, read by the compliance views in the Airflow UI.",
                "options": {
                    "index_path": {
                        "description": "Folder of the lookup index (local path or object-storage URI), "
                        "shared by the workers and the api-server. Default: "
                        "$AIRFLOW_HOME/hubspot_prefs/index.",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": "s3://compliance-bucket/hubspot-prefs/index",
                        "default": None,
                    },
                    "index_key": {
                        "description": "Secret that keys the index's hashes of addresses (any long random "
                        "string; index_key_cmd and index_key_secret work too). Required when index_path "
                        "is not local; else a key file is made in $AIRFLOW_HOME/hubspot_prefs.",
                        "version_added": "0.3.0",
                        "type": "string",
                        "sensitive": True,
                        "example": None,
                        "default": None,
                    },
                },
            }
        },
    }
