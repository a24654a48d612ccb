"""The house: the stages are packages, no import circles, no module that imports a dozen others.

Counted over every import in a module, the ones inside functions too: a lazy import is still a
dependency, and a circle hidden in a function is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "pipeline"
MAX_PROJECT_IMPORTS = 8
# The order data flows in (docs/architecture.md): a module imports its own stage or earlier ones.
ORDER = ("errors", "results", "text", "config", "schema", "sources", "render", "screen", "consensus", "model", "ground",
         "einvoice", "rules", "sink", "adjudicate", "merge", "run", "devtools", "jobs", "review", "eval", "cli")
FOUNDATIONS = ("errors", "results", "text")  # modules, not stages: every stage may use them
STAGES = tuple(s for s in ORDER if s not in FOUNDATIONS)
# The imports against that order, each with its reason (docs/architecture.md, "Stage order")
AGAINST_ORDER = {
    # a schema is refused when it loads, not on a page: its x-rules and x-document-kinds are checked there
    ("pipeline.schema.compiled", "pipeline.rules.checks"),
    ("pipeline.schema.compiled", "pipeline.screen.kinds"),
    # the grammar asks for the totals after the rows they add up (the order x-rules read them in)
    ("pipeline.schema.grammar", "pipeline.rules.checks"),
}


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


def _stage(module: str) -> str:
    return module.split(".")[1]


def test_imports_follow_the_stage_order() -> None:
    graph = import_graph()
    against = {(m, d) for m, deps in graph.items() for d in deps
               if ORDER.index(_stage(d)) > ORDER.index(_stage(m))}
    assert against == AGAINST_ORDER, sorted(against ^ AGAINST_ORDER)
    assert set(ORDER) == {_stage(m) for m in graph if m != "pipeline"}


def test_the_folders_show_the_data_path() -> None:
    assert all((ROOT / stage / "__init__.py").is_file() for stage in STAGES)
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.stem not in ("__init__", *FOUNDATIONS))
    assert not loose, f"modules outside a stage's package: {loose}"


def test_every_package_says_what_it_is_for() -> None:
    for init in ROOT.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), init
