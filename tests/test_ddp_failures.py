"""When a DDP rank dies, the survivor prints one line naming it and exits 1 (no DistBackendError
tracebacks); two gloo processes launched the way torchrun launches them (issue 14, class 7)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from _train_helpers import train_args

pytestmark = pytest.mark.slow  # two processes that import torch

# `segtool train` as torchrun runs it in each process; rank 1 dies (as kill -9 would) after one step.
RANK_SCRIPT = """
import os, sys
from segtool.engine import train_step as step_module
step = step_module.train_step
def dying_step(run, *args, **kwargs):
    if int(os.environ["RANK"]) == 1 and run.state.step == 1:
        os._exit(9)
    return step(run, *args, **kwargs)
step_module.train_step = dying_step
from segtool.cli.app import main
sys.argv = ["segtool", *sys.argv[1:]]
main()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_rank_is_one_line_on_the_survivor(tiny_demo, tmp_path):
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": "1"}
        args = train_args(tiny_demo, tmp_path / "run", "--epochs", "2", "--batch-size", "2",
                          "--dist-timeout", "60", "--threads", "1")
        procs.append(subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, *args], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = [proc.communicate(timeout=120) for proc in procs]
    assert procs[1].returncode == 9
    assert procs[0].returncode == 1
    _, stderr = results[0]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]  # notices may come first
    assert len(errors) == 1 and stderr.rstrip().endswith(errors[0]), stderr
    assert errors[0].startswith("error: rank 0 of 2: lost rank 1: ")
    assert "Traceback" not in stderr and "DistBackendError" not in stderr
