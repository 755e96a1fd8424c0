"""The package's shape: imports go only downward through the layers, and no module
imports itself back through others (every import counted, also those made
inside a function to keep start-up fast)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hf_fanout"

# Lowest first. A module may import its own layer's modules and the layers below.
LAYERS = [
    ("base", {"hf_fanout", "hf_fanout.errors", "hf_fanout.atomic",
              "hf_fanout.locks", "hf_fanout.paths", "hf_fanout.config", "hf_fanout.trust",
              "hf_fanout.registry",
              "hf_fanout.timefmt", "hf_fanout.preload", "hf_fanout.processes",
              "hf_fanout.faults", "hf_fanout.gitlink"}),
    ("worktrees", {"hf_fanout.worktrees"}),
    ("core", {"hf_fanout.core"}),
    ("components", {"hf_fanout.guard", "hf_fanout.tabs", "hf_fanout.liveness"}),
    ("orchestrator", {"hf_fanout.orchestrator"}),
    ("cli", {"hf_fanout.cli", "hf_fanout.__main__"}),
]
# Within the components' layer: tabs may say what the guard refuses and use its
# PATH; nothing else crosses between components.
COMPONENT_USES = {"hf_fanout.tabs": {"hf_fanout.guard"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules `path` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
                elif base in known:
                    found.add(base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    return found


def layer_of(module: str) -> tuple[int, str]:
    for number, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "hf_fanout" and module.startswith(prefix + ".")):
                return number, prefix
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) for name, path in found.items()}


def test_every_module_is_in_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_imports_only_go_down() -> None:
    wrong = []
    for module, targets in graph().items():
        here, group = layer_of(module)
        for target in targets:
            there, other = layer_of(target)
            if there > here or (there == here and LAYERS[here][0] == "components"
                                and other != group and other not in COMPONENT_USES.get(group,
                                                                                       set())):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_import_cycle() -> None:
    edges = graph()
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node):], node]))
        if node in done:
            return
        path.append(node)
        for target in sorted(edges[node]):
            if target != node and not node.startswith(target + "."):  # a package's own init
                visit(target)
        path.pop()
        done.add(node)

    for module in sorted(edges):
        visit(module)


def test_a_cycle_or_an_upward_import_would_be_found(tmp_path: Path) -> None:
    """The checks above look at real imports: one planted in a copy is seen."""
    source = "from hf_fanout.cli import app\n"
    planted = tmp_path / "planted.py"
    planted.write_text(source)
    assert imports(planted, {"hf_fanout.cli", "hf_fanout.cli.app"}) == {"hf_fanout.cli.app"}
    inside = tmp_path / "inside.py"
    inside.write_text("def f():\n    from hf_fanout.core import records\n")
    assert imports(inside, {"hf_fanout.core", "hf_fanout.core.records"}) == {
        "hf_fanout.core.records"}
