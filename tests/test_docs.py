"""The documentation's code runs: every Python block of docs/ is included from a file that a test
runs (example_dags/ by tests/test_example_dags.py, docs/snippets/ here, against the emulator), and
the docs build (``./scripts/docs``, warnings as errors) is part of ``./scripts/test``."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from airflow_provider_hubspot_prefs import __version__

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# A snippet runs through ``run(base_url, folder)``; ``_harness.py`` is what running them needs.
SNIPPETS = sorted(p for p in (DOCS / "snippets").glob("*.py") if not p.name.startswith("_"))


def _pages() -> list[Path]:
    return [p for p in DOCS.rglob("*.md") if "_build" not in p.parts]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.stem for s in SNIPPETS])
def test_a_docs_snippet_runs_against_the_emulator(snippet, emulator, tmp_path, monkeypatch, airflow_db):
    """Each snippet's ``run(base_url, folder)`` does what its page shows, against the emulator."""
    spec = importlib.util.spec_from_file_location(f"docs_snippet_{snippet.stem}", snippet)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(DOCS / "snippets"))
    module.run(emulator.url, tmp_path)


def test_python_in_the_docs_comes_from_files_that_run():
    """A Python block written into a page would be a copy nobody runs: pages include code instead."""
    inline = [
        f"{page.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
        for page in _pages()
        for text in [page.read_text()]
        for match in re.finditer(r"^```+(python|py)\s*$", text, re.MULTILINE)
    ]
    assert inline == []
    included = {
        (page.parent / target).resolve()
        for page in _pages()
        for target in re.findall(r"^```+\{literalinclude\}\s+(\S+)", page.read_text(), re.MULTILINE)
    }
    tested = {*(ROOT / "example_dags").glob("*.py"), *SNIPPETS}
    assert {path for path in included if path.suffix == ".py"} <= {p.resolve() for p in tested}


def test_the_changelog_names_this_version_first():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## (\d+\.\d+\.\d+)", changelog, re.MULTILINE)
    assert versions and versions[0] == __version__, (versions, __version__)


def test_the_license_is_the_apache_license_the_package_declares():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


def test_the_readme_stays_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    assert "./scripts/demo" in "\n".join(lines) and "./scripts/test" in "\n".join(lines)


def test_the_readme_example_builds_its_dag():
    """The README's example is code a user copies: it must at least build its DAG as shown."""
    text = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    dag = namespace["dag"]
    (task,) = dag.tasks  # type: ignore[attr-defined]
    assert type(task).__name__ == "HubSpotBatchUnsubscribeAllOperator" and task.wait_for_completion
