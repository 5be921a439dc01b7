"""HubSpot's answer shapes: the operation envelope, batch errors and error responses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse

from .portal import is_email
from .problems import ApiProblem, iso, now_iso

if TYPE_CHECKING:
    from .backend import PortalBackend

# Versions whose spec answers 207 on batch reads with failed inputs (2026-09 dropped it).
MULTI_STATUS_VERSIONS = ("v4", "2026-03")


def problem_response(problem: ApiProblem) -> JSONResponse:
    body = problem.body()
    headers = {**problem.headers, "X-HubSpot-Correlation-Id": body["correlationId"]}
    return JSONResponse(body, status_code=problem.status, headers=headers)


def operation(
    results: list[Any],
    errors: list[dict[str, Any]] | None = None,
    status: str = "COMPLETE",
    completed_at: float | None = None,
) -> dict[str, Any]:
    stamp = now_iso()
    done = stamp if completed_at is None else iso(completed_at)
    body: dict[str, Any] = {
        "status": status,
        "results": results,
        "requestedAt": stamp,
        "startedAt": stamp,
        "completedAt": done,
    }
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return body


def batch_error(
    status: str, category: str, message: str, ids: list[str], *, sub_category: str | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": message, "code": status, "in": "inputs", "context": {"ids": ids}}
    if sub_category:
        detail["subCategory"] = sub_category
    return {
        "status": status,
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "errors": [detail],
        "links": {},
        "id": f"{category}:{len(ids)}",
    }


def invalid_email_error(ids: list[str]) -> dict[str, Any]:
    return batch_error(
        "400", "VALIDATION_ERROR", "Invalid subscriber identifier.", ids, sub_category="INVALID_EMAIL"
    )


def split_inputs(
    inputs: list[Any], backend: PortalBackend, *, must_be_known: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    """Valid (lower-cased, de-duplicated) inputs, and one StandardError per kind of bad input."""
    valid: list[str] = []
    invalid: list[str] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for item in inputs:
        if not is_email(item):
            invalid.append(str(item))
            continue
        email = str(item).lower()
        if email in seen:
            continue
        seen.add(email)
        if must_be_known and not backend.is_known(email):
            unknown.append(str(item))
        else:
            valid.append(email)
    errors = []
    if invalid:
        errors.append(invalid_email_error(invalid))
    if unknown:
        errors.append(
            batch_error("404", "OBJECT_NOT_FOUND", "Could not find a subscriber for some inputs.", unknown)
        )
    return valid, errors


def multi_status(
    version: str, results: list[Any], errors: list[dict[str, Any]], operation_status: str
) -> tuple[int, Any]:
    status = 207 if errors and version in MULTI_STATUS_VERSIONS else 200
    return status, operation(results, errors, status=operation_status)
