"""The package's shape stays what a reader can hold: no import cycle (lazy imports inside functions included),
modules under ~400 lines and functions under ~60 (a declarative table may be longer)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dialogsum_lab"
TABLES = {"world_scenarios"}  # data written as code: the miniature world's scenarios
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"}


def _imports(tree: ast.Module) -> set[str]:
    """The package's modules a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dialogsum_lab"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("dialogsum_lab.")}
    return found


def test_the_import_graph_has_no_cycle():
    graph = {name: _imports(tree) & set(_modules()) - {name} for name, tree in _modules().items()}
    done, path = set(), []

    def visit(name: str) -> None:
        assert name not in path, "import cycle: " + " -> ".join([*path[path.index(name):], name])
        if name in done:
            return
        path.append(name)
        for other in sorted(graph[name]):
            visit(other)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_modules_and_functions_stay_small():
    too_long = []
    for name, tree in _modules().items():
        lines = len((PACKAGE / f"{name}.py").read_text().splitlines())
        if lines > MAX_MODULE_LINES and name not in TABLES:
            too_long.append(f"{name}.py: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, too_long
