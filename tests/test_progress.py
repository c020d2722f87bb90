"""Progress: a tqdm bar on a terminal; in batch jobs, log lines with counts, rate and ETA."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from phot7dt import progress as progress_module
from phot7dt.progress import LogProgress, progress

SRC = Path(__file__).resolve().parents[1] / "src" / "phot7dt"


class FakeClock:
    """``time.monotonic`` that advances only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "phot7dt.progress"]


def test_batch_jobs_get_log_lines_every_tenth_with_rate_and_eta(clock, monkeypatch, caplog):
    monkeypatch.setattr("sys.stderr", io.StringIO())  # redirected, as in a batch job
    caplog.set_level(logging.INFO, logger="phot7dt.progress")
    bar = progress(total=10, desc="fit_patches", unit="patch")
    assert isinstance(bar, LogProgress)
    for _ in range(10):
        clock.now += 6.0
        bar.update()
    bar.close()
    lines = _lines(caplog)
    assert len(lines) == 10  # 10 %, 20 %, ..., 90 %, then the final line
    assert lines[0] == "fit_patches: 1/10 patch (10 %), 0.167 patch/s, elapsed 6 s, ETA 54 s"
    assert lines[8] == "fit_patches: 9/10 patch (90 %), 0.167 patch/s, elapsed 54 s, ETA 6 s"
    assert lines[9] == "fit_patches: done 10/10 patch in 1 min 00 s (0.167 patch/s)"
    assert "\r" not in caplog.text


def test_fast_loops_log_once_and_slow_ones_every_30_s(clock, monkeypatch, caplog):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger="phot7dt.progress")

    def ticking(n, seconds):
        for i in range(n):
            clock.now += seconds
            yield i

    assert list(progress(ticking(1000, 0.001), total=1000, desc="fast", unit="row")) == list(
        range(1000))
    assert _lines(caplog) == ["fast: done 1000/1000 row in 1 s (1e+03 row/s)"]
    caplog.clear()
    list(progress(ticking(100, 31.0), total=100, desc="slow", unit="band"))
    lines = _lines(caplog)
    assert len(lines) == 100  # 99 progress lines (each > 30 s apart) and the final one
    assert lines[1].startswith("slow: 2/100 band (2 %), 0.0323 band/s, elapsed 1 min 02 s, ETA ")


def test_an_interrupted_loop_says_where_it_stopped(clock, monkeypatch, caplog):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger="phot7dt.progress")
    with pytest.raises(RuntimeError):
        with progress(total=4, desc="build_epsf", unit="cell") as bar:
            clock.now += 2.0
            bar.update(1)
            raise RuntimeError("cell failed")
    assert _lines(caplog) == ["build_epsf: stopped at 1/4 cell in 2 s (0.5 cell/s)"]


def test_a_terminal_gets_a_tqdm_bar(monkeypatch):
    monkeypatch.setattr("sys.stderr", Terminal())
    bar = progress(range(3), desc="white stack", unit="chunk")
    assert isinstance(bar, tqdm)
    assert list(bar) == [0, 1, 2]


def test_white_stack_in_a_batch_job_logs_its_progress(monkeypatch, caplog, tmp_path):
    from astropy.io import fits

    from phot7dt.frames import Box, Frame, FrameSet
    from phot7dt.pipelines.ingest import nodes

    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setattr(nodes, "WHITE_STACK_CHUNK_ROWS", 4)
    caplog.set_level(logging.INFO, logger="phot7dt.progress")
    fits.PrimaryHDU(np.ones((10, 6), np.float32)).writeto(tmp_path / "a.fits")
    frame = Frame("a", str(tmp_path / "a.fits"), 0, 25.0, 1.0, 1.0, np.inf, np.inf, 3.0, 1.0)
    frames = FrameSet((frame,), Box(0, 0, 6, 10), (10, 6), 25.0, "")
    nodes.build_white_stack(frames, {"white_stack_workers": 1})
    assert re.fullmatch(r"white stack: done 3/3 chunk in \d+ s \(.* chunk/s\)", _lines(caplog)[-1])


def test_tqdm_is_used_by_the_progress_helper_only():
    users = [
        str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
        if path.name != "progress.py"
        and re.search(r"^\s*(from tqdm|import tqdm)", path.read_text(), re.MULTILINE)
    ]
    assert users == []
