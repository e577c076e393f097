"""The package's import graph has no cycles, counting imports inside functions too (they hide a
cycle from Python, not from a reader). Read from the source with ``ast``: nothing is imported.

Prints the modules in dependency order (each after everything it imports)::

    python -m pytest tests/test_import_graph.py -s -p no:cacheprovider
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its file)."""
    mods = modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {resolve(a.name) for a in node.names if a.name.startswith("ser_edge")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                if base.startswith("ser_edge"):
                    deps |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else resolve(base) for a in node.names}
        graph[name] = {d for d in deps if d and d != name}
    return graph


def test_the_import_graph_has_no_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 40 and graph["ser_edge.predict"]  # the walk found the package and its imports
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError naming a cycle
    print("\n".join(order))


def test_imports_inside_functions_are_edges() -> None:
    """The daemon imports the runtime only inside a function; that is still an edge."""
    graph = import_graph()
    assert "ser_edge.runtime" in graph["ser_edge.listen.daemon"]
    assert "ser_edge.training.trainer" in graph["ser_edge.training.wave"]


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_layers() -> None:
    """``predict`` and the edge pipeline never reach the daemon (``listen``), and nothing on the
    edge path reaches training code; ``listen`` may use the pipeline, not the other way round."""
    graph = import_graph()
    for module in ("ser_edge.predict", "ser_edge.pipeline.utterances", "ser_edge.pipeline.speech"):
        reached = _reaches(graph, module)
        assert not {m for m in reached if m.startswith("ser_edge.listen")}, module
        assert not {m for m in reached if m.startswith("ser_edge.training")}, module
    assert not {m for m in _reaches(graph, "ser_edge.listen.daemon") if m.startswith("ser_edge.training")}
