"""The emulator against HubSpot's OpenAPI specs: every response it gives must conform.

Two passes per version: schemathesis generates requests from the spec (mostly rejected inputs:
the error answers must conform too), and a scripted pass drives every operation to a success so
that each 200/207 body is validated against its schema as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from airflow_provider_hubspot_prefs.emulator import DEMO_TOKEN

SPECS = Path(__file__).parent / "openapi"
VERSIONS = ["v4", "2026-03", "2026-09"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


def load(version: str) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_path(str(SPECS / f"communication-preferences-{version}.json"))


schemas = {version: load(version) for version in VERSIONS}


def _fuzz(version: str, method: str, path: str) -> Callable[..., None]:
    @schemas[version].include(method=method, path=path).parametrize()
    @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def test(case, emulator):
        case.call_and_validate(base_url=emulator.url, headers=AUTH, checks=CHECKS)

    return test


# One test function per operation, named after it (test_fuzz_v4_get_definitions, ...): a
# schemathesis test over a whole schema gives all its items one node id on pytest 9, and pytest-xdist
# (./scripts/test) then runs only one of them.
for _version in VERSIONS:
    for _result in schemas[_version].get_all_operations():
        _operation = _result.ok()
        _route = re.sub(r"\W+", "_", _operation.path.removeprefix(f"/communication-preferences/{_version}/"))
        _name = f"test_fuzz_{_version.replace('-', '_')}_{_operation.method.lower()}_{_route.strip('_')}"
        globals()[_name] = _fuzz(_version, _operation.method.upper(), _operation.path)


# One valid call per operation: (method, path relative to the version prefix, query, body).
def scripted_calls(version: str) -> list[tuple[str, str, dict, object]]:
    email = "alice@example.com"
    calls = [
        ("GET", "/definitions", {"includeTranslations": "true"}, None),
        (
            "POST",
            "/links/generate",
            {"channel": "EMAIL"},
            {"subscriberIdString": email, "subscriptionId": 1001},
        ),
        ("GET", "/statuses/{subscriberIdString}", {"channel": "EMAIL"}, None),
        (
            "POST",
            "/statuses/{subscriberIdString}",
            {},
            {
                "channel": "EMAIL",
                "statusState": "SUBSCRIBED",
                "subscriptionId": 1002,
                "legalBasis": "NON_GDPR",
                "legalBasisExplanation": "test",
            },
        ),
        (
            "POST",
            "/statuses/batch/write",
            {},
            {
                "inputs": [
                    {
                        "channel": "EMAIL",
                        "statusState": "UNSUBSCRIBED",
                        "subscriptionId": 1003,
                        "subscriberIdString": "bob@example.org",
                    },
                    {
                        "channel": "EMAIL",
                        "statusState": "SUBSCRIBED",
                        "subscriptionId": 1,
                        "subscriberIdString": "x",
                    },
                ]
            },
        ),
        (
            "POST",
            "/statuses/batch/read",
            {"channel": "EMAIL"},
            {"inputs": [email, "ghost@example.com", "bad"]},
        ),
        (
            "POST",
            "/statuses/batch/unsubscribe-all",
            {"channel": "EMAIL", "verbose": "true"},
            {"inputs": ["bob@example.org", "bad"]},
        ),
        (
            "POST",
            "/statuses/batch/unsubscribe-all/read",
            {"channel": "EMAIL"},
            {"inputs": ["bob@example.org", "ghost@example.com"]},
        ),
        (
            "POST",
            "/statuses/{subscriberIdString}/unsubscribe-all",
            {"channel": "EMAIL", "verbose": "true"},
            None,
        ),
        (
            "GET",
            "/statuses/{subscriberIdString}/unsubscribe-all",
            {"channel": "EMAIL", "verbose": "true"},
            None,
        ),
    ]
    if version == "2026-09":
        calls += [
            ("POST", "/unsubscribe", {}, {"emailAddress": email, "subscriptionId": "1004"}),
            (
                "POST",
                "/resubscribe",
                {},
                {"emailAddress": email, "subscriptionId": "1001", "legalBasis": "CONSENT_WITH_NOTICE"},
            ),
            ("POST", "/subscribe", {}, {"emailAddress": email, "subscriptionId": "1003"}),
            ("GET", "/status/email/{emailAddress}", {}, None),
        ]
    return calls


@pytest.mark.parametrize("version", VERSIONS)
def test_every_operation_succeeds_with_a_conforming_body(emulator, version):
    schema = schemas[version]
    prefix = f"/communication-preferences/{version}"
    seen = set()
    with httpx.Client(base_url=emulator.url, headers=AUTH) as http:
        for method, path, query, body in scripted_calls(version):
            concrete = path.replace("{subscriberIdString}", "alice%40example.com").replace(
                "{emailAddress}", "alice%40example.com"
            )
            response = http.request(method, prefix + concrete, params=query, json=body)
            assert response.status_code in (200, 207), (method, path, response.text)
            operation = schema[prefix + path][method]
            operation.validate_response(response)  # raises with the schema violation if any
            seen.add((method, prefix + path))
    declared = {(m.upper(), p) for p, ops in schema.raw_schema["paths"].items() for m in ops}
    assert seen == declared  # every operation of the spec was driven to a success


@pytest.mark.parametrize("version", VERSIONS)
def test_error_answers_conform(emulator, version):
    schema = schemas[version]
    prefix = f"/communication-preferences/{version}"
    emulator.control("POST", "tokens", json={"token": "pat-none", "scopes": []})
    with httpx.Client(base_url=emulator.url) as http:
        cases = [
            ({}, "GET", "/definitions", {}, None, 401),
            ({"Authorization": "Bearer pat-none"}, "GET", "/definitions", {}, None, 403),
            (AUTH, "GET", "/statuses/{subscriberIdString}", {}, None, 400),
            (
                AUTH,
                "POST",
                "/statuses/batch/unsubscribe-all",
                {"channel": "EMAIL"},
                {"inputs": ["a@b.co"] * 101},
                400,
            ),
        ]
        for headers, method, path, query, body, expected in cases:
            url = prefix + path.replace("{subscriberIdString}", "alice%40example.com")
            response = http.request(method, url, params=query, json=body, headers=headers)
            assert response.status_code == expected, response.text
            schema[prefix + path][method].validate_response(response)
            assert response.json()["correlationId"]
