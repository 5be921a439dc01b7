"""The package reads one way: operators, sensors -> triggers -> hooks -> runs -> ledger -> client.

Every import of every module counts, those inside functions too (they are how operator modules
stay cheap to parse, not a way around the layers). A package may import those below it, never one
above it, so that no two packages import each other.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import airflow_provider_hubspot_prefs

ROOT = Path(airflow_provider_hubspot_prefs.__file__).parent
PACKAGE = ROOT.name
# Higher imports lower. The emulator stands apart: it is HubSpot, written from HubSpot's docs.
RANK = {
    "client": 0,
    "ledger": 1,
    "runs": 2,
    "hooks": 3,
    "triggers": 4,
    "sensors": 5,
    "operators": 5,
    "utils": 5,
}
STANDS_APART = {"emulator"}


def _part(path: Path) -> str:
    """The provider's package a module belongs to (``<top>`` for modules at its root)."""
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else "<top>"


def imports() -> dict[tuple[str, str], list[str]]:
    """``(importing package, imported package) -> [module:line, ...]`` over the whole provider."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in ROOT.rglob("*.py"):
        source = _part(path)
        here = list(path.relative_to(ROOT).parent.parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - node.level + 1]
                module = [*base, *(node.module.split(".") if node.module else [])]
                targets = [module] if module else [[alias.name] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
                targets = [(node.module or "").split(".")[1:]]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == PACKAGE]
            for target in targets:
                imported = target[0] if target and (ROOT / target[0]).is_dir() else "<top>"
                if imported != source:
                    found[(source, imported)].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_package_imports_only_those_below_it():
    wrong = {
        f"{source} -> {imported}": places
        for (source, imported), places in imports().items()
        if imported in STANDS_APART
        or (source in STANDS_APART and imported != "<top>")
        or (source in RANK and imported in RANK and RANK[imported] >= RANK[source])
    }
    assert wrong == {}


def test_the_client_imports_nothing_of_the_provider_above_it_nor_airflow():
    above = {imported for source, imported in imports() if source == "client"} - {"<top>"}
    assert above == set()
    airflow = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in (ROOT / "client").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            name.split(".")[0] == "airflow"
            for name in (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
        )
        and not (isinstance(node, ast.ImportFrom) and node.level)
    ]
    assert airflow == []


def test_no_two_packages_import_each_other():
    graph: dict[str, set[str]] = defaultdict(set)
    for source, imported in imports():
        graph[source].add(imported)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph[start]
        )

    circles = sorted(
        package for package in list(graph) if package != "<top>" and reaches(package, package, set())
    )
    assert circles == []


def test_the_walk_sees_the_imports_it_judges():
    """The checks above rest on the walk: it must find what the modules really import."""
    found = imports()
    assert "operators/batch_run.py" in " ".join(found[("operators", "runs")])  # inside a function
    assert found[("runs", "ledger")] and found[("runs", "client")] and found[("ledger", "client")]
