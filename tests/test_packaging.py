"""Packaging: every third-party import of the package is declared; optional extras stay optional.

The import scan walks the installed (or source) ``phot7dt`` package, so it checks whatever
the tests import; the declared names come from ``pyproject.toml`` beside the tests.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import phot7dt
from phot7dt.pipelines.simulate import render

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGE = Path(phot7dt.__file__).resolve().parent
#: Extras whose modules may be imported only in these package folders (relative to phot7dt/).
EXTRA_HOMES = {
    "sim": ("pipelines/simulate",),
    "dask": ("parallel.py", "pipelines/survey"),
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, str]:
    """Distribution name -> where it is declared ("core" or the extra's name)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    out: dict[str, str] = {}
    for group, requirements in groups.items():
        for requirement in requirements:
            name = _normalise(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))
            out.setdefault(name, group)
    return out


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module name -> package-relative files that import it (absolute imports)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "phot7dt" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(path.relative_to(PACKAGE).as_posix())
    return found


@pytest.mark.skipif(not PYPROJECT.exists(), reason="pyproject.toml is not beside the tests")
def test_every_third_party_import_is_declared_where_it_is_used():
    declared = _declared()
    distributions = packages_distributions()
    imports = _third_party_imports()
    assert {"numpy", "astropy", "galsim", "PIL", "fsspec"} <= set(imports)  # the scan works
    for module, files in sorted(imports.items()):
        # A module not installed here (an extra) counts under its own name.
        names = {_normalise(d) for d in distributions.get(module, [module])}
        groups = {declared[n] for n in names if n in declared}
        assert groups, f"{module} (imported by {sorted(files)}) is not declared in pyproject.toml"
        if "core" in groups:
            continue
        homes = tuple(h for g in groups for h in EXTRA_HOMES.get(g, ()))
        outside = sorted(f for f in files if not f.startswith(homes))
        assert not outside, f"{module} is in extra {sorted(groups)} but imported by {outside}"


def test_registering_the_pipelines_imports_no_optional_extra():
    code = (
        "import sys\n"
        "from phot7dt.pipeline_registry import register_pipelines\n"
        "register_pipelines()\n"
        "extras = ('galsim', 'kedro_viz', 'dask', 'distributed')\n"
        "print(sorted(m for m in extras if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}  # the phot7dt under test
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_simulate_without_galsim_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "galsim", None)  # makes `import galsim` raise ImportError
    with pytest.raises(ImportError, match=r'pip install "phot7dt\[sim\]"'):
        render._galsim()


def test_conf_source_is_the_checkouts_else_the_working_directorys(tmp_path, monkeypatch):
    from phot7dt import project_paths

    checkout = tmp_path / "clone"
    (checkout / "conf" / "base").mkdir(parents=True)
    monkeypatch.setattr(project_paths, "__file__", str(checkout / "src/phot7dt/project_paths.py"))
    assert project_paths.conf_source() == checkout / "conf"

    project = tmp_path / "project"
    (project / "conf" / "base").mkdir(parents=True)
    installed = tmp_path / "site-packages/phot7dt/project_paths.py"
    monkeypatch.setattr(project_paths, "__file__", str(installed))
    monkeypatch.chdir(project)
    assert project_paths.conf_source() == project / "conf"
