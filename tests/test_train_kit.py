"""The training kit end to end on the tiny demo: accumulation, EMA, warm-up, --val-every, --best-metric,
early stop; exact resume after a SIGTERM mid-epoch with all of them on; one-line errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from _train_helpers import TINY_MODEL, train_args

from segtool.core.errors import Interrupted
from segtool.engine.checkpoint import load_checkpoint
from segtool.engine.launch import plan_training
from segtool.engine.run_state import TrainState
from segtool.engine.signals import StopRequest
from segtool.engine.train import train
from segtool.engine.train_step import train_step

pytestmark = pytest.mark.usefixtures("one_thread")

KIT = {"accumulate": 2, "ema": 0.9, "warmup_steps": 3, "clip_grad": 1.0, "best_metric": "loss",
       "loss": "ce:1,dice:0.5"}


def _run(data: Path, out: Path, extra: dict, *, stop_at_step=None, resume=None):
    values = {"data": str(data), "format": "demo", "crop": [32, 32], "batch_size": 1, "val_batch_size": 4,
              "workers": 0, "deterministic": True, "device": "cpu", "scale": [0.75, 1.25],
              "model_options": dict(TINY_MODEL), **KIT, **extra}
    plan = plan_training("fcn8", values, out=str(out), resume=resume, force=resume is None)
    stop = StopRequest()

    def hook(run):
        if stop_at_step is not None and run.state.step == stop_at_step:
            stop.request(signal.SIGTERM)

    return train(plan.resolved, plan.source, torch.device("cpu"), plan.run_dir, resume=plan.checkpoint,
                 stop=stop, on_step=hook, force=resume is None)


def _rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("img_per_s", "elapsed")} for row in rows]


# 8 images, batch 1, --accumulate 2: 4 optimizer steps per epoch.
@pytest.mark.parametrize(("extra", "stop_at", "last_step"), [
    ({"epochs": 3, "val_every": "1", "early_stop": 2, "min_delta": 10.0}, 2, 3),  # early stop at step 3
    ({"epochs": 2, "val_every": "3"}, 3, 8),  # SIGTERM where a validation is due
    ({"epochs": 2, "val_every": "1e"}, 5, 8),  # mid-epoch 2
])
def test_sigterm_and_resume_equal_the_uninterrupted_run_with_every_option_on(tiny_demo, tmp_path, extra, stop_at,
                                                                             last_step):
    reference = _run(tiny_demo, tmp_path / "a", extra)
    with pytest.raises(Interrupted):
        _run(tiny_demo, tmp_path / "b", extra, stop_at_step=stop_at)
    saved = load_checkpoint(tmp_path / "b" / "last.pt")
    assert saved["step"] == stop_at and saved["ema"]["updates"] == stop_at
    resumed = _run(tiny_demo, tmp_path / "b", extra, resume=str(tmp_path / "b" / "last.pt"))

    assert reference.state.step == resumed.state.step == last_step
    assert reference.state.stop_reason == resumed.state.stop_reason
    expected, got = reference.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    ema_a, ema_b = (load_checkpoint(p / "last.pt")["ema"]["model"] for p in (tmp_path / "a", tmp_path / "b"))
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    best_a, best_b = (load_checkpoint(p / "best.pt")["best"] for p in (tmp_path / "a", tmp_path / "b"))
    assert best_a == best_b and best_a["metric"] == "loss"


def test_early_stop_reason_rows_and_ema_weights_in_best_pt(tiny_demo, tmp_path):
    result = _run(tiny_demo, tmp_path / "e", {"epochs": 3, "val_every": "1", "early_stop": 2, "min_delta": 10.0})
    assert result.state.stop_reason.startswith("early stop: loss did not improve by more than 10 in 2 validations")
    rows = _rows(tmp_path / "e")
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["val_loss"] is not None for r in rows)
    best = load_checkpoint(tmp_path / "e" / "best.pt")
    assert best["step"] == 1 and best["best"]["step"] == 1
    assert any(not torch.equal(best["ema"]["model"][k], best["model"][k]) for k in best["model"]
               if best["model"][k].is_floating_point())


def test_val_every_in_steps_logs_rows_without_validation_at_epoch_ends(tiny_demo, tmp_path):
    _run(tiny_demo, tmp_path / "v", {"epochs": 2, "val_every": "3", "accumulate": 1, "max_steps": 10})
    rows = _rows(tmp_path / "v")
    # epoch ends at 8 (no validation), validations at 3, 6, 9 and after the last step (10)
    assert [(r["step"], r["val_loss"] is not None) for r in rows] == [
        (3, True), (6, True), (8, False), (9, True), (10, True)]


def test_accumulated_batches_give_the_gradient_of_the_whole_batch():
    def fake_run(model):
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        from segtool.ops.losses import SegmentationLoss

        return SimpleNamespace(
            optimizer=opt, model=model, eager_model=None, device=torch.device("cpu"), loss_fn=SegmentationLoss("ce"),
            config=SimpleNamespace(channels_last=False, amp=False, clip_grad=None),
            stop=SimpleNamespace(signum=None, requested=False), state=TrainState(), ema=None,
            scaler=torch.amp.GradScaler("cpu", enabled=False), scheduler=SimpleNamespace(step=lambda: None))

    torch.manual_seed(0)
    images, masks = torch.randn(4, 3, 6, 6), torch.randint(0, 3, (4, 6, 6))
    whole, split = torch.nn.Conv2d(3, 3, 1), torch.nn.Conv2d(3, 3, 1)
    split.load_state_dict(whole.state_dict())
    loss_whole = train_step(fake_run(whole), [(images, masks)])
    loss_split = train_step(fake_run(split), [(images[:2], masks[:2]), (images[2:], masks[2:])])
    assert loss_split == pytest.approx(loss_whole, rel=1e-5)
    assert torch.allclose(whole.weight, split.weight, atol=1e-6) and torch.allclose(whole.bias, split.bias, atol=1e-6)


@pytest.mark.parametrize(("args", "message"), [
    (["--loss", "nosuch"], "unknown loss 'nosuch'"),
    (["--loss", "ce:x"], "weight 'x' of ce is not a number"),
    (["--accumulate", "0"], "--accumulate must be at least 1"),
    (["--ema", "1.5"], "--ema DECAY must be in (0, 1)"),
    (["--best-metric", "iou:nosuch"], "no class 'nosuch' in the dataset"),
    (["--early-stop", "3", "--val-every", "0"], "--early-stop needs validation"),
    (["--loss-option", "gamma=2"], "gamma: not an option of --loss ce"),
])
def test_bad_kit_options_are_one_error_line_and_leave_no_run_dir(cli, tiny_demo, tmp_path, args, message):
    out = tmp_path / "run"
    result = cli(*train_args(tiny_demo, out, *args))
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert not out.exists()


def test_tensorboard_not_installed_names_the_extra(cli, tiny_demo, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    result = cli(*train_args(tiny_demo, tmp_path / "run", "--tensorboard"))
    assert result.exit_code == 1 and "pip install 'segtool[tensorboard]'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_tensorboard_scalars_per_class_iou_and_overlays(cli, tiny_demo, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    result = cli(*train_args(tiny_demo, out, "--tensorboard", "--max-steps", "2"))
    assert result.exit_code == 0, result.stderr
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/lr", "train/train_loss", "train/img_per_s", "val/miou", "val/val_loss",
            "iou/background"} <= scalars
    assert [s.step for s in events.Scalars("train/loss_step")] == [1, 2]
    assert events.Tags()["images"] == ["val/image_gt_prediction"]
    assert (out / "metrics.jsonl").is_file() and (out / "metrics.csv").is_file()


DDP_SCRIPT = """
import json, os, sys, torch
torch.set_num_threads(1)
from segtool.engine.launch import plan_training
from segtool.engine.train import train
data, out, model_options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
values = {"data": data, "format": "demo", "crop": [32, 32], "batch_size": 2, "val_batch_size": 2, "epochs": 2,
          "workers": 0, "device": "cpu", "model_options": model_options, "dist_timeout": 60,
          "accumulate": 2, "ema": 0.9, "clip_grad": 1.0, "warmup_steps": 1}
plan = plan_training("fcn8", values, out=out, force=True)
result = train(plan.resolved, plan.source, torch.device("cpu"), plan.run_dir)
torch.save(result.model.state_dict(), os.path.join(out, f"weights-rank{os.environ['RANK']}.pt"))
"""


@pytest.mark.slow  # two processes that import torch and train
def test_accumulation_and_ema_under_two_gloo_ranks(tiny_demo, tmp_path):
    from test_ddp import _finish, _free_port

    out, port = tmp_path / "ddp", _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", DDP_SCRIPT, str(tiny_demo), str(out),
                                       json.dumps(TINY_MODEL)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    for code, output in _finish(procs, timeout=240):
        assert code == 0, output
    rank0, rank1 = (torch.load(out / f"weights-rank{r}.pt", weights_only=True) for r in (0, 1))
    # no_sync batches, one all-reduce per step: the same parameters on both ranks (BatchNorm statistics are
    # each rank's own between DDP's broadcasts, as in any DDP run whose last forward is not DDP's)
    params = [k for k in rank0 if "running_" not in k and "num_batches" not in k]
    assert all(torch.equal(rank0[k], rank1[k]) for k in params)
    saved = torch.load(out / "last.pt", weights_only=True)
    # 8 images / 2 ranks / batch 2 = 2 batches per rank and epoch = 1 optimizer step with --accumulate 2
    assert saved["step"] == 2 and saved["ema"]["updates"] == 2
