"""The engine's modules import each other without cycles (function-level imports included)."""

from __future__ import annotations

import ast
import graphlib
import importlib
import pkgutil
from pathlib import Path

import pytest

from phot7dt import scene

PACKAGE = "phot7dt.scene"
ROOT = Path(scene.__file__).parent


def _modules():
    return ["__init__"] + sorted(m.name for m in pkgutil.iter_modules([str(ROOT)]))


def _imported_modules(name, known):
    """Scene modules that module ``name`` imports anywhere (top level or in functions)."""
    tree = ast.parse((ROOT / f"{name}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            elif node.level == 1:
                base = ".".join(filter(None, [PACKAGE, node.module]))
            else:
                continue  # (beyond the package)
            # "from . import _solve" imports a submodule; "from . import x" a name of __init__
            targets = (
                [
                    f"{base}.{a.name}" if f"{base}.{a.name}"[len(PACKAGE) + 1 :] in known else base
                    for a in node.names
                ]
                if base == PACKAGE
                else [base]
            )
        else:
            continue
        for target in targets:
            if target == PACKAGE:
                out.add("__init__")
            elif target.startswith(PACKAGE + ".") and target[len(PACKAGE) + 1 :] in known:
                out.add(target[len(PACKAGE) + 1 :])
    out.discard(name)
    return out


def import_graph():
    """{module: set of scene modules it imports} for every module of the package."""
    known = set(_modules())
    return {name: _imported_modules(name, known) for name in known}


def cycle_in(graph):
    """A cycle of ``graph`` as a list of nodes, or None if it is a DAG."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return err.args[1]
    return None


@pytest.mark.parametrize("name", [m for m in _modules() if m != "__init__"])
def test_every_scene_module_imports(name):
    importlib.import_module(f"{PACKAGE}.{name}")


def test_scene_modules_form_no_import_cycle():
    graph = import_graph()
    assert graph["api"] >= {"_schedule", "result"}  # the parser sees the real imports
    assert "_model_image" in graph["result"]  # ... function-level ones too
    assert cycle_in(graph) is None, " -> ".join(cycle_in(graph))


def test_the_cycle_check_finds_a_cycle():
    graph = import_graph()
    graph["result"] = graph["result"] | {"api"}  # (api imports result)
    assert cycle_in(graph) is not None
