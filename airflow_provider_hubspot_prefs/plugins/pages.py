"""The plugin's HTML pages and their scripts and styles, served through routes behind the login.

The pages hold no data: their scripts fetch it from the JSON API (same origin, so the UI's login
cookie goes along). Nothing is loaded from elsewhere (the browser of an air-gapped deployment has
no internet), and the files are served by routes rather than a static mount, which would skip the
login check. A strict Content-Security-Policy allows only this origin's scripts and styles.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse, Response

from .access import User

router = APIRouter()

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
ASSETS = {
    "views.css": "text/css; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "ti.js": "text/javascript; charset=utf-8",
    "run.js": "text/javascript; charset=utf-8",
    "lookup.js": "text/javascript; charset=utf-8",
}


def _read(name: str) -> str:
    return (files(__package__) / "assets" / name).read_text(encoding="utf-8")


def _page(name: str) -> HTMLResponse:
    return HTMLResponse(_read(name), headers={"Content-Security-Policy": PAGE_CSP})


@router.get("/ti", response_class=HTMLResponse)
def task_instance_page(user: User) -> HTMLResponse:
    """The task-instance view (its data comes from ``api/ti``, which checks the DAG access)."""
    return _page("ti.html")


@router.get("/run", response_class=HTMLResponse)
def dag_run_page(user: User) -> HTMLResponse:
    """The DAG-run view: the run's ledgers."""
    return _page("run.html")


@router.get("/lookup", response_class=HTMLResponse)
def lookup_page(user: User) -> HTMLResponse:
    """The lookup form; the address goes to ``api/lookup`` in a POST body."""
    return _page("lookup.html")


@router.post("/lookup/no-script", response_class=HTMLResponse)
def lookup_without_script(user: User) -> HTMLResponse:
    """Where the lookup form lands if its script did not run: the body is not read, nothing is looked up.

    The form's field has no name, so a browser submitting it sends no address at all; this route
    exists so that the form never falls back to a GET with the address in the URL.
    """
    return HTMLResponse(
        "<!doctype html><title>HubSpot lookup</title><p>The lookup needs JavaScript: nothing was "
        "looked up. <a href='../lookup'>Back</a></p>",
        status_code=status.HTTP_400_BAD_REQUEST,
        headers={"Content-Security-Policy": PAGE_CSP},
    )


@router.get("/assets/{name}")
def asset(name: str, user: User) -> Response:
    """A script or style sheet of the pages (a fixed list: no path reaches any other file)."""
    if name not in ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such asset.")
    return Response(_read(name), media_type=ASSETS[name])
