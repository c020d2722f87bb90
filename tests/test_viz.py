"""kedro-viz: the static build lists every pipeline's nodes and headless Chromium renders them.

The build runs on a copy of the project's configuration and sources in a temporary folder
(``kedro viz build`` always writes ``./build``), is served over HTTP on 127.0.0.1 (the app
does not load from ``file://``) and is opened in Debian's ``chromium``. Without Chromium the
browser tests skip, unless running as root with ``CI`` set: then they install it first.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phot7dt.pipeline_registry import register_pipelines

pytest.importorskip("kedro_viz", reason="kedro-viz is the viz extra: pip install 'phot7dt[viz]'")

#: One build per test session: keep these tests on one xdist worker (`make test` uses loadgroup).
pytestmark = pytest.mark.xdist_group("kedro_viz")

PROJECT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
    "--virtual-time-budget=15000",
]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() == 0 and os.environ.get("CI"):
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            subprocess.run(command, capture_output=True, timeout=600, check=False)
        found = shutil.which("chromium")
        if found:
            return found
    pytest.skip(
        "headless Chromium not found: install Debian's package (`apt-get install -y "
        "chromium`); this test installs it itself only as root with CI set"
    )


@pytest.fixture(scope="module")
def viz_build(tmp_path_factory) -> Path:
    """``kedro viz build`` of a copy of the project; the ``build`` folder."""
    root = tmp_path_factory.mktemp("viz_project")
    shutil.copy(PROJECT / "pyproject.toml", root)
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(
        PROJECT / "src" / "phot7dt",
        root / "src" / "phot7dt",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # kedro viz build exits 0 even when it fails; its API files say whether it worked.
    assert (root / "build" / "api" / "main").is_file(), (done.stdout + done.stderr)[-2000:]
    return root / "build"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def viz_url(viz_build: Path):
    """The static build served by ``python -m http.server`` on a free local port."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(viz_build),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(f"{url}/api/main", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _browser(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = f"--user-data-dir={tmp_path / 'chromium-profile'}"
    return subprocess.run(
        [chromium, *BROWSER_FLAGS, profile, *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _task_names(build: Path, pipeline: str) -> set[str]:
    data = json.loads((build / "api" / "pipelines" / pipeline).read_text())
    return {node["name"] for node in data["nodes"] if node["type"] == "task"}


def test_static_build_lists_every_node_of_every_pipeline(viz_build: Path):
    for name, pipeline in register_pipelines().items():
        expected = {node.name for node in pipeline.nodes}
        assert expected <= _task_names(viz_build, name), name


@pytest.mark.parametrize("pipeline", ["full", "simulate", "validate", "report"])
def test_browser_renders_every_node(viz_build: Path, viz_url: str, tmp_path: Path, pipeline: str):
    chromium = _chromium()
    dom = _browser(chromium, tmp_path, "--dump-dom", f"{viz_url}/?pid={pipeline}").stdout
    missing = sorted(n for n in _task_names(viz_build, pipeline) if n not in dom)
    assert not missing, f"nodes of {pipeline} not in the rendered page: {missing}"


def test_screenshot_of_full_is_not_blank(viz_url: str, tmp_path: Path):
    chromium = _chromium()
    shot = tmp_path / "viz_full.png"
    _browser(chromium, tmp_path, f"--screenshot={shot}", f"{viz_url}/?pid=full")
    grey = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert grey.shape == (1000, 1600)
    assert grey.std() > 10.0, "the kedro-viz screenshot is blank"
