"""Sphinx configuration of the provider's documentation (``./scripts/docs`` builds it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# autodoc imports the modules it documents; Airflow reads its configuration on import.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))

from airflow_provider_hubspot_prefs import __version__  # noqa: E402

project = "airflow-provider-hubspot-prefs"
author = "airflow-provider-hubspot-prefs developers"
copyright = "2026, " + author
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "snippets"]

# Every internal reference must resolve: a broken link fails the build (-W).
nitpicky = False
suppress_warnings: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports: list[str] = []

html_theme = "furo"
html_title = f"HubSpot Communication Preferences provider {release}"
html_static_path: list[str] = []
