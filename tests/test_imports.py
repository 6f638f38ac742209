"""The package's layers: no import cycle, and models and flow below engines and training.

The import graph is read from the source (``ast``): every ``import`` statement, at module level
or inside a function (a lazy import is still a dependency), plus the packages whose
``__init__`` an import runs. Imports by name through ``importlib`` (the registry's spec modules,
the CLI's subcommands) are plug-in points, not edges.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import emavfi

PACKAGE = Path(emavfi.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(module: str, path: Path) -> set[str]:
    """Every ``emavfi.*`` name imported anywhere in ``path`` (relative imports resolved)."""
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name == "emavfi" or name.startswith("emavfi.")}


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (with the ``__init__`` of their packages)."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        edges = set()
        for name in _imported(module, path):
            while name not in modules:  # ``from pkg.mod import function``
                name = name.rpartition(".")[0]
            while name and name != "emavfi":  # the root package is every module's parent
                if name in modules and name != module and not module.startswith(name + "."):
                    edges.add(name)
                name = name.rpartition(".")[0]
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "emavfi.models.checkpoints" in graph["emavfi.interpolator"]  # inside a function
    assert "emavfi.flow" in graph["emavfi.models.ema_vfi.net"]  # the package's __init__ runs
    assert "emavfi.flow.dis" in graph["emavfi.models.ema_vfi.net"]


def test_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_a_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [{"a", "b", "c"}]


def test_models_and_flow_stay_below_engines_and_training():
    """Networks import only the contract, the registry, errors, ``emavfi.flow`` and the atomic
    writes (``emavfi.tempfiles``, for checkpoints); the flow module imports nothing from the
    package (engines, models and the teacher all use it)."""
    graph = import_graph()
    for module, imports in graph.items():
        if module.startswith("emavfi.models"):
            allowed = ("emavfi.models", "emavfi.errors", "emavfi.flow", "emavfi.tempfiles")
            assert all(name.startswith(allowed) for name in imports), (module, imports)
        if module.startswith("emavfi.flow"):
            assert imports <= {"emavfi.flow"}, (module, imports)


def _missing_names(path: Path) -> list[str]:
    """``from emavfi... import NAME`` lines of ``path`` whose NAME the module does not have."""
    missing = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("emavfi"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                submodule = hasattr(module, "__path__") and importlib.util.find_spec(name)
                if not hasattr(module, alias.name) and not submodule:
                    missing.append(name)
    return missing


def test_scripts_and_benchmarks_import_what_exists():
    """The tools outside the package (not run by the suite) still match its names."""
    root = PACKAGE.parents[1]
    tools = [*root.glob("benchmarks/*.py"), *root.glob("scripts/*.py"), *root.glob("*.py")]
    assert len(tools) >= 8
    assert {str(path.relative_to(root)): _missing_names(path) for path in tools} == {
        str(path.relative_to(root)): [] for path in tools
    }


def test_a_stale_import_is_found(tmp_path):
    stale = tmp_path / "stale.py"
    stale.write_text("from emavfi.imageio import frames_to_tensor, to_tensor\n")
    assert _missing_names(stale) == ["emavfi.imageio.to_tensor"]
