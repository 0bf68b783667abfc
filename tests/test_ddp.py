"""DistributedDataParallel on CPU (gloo) with two processes, launched the way torchrun launches them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _train_helpers import TINY_MODEL

pytestmark = pytest.mark.slow  # two processes that import torch and train

# One rank: what `torchrun --nproc-per-node 2 -m segtool train ...` runs in each process, plus a
# dump of the final weights so the test can compare the ranks.
RANK_SCRIPT = """
import json, os, sys, torch
torch.set_num_threads(1)
from segtool.engine.launch import plan_training
from segtool.engine.train import train
data, out, fail_rank, model_options = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
values = {"data": data, "format": "demo", "crop": [32, 32], "batch_size": 2, "val_batch_size": 2, "epochs": 2,
          "workers": 0, "device": "cpu", "model_options": model_options, "dist_timeout": 60}
plan = plan_training("fcn8", values, out=out, force=True)
rank = int(os.environ["RANK"])
def fail(run):
    if rank == fail_rank and run.state.step == 1:
        raise RuntimeError(f"rank {rank} fails on purpose")
result = train(plan.resolved, plan.source, torch.device("cpu"), plan.run_dir, on_step=fail)
torch.save(result.model.state_dict(), os.path.join(out, f"weights-rank{rank}.pt"))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(data: Path, out: Path, fail_rank: int = -1) -> list[subprocess.Popen]:
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, str(data), str(out), str(fail_rank),
                                       json.dumps(TINY_MODEL)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def _finish(procs, timeout: float) -> list[tuple[int, str]]:
    results = []
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            results.append((None, output))
            continue
        results.append((proc.returncode, output))
    return results


def test_two_gloo_ranks_end_with_identical_weights(tiny_demo, tmp_path):
    out = tmp_path / "ddp"
    results = _finish(_launch(tiny_demo, out), timeout=240)
    for code, output in results:
        assert code == 0, output
    rank0 = torch.load(out / "weights-rank0.pt", weights_only=True)
    rank1 = torch.load(out / "weights-rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # Only rank 0 writes the run: one row per epoch, steps counted per rank (8 images / 2 ranks / batch 2).
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 2), (2, 4)]
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 4
    # The checkpoint holds the same weights the ranks ended with.
    saved = torch.load(out / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(saved[k], rank0[k]) for k in rank0)


def test_a_failing_rank_makes_the_other_exit(tiny_demo, tmp_path):
    started = time.monotonic()
    results = _finish(_launch(tiny_demo, tmp_path / "fail", fail_rank=1), timeout=120)
    assert time.monotonic() - started < 120
    (code0, out0), (code1, out1) = results
    assert code1 not in (0, None) and "fails on purpose" in out1
    assert code0 not in (0, None), out0  # rank 0 did not hang waiting for rank 1
