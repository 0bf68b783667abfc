"""Resume is exact on CPU with --deterministic; SIGINT/SIGTERM save and exit 130/143; NaN stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _train_helpers import TINY_MODEL

from segtool.core.errors import Interrupted, SegtoolError
from segtool.engine.checkpoint import load_checkpoint
from segtool.engine.launch import plan_training
from segtool.engine.signals import StopRequest
from segtool.engine.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(data: Path, out: Path, *, stop_at_step=None, resume=None, epochs=2, on_step=None):
    values = {"data": str(data), "format": "demo", "crop": [32, 32], "batch_size": 2, "val_batch_size": 4,
              "epochs": epochs, "workers": 0, "deterministic": True, "device": "cpu", "hflip": True,
              "scale": [0.75, 1.25], "model_options": dict(TINY_MODEL)}
    plan = plan_training("fcn8", values, out=str(out), resume=resume, force=resume is None)
    stop = StopRequest()

    def hook(run):
        if stop_at_step is not None and run.state.step == stop_at_step:
            stop.request(signal.SIGTERM)  # what the SIGTERM handler does
        if on_step is not None:
            on_step(run)

    return train(plan.resolved, plan.source, torch.device("cpu"), plan.run_dir, resume=plan.checkpoint,
                 stop=stop, on_step=hook)


def _metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("img_per_s", "elapsed")} for row in rows]


@pytest.mark.parametrize("stop_step", [4, 6])
def test_interrupted_and_resumed_equals_uninterrupted(tiny_demo, tmp_path, stop_step):
    reference = _run(tiny_demo, tmp_path / "a")
    # 8 train images / batch 2 = 4 steps per epoch: stop after epoch 1's last step (before its
    # validation), or in the middle of epoch 2.
    with pytest.raises(Interrupted) as info:
        _run(tiny_demo, tmp_path / "b", stop_at_step=stop_step)
    assert info.value.exit_code == 143 and "--resume" in str(info.value)
    saved = load_checkpoint(tmp_path / "b" / "last.pt")
    assert saved["step"] == stop_step and saved["epoch"] + 1 == (stop_step + 3) // 4
    resumed = _run(tiny_demo, tmp_path / "b", resume=str(tmp_path / "b" / "last.pt"))

    expected, got = reference.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    assert len(_metrics(tmp_path / "b")) == 2


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_demo, tmp_path):
    def poison(run):
        if run.state.step == 5:  # first step of epoch 2 done: make the next loss NaN
            with torch.no_grad():
                for param in run.model.parameters():
                    param.fill_(float("nan"))

    with pytest.raises(SegtoolError, match=r"loss is nan at step 6 \(epoch 2\)") as info:
        _run(tiny_demo, tmp_path / "n", on_step=poison)
    assert "last good checkpoint" in str(info.value)
    kept = load_checkpoint(tmp_path / "n" / "last.pt")
    assert kept["step"] == 4 and kept["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def _interrupt_training(tiny_demo, out, *, workers: int, send) -> tuple[int, str]:
    """Start a long tiny training run in its own process group, call ``send(proc)`` once it is under way;
    return its exit code and the rest of its stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "segtool", "train", "fcn8", "--data", str(tiny_demo), "--format", "demo",
           "--crop", "32", "--batch-size", "2", "--epochs", "200", "--workers", str(workers), "--device", "cpu",
           "--threads", "1", "--out", str(out), "--model-option", f"width_mult={TINY_MODEL['width_mult']}"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        for line in proc.stderr:  # wait until training (and any loader worker) is under way
            if line.startswith("epoch 1/200") or time.monotonic() > deadline:
                break
        send(proc)
        rest = proc.stderr.read()
        return proc.wait(timeout=60), rest
    finally:
        proc.kill()


@pytest.mark.slow  # a subprocess that imports torch
def test_sigint_saves_a_resumable_checkpoint_and_exits_130(tiny_demo, tmp_path):
    out = tmp_path / "s"
    code, rest = _interrupt_training(tiny_demo, out, workers=0, send=lambda proc: proc.send_signal(signal.SIGINT))
    assert code == 130, rest
    assert "SIGINT received" in rest and "--resume" in rest
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["step"] >= 4 and checkpoint["optimizer"] is not None


@pytest.mark.slow  # a subprocess that imports torch, with a loader worker
def test_sigterm_to_the_whole_process_group_with_loader_workers_saves_and_exits_143(tiny_demo, tmp_path):
    # `timeout`, `kill -- -PGID` and job schedulers signal every process of the group, loader workers included:
    # only the main process may act on it (a worker that dies first turned the run into a traceback).
    out = tmp_path / "t"
    code, rest = _interrupt_training(tiny_demo, out, workers=1, send=lambda proc: os.killpg(proc.pid, signal.SIGTERM))
    assert code == 143, rest
    assert "Traceback" not in rest and "SIGTERM received" in rest and "--resume" in rest
    assert load_checkpoint(out / "last.pt")["step"] >= 4
