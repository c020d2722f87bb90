"""The layering contract of ``src/phot7dt``, read from every module's imports (function-level too).

- a pipeline imports nothing from another pipeline;
- the engine (``phot7dt.scene``) imports nothing from the rest of phot7dt;
- datasets, ``config`` and the shared top-level modules import no pipeline (only the Kedro
  project glue, ``pipeline_registry`` and ``hooks``, may);
- ``config`` (the parameter models) imports no engine and no dataset.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "phot7dt"
#: Project glue that wires pipelines into Kedro.
GLUE = {"phot7dt.pipeline_registry", "phot7dt.hooks"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the phot7dt modules ``path`` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "phot7dt" or name.startswith("phot7dt.")}


def _modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


def _pipeline(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "pipelines" else None


def _violations(modules: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, imported in modules.items():
        owner = _pipeline(module)
        in_scene = module.startswith("phot7dt.scene")
        for name in sorted(imported):
            target = _pipeline(name)
            if owner and target and target != owner:
                bad.append(f"{module} imports pipeline {target!r} ({name})")
            elif in_scene and not name.startswith("phot7dt.scene") and name != "phot7dt":
                bad.append(f"engine module {module} imports {name}")
            elif not owner and target and module not in GLUE:
                bad.append(f"shared module {module} imports pipeline {target!r} ({name})")
            elif module.startswith("phot7dt.config") and name.startswith(
                ("phot7dt.scene", "phot7dt.datasets")
            ):
                bad.append(f"parameter model {module} imports {name}")
    return bad


def test_the_source_tree_keeps_its_layers():
    modules = _modules()
    assert len(modules) > 100  # the walk found the package
    assert _violations(modules) == []


@pytest.mark.parametrize(
    ("module", "imported", "expected"),
    [
        (
            "phot7dt.pipelines.report.nodes",
            {"phot7dt.pipelines.validate.metrics"},
            "pipeline 'validate'",
        ),
        ("phot7dt.scene.api", {"phot7dt.frames"}, "engine module"),
        ("phot7dt.frames", {"phot7dt.pipelines.psf.nodes"}, "shared module"),
        ("phot7dt.config.epsf", {"phot7dt.scene.psf"}, "parameter model"),
    ],
)
def test_the_contract_catches_each_kind_of_crossing(module, imported, expected):
    assert expected in " ".join(_violations({module: imported}))


def test_relative_imports_are_resolved(tmp_path, monkeypatch):
    pkg = tmp_path / "phot7dt" / "pipelines" / "report"
    pkg.mkdir(parents=True)
    source = pkg / "nodes.py"
    source.write_text("from ..validate import metrics\nfrom . import plots\n")
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path / "phot7dt")
    assert _imports(source) >= {
        "phot7dt.pipelines.validate.metrics",
        "phot7dt.pipelines.report.plots",
    }
