"""Shared test helpers: a CLI runner with separate stdout/stderr and the real-data fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segtool.cli.app import app
from segtool.core.console import set_quiet


@pytest.fixture
def cli():
    """``cli(*args, input=None)`` runs segtool in-process and returns click's Result."""
    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        set_quiet(False)
        return runner.invoke(app, [str(a) for a in args], input=input, env=env)

    return invoke


def _fixtures_root() -> Path | None:
    env = os.environ.get("SEGTOOL_FIXTURES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent.parent
    candidates.append(here.parent / "shared" / "fixtures")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def fixtures_dir() -> Path:
    """The real VOC/CamVid samples in ../shared/fixtures; the test is skipped when absent."""
    root = _fixtures_root()
    if root is None:
        pytest.skip("real-data fixtures not found (../shared/fixtures or $SEGTOOL_FIXTURES)")
    return root


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """The tiny demo set of ``_train_helpers.TINY_DEMO``, made once for the whole session."""
    from _train_helpers import make_tiny_demo

    return make_tiny_demo(tmp_path_factory.mktemp("data") / "demo")


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from 2 threads and lose 5-20x when another process holds a core
    (every operator waits for the thread that lost its core). Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
