"""The package's shape: no import cycles (deferred imports included), no module over 500
lines, dependencies pointing one way, and a package root holding only the public API, the
CLI entry and a few shared leaf modules."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "evalharness"
MAX_LINES = 500
ROOT_MODULES = {"__init__", "__main__", "cli", "errors", "jsonvalues", "seeds", "stats", "terminal", "types", "version"}
# Lower layers never import the layers built on them.
LOWER = ("spec", "data", "metrics", "records", "models")
UPPER = ("evaluation", "commands", "leaderboard", "report", "comparison", "publish", "external")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> set[str]:
    """evalharness modules ``path`` imports anywhere (functions included), except under
    ``if TYPE_CHECKING:``, which never runs."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names.add(child.module)
                names.update(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {found for name in names if name.startswith("evalharness") and (found := _resolve(name))}


GRAPH = {module: _imports(path) - {module} for module, path in MODULES.items()}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(GRAPH.get(module, ())):
            if dep.startswith(module + "."):  # a package importing its own modules is not a cycle
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_import_graph_has_no_cycles():
    assert _cycle() is None, " -> ".join(_cycle() or [])


def test_no_module_is_over_500_lines():
    long = {str(path.relative_to(REPO)): n for path in MODULES.values() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_package_root_holds_only_the_api_the_cli_and_shared_leaves():
    assert {path.stem for path in PACKAGE.glob("*.py")} <= ROOT_MODULES


def test_lower_layers_never_import_the_layers_built_on_them():
    upward = {
        module: sorted(dep for dep in deps if dep.split(".")[1] in UPPER)
        for module, deps in GRAPH.items()
        if module.count(".") >= 1 and module.split(".")[1] in LOWER
    }
    assert {module: deps for module, deps in upward.items() if deps} == {}


def test_only_the_runner_knows_both_models_and_metrics():
    def knows(deps: set[str], layer: tuple[str, ...]) -> bool:
        return any(dep.split(".")[1] in layer for dep in deps if dep.count(".") >= 1)

    both = {m for m, deps in GRAPH.items() if knows(deps, ("models", "backends")) and knows(deps, ("metrics",))}
    assert both == {"evalharness.evaluation.runner"}
