"""HubSpot's error answers and times as the emulator writes them."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def now_iso() -> str:
    return iso(time.time())


class ApiProblem(Exception):
    """An error answer in HubSpot's ``Error`` shape."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        sub_category: str | None = None,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.sub_category = sub_category
        self.context = context
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def validation(message: str, field_name: str, value: Any = None, code: str = "INVALID") -> ApiProblem:
    detail: dict[str, Any] = {"message": message, "in": field_name, "code": code}
    ctx = {field_name: [str(value)]} if value is not None else None
    if ctx:
        detail["context"] = ctx
    return ApiProblem(400, "VALIDATION_ERROR", message, context=ctx, errors=[detail])
