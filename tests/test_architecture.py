"""The house: the stages are packages, no import circles, no module that imports a dozen others.

Counted over every import in a module, the ones inside functions too: a lazy import is still a
dependency, and a circle hidden in a function is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "pipeline"
MAX_PROJECT_IMPORTS = 8
STAGES = ("sources", "einvoice", "render", "model", "consensus", "rules", "adjudicate", "merge", "sink",
          "cli", "config", "jobs", "eval", "run", "schema", "ground", "screen", "review")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("pipeline")]
            found.update(t for t in targets if t in modules and t != name and t != "pipeline")
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circles() -> None:
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()) or [])


def test_no_module_imports_more_than_eight_project_modules() -> None:
    heavy = {m: sorted(deps) for m, deps in import_graph().items() if len(deps) > MAX_PROJECT_IMPORTS}
    assert not heavy, heavy


def test_the_folders_show_the_data_path() -> None:
    assert all((ROOT / stage / "__init__.py").is_file() for stage in STAGES)
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "errors.py", "results.py"))
    assert not loose, f"modules outside a stage's package: {loose}"


def test_every_package_says_what_it_is_for() -> None:
    for init in ROOT.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), init
