"""The layering rule of ``sockcap/__init__.py``, checked from the imports of the source.

A pure package (decode, analysis, pipeline, render) never imports an edge package or
module (capture, endpoints, pcapfile, commands, cli, lab, check, export), not
even inside a function; and no two modules import each other, directly or round a longer
loop (imports inside functions and under ``TYPE_CHECKING`` count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sockcap

PACKAGE = Path(sockcap.__file__).resolve().parent
PURE = {"decode", "analysis", "pipeline", "render"}
EDGE = {"capture", "endpoints", "pcapfile", "commands", "cli", "lab", "check", "export"}


def module_name(path: Path) -> str:
    parts = ["sockcap", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The sockcap modules ``path`` imports (a name imported from a package counts as the
    module of that name when there is one, else the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                parts = parts[: len(parts) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m for m in found if m in known and m != name}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def test_the_pure_core_imports_no_edge() -> None:
    wrong = [f"{mod} imports {dep}" for mod, deps in graph().items() if layer(mod) in PURE
             for dep in sorted(deps) if layer(dep) in EDGE]
    assert wrong == []


def test_no_import_loops() -> None:
    g = graph()
    # Tarjan's strongly connected components: a component of more than one module is a loop
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            # a package's __init__ importing its own submodules is not a loop of modules
            if w.startswith(v + "."):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert loops == []


@pytest.mark.parametrize("pure", sorted(PURE))
def test_each_pure_package_exists_and_is_checked(pure: str) -> None:
    """The rule would pass vacuously on a renamed package: each one named is really there."""
    assert any(layer(m) == pure for m in modules())


def test_the_checker_sees_a_planted_violation(tmp_path: Path) -> None:
    """The import reader finds an edge import inside a function of a pure module."""
    source = tmp_path / "planted.py"
    source.write_text("def f():\n    from sockcap.capture import base\n    return base\n")
    deps = imports_of("sockcap.render.planted", source, set(modules()))
    assert "sockcap.capture.base" in deps and layer("sockcap.capture.base") in EDGE
