"""Faults injected into requests: errors, dropped connections, slow, cut-off and partial answers."""

from __future__ import annotations

import email.utils
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .answers import batch_error, operation
from .limits import RateLimits
from .problems import ApiProblem

FAULT_KINDS = (
    "error",
    "drop_before",
    "drop_after",
    "slow",
    "malformed",
    "undecodable",
    "wrong_shape",
    "partial",
    "omit",
    "choice",
)


@dataclass
class Fault:
    """A fault for the next ``count`` requests whose path contains ``path_contains`` (and ends
    with ``path_endswith``). The OAuth token endpoint takes only faults whose path filter names it.

    ``kind`` says what happens:

    - ``error``: answer ``status`` (429 with ``policy_name`` and, if set, the
      ``X-HubSpot-RateLimit-Daily-Remaining`` header ``daily_remaining``; 5xx; 4xx) without running
      the request; ``retry_after`` (seconds) or ``retry_after_date`` (seconds from now, sent as an
      HTTP date; negative: a date in the past) sets ``Retry-After``;
    - ``drop_before`` / ``drop_after``: close the connection without an answer, before or after the
      request was applied (the client cannot know which);
    - ``slow``: apply the request, then answer only after ``delay`` seconds;
    - ``malformed``: apply the request, then answer 200 with a truncated JSON body;
    - ``undecodable``: apply the request, then answer 200 with ``Content-Encoding: gzip`` and a
      body that is not gzip (a proxy on the way mangled it);
    - ``wrong_shape``: answer 200 with a JSON object that has none of the promised fields, without
      running the request;
    - ``partial``: apply a batch except the inputs containing ``reject_contains``, which come back
      in ``errors`` with ``category`` and ``message`` (HTTP 207 where the version answers 207); on
      a batch read, those inputs are not read and come back in ``errors`` the same way;
    - ``omit``: a batch read answers without the inputs containing ``reject_contains``, and
      without an error for them; with ``subscription_id``, only that subscription's status is
      missing from those contacts' statuses;
    - ``choice``: as the request arrives, before it is served, the person ``email`` changes their
      status of ``subscription_id`` to ``state`` themselves (their preference page): a change
      made in HubSpot between a client's read and its write.
    """

    status: int = 500
    count: int = 1
    path_contains: str = ""
    path_endswith: str = ""
    retry_after: float | None = None
    retry_after_date: float | None = None
    category: str | None = None
    policy_name: str | None = None
    kind: str = "error"
    delay: float = 0.0
    reject_contains: str = ""
    message: str | None = None
    daily_remaining: int | None = None
    every: int = 1  # hit every n-th matching request only: scattered faults instead of a burst
    subscription_id: int | None = None
    email: str = ""
    state: str = ""
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")


class Faults:
    """The faults waiting for requests (a part of ``PortalBackend``)."""

    lock: Any

    def _reset_faults(self) -> None:
        self.faults: list[Fault] = []

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str, *, named_only: bool = False) -> Fault | None:
        """The fault for a request to ``path``; ``named_only``: only one whose path filter is set
        (the token endpoint: a fault meant for the API calls must not be spent on it)."""
        with self.lock:
            for fault in self.faults:
                if named_only and not (fault.path_contains or fault.path_endswith):
                    continue
                if fault.path_contains in path and path.endswith(fault.path_endswith):
                    fault.seen += 1
                    if fault.seen % max(fault.every, 1):
                        continue
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None


# ---- what a fault does to a request (the HTTP side) --------------------------------------------------

DROPPED = 444  # nginx's "no response": what the request log records for a dropped connection


def drop_connection(request: Request) -> Response:
    request.scope["emulator.drop"] = True
    return Response(status_code=DROPPED)


class ConnectionDropper:
    """Outermost ASGI layer: closes the TCP connection of a request marked ``emulator.drop``.

    The client then sees the connection go away without any answer, as on a network failure or a
    crashed load balancer. uvicorn's ``send`` belongs to the request cycle that owns the socket.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: MutableMapping[str, Any]) -> None:
            if scope.get("emulator.drop"):
                transport = getattr(getattr(send, "__self__", None), "transport", None)
                if transport is not None:
                    transport.abort()
                    return
                raise ConnectionAbortedError("emulator: dropped connection")  # other servers
            await send(message)

        await self.app(scope, receive, guarded_send)


# The body of a ``wrong_shape`` answer: JSON, but none of the fields any endpoint promises.
WRONG_SHAPE = {"message": "Injected fault: an answer of the wrong shape"}


def retry_after_header(fault: Fault) -> dict[str, str]:
    """``Retry-After`` as the fault asks: seconds, or an HTTP date (possibly in the past)."""
    if fault.retry_after_date is not None:
        return {"Retry-After": email.utils.formatdate(time.time() + fault.retry_after_date, usegmt=True)}
    return {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}


def injected(fault: Fault) -> ApiProblem:
    if fault.status == 429:
        daily = fault.daily_remaining
        headers = {} if daily is None else {"X-HubSpot-RateLimit-Daily-Remaining": str(daily)}
        policy = fault.policy_name or "TEN_SECONDLY_ROLLING"
        return RateLimits.rate_limited(policy, {**headers, **retry_after_header(fault)}, None)
    headers = retry_after_header(fault)
    category = fault.category or ("INTERNAL_ERROR" if fault.status >= 500 else "VALIDATION_ERROR")
    return ApiProblem(fault.status, category, f"Injected fault: HTTP {fault.status}", headers=headers)


def refused_by_fault(request: Request, addresses: list[str]) -> list[str]:
    """The addresses an injected ``partial`` fault refuses (none without one)."""
    fault = request.state.fault
    if fault is None or fault.kind != "partial":
        return []
    return [a for a in addresses if fault.reject_contains in a]


def read_fault(request: Request) -> Fault | None:
    """The ``partial`` or ``omit`` fault of a batch read, if one was injected for it."""
    fault = request.state.fault
    return fault if fault is not None and fault.kind in ("partial", "omit") else None


def faulty_read(
    request: Request, results: list[dict[str, Any]], errors: list[dict[str, Any]], listed: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A batch read's results and errors once an injected ``partial`` or ``omit`` fault has acted:
    ``partial`` moves the matching contacts to ``errors`` (not read); ``omit`` drops them (or only
    their ``subscription_id`` from ``listed``, the result's list of statuses) without a word."""
    fault = read_fault(request)
    if fault is None:
        return results, errors
    hit = [r for r in results if fault.reject_contains in r["subscriberIdString"]]
    if fault.kind == "partial":
        message = fault.message or "The subscriber's preferences could not be read."
        refused = [r["subscriberIdString"] for r in hit]
        kept = [r for r in results if r not in hit]
        return kept, [*errors, batch_error("500", fault.category or "INTERNAL_ERROR", message, refused)]
    if fault.subscription_id is None:
        return [r for r in results if r not in hit], errors
    for result in hit:
        result[listed] = [s for s in result[listed] if s.get("subscriptionId") != fault.subscription_id]
    return results, errors


def partial_answer(
    request: Request,
    results: list[Any],
    errors: list[dict[str, Any]],
    refused: list[str],
    status: str,
    done: float,
) -> Any:
    """The write's envelope; an injected ``partial`` fault adds its refused inputs, HTTP 207."""
    fault = request.state.fault
    if fault is None or fault.kind != "partial" or not refused:
        return operation(results, errors, status=status, completed_at=done)
    message = fault.message or "The subscriber's preferences cannot be changed."
    errors = [*errors, batch_error("400", fault.category or "VALIDATION_ERROR", message, refused)]
    return 207, operation(results, errors, status=status, completed_at=done)
