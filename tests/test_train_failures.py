"""`segtool train` fails before it creates anything, refuses values that cannot train, keeps the
last good checkpoint when numbers go bad, and cleans up after a kill (issue 14, classes 2, 3, 6)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from _train_helpers import TINY_MODEL, train_args

from segtool.core.errors import Interrupted, SegtoolError
from segtool.engine.checkpoint import load_checkpoint
from segtool.engine.config import load_yaml_config
from segtool.engine.launch import plan_training
from segtool.engine.loaders import worker_count
from segtool.engine.run_dir import find_latest_run, record_run
from segtool.engine.signals import StopRequest
from segtool.engine.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_error_line(stderr: str) -> str:
    """The one error line (notices such as ``device: cpu`` may come before it), no traceback."""
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and stderr.rstrip().endswith(errors[0]) and "Traceback" not in stderr, stderr
    return errors[0]


@pytest.mark.parametrize("extra, expected", [
    (["--crop", "100000x100000"], "at most 8192"),
    (["--scale", "2.0,0.5"], "0 < LOW <= HIGH"),
    (["--palette", "no-such-palette"], "unknown palette"),
    (["--class-weights", "missing-weights.txt"], "class-weights file not found"),
    (["--lr", "inf"], "lr: must be a finite number"),
    (["--dist-timeout", "0"], "dist_timeout must be at least 1"),
    (["--val-batch-size", "0"], "val_batch_size must be at least 1"),
])
def test_a_mistake_fails_in_one_line_before_the_run_dir_exists(cli, tmp_path, tiny_demo, extra, expected):
    out = tmp_path / "run"
    result = cli(*train_args(tiny_demo, out, *extra))
    assert result.exit_code == 1
    assert expected in _one_error_line(result.stderr)
    assert not out.exists()  # so the corrected command needs no --force


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_creates_nothing(cli, tmp_path, tiny_demo):
    args = [a if a != "cpu" else "cuda" for a in train_args(tiny_demo, tmp_path / "run")]
    result = cli(*args)
    assert result.exit_code == 1 and "CUDA is not available" in _one_error_line(result.stderr)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, expected", [
    ("max_steps: true\n", "max_steps: invalid value True"),
    ("hflip: 1\n", "hflip: invalid value 1"),
    ("lr: .nan\n", "lr: must be a finite number"),
    ("scale: [0.5, .inf]\n", "scale: must be finite"),
])
def test_yaml_values_of_the_wrong_kind_are_refused(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(SegtoolError, match=expected.replace(".", r"\.").replace("[", r"\[")):
        load_yaml_config(path)


def test_yaml_nested_100000_deep_is_one_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SegtoolError, match="nested too deeply"):
        load_yaml_config(path)


def test_workers_beyond_the_machine_are_capped(capsys):
    assert worker_count(2) == 2
    assert 2 <= worker_count(1000) < 1000
    assert "capped at" in capsys.readouterr().err


def _run(data: Path, out: Path, *, epochs=2, on_step=None, resume=None, **values):
    values = {"data": str(data), "format": "demo", "crop": [32, 32], "batch_size": 2, "val_batch_size": 4,
              "epochs": epochs, "workers": 0, "device": "cpu", "model_options": dict(TINY_MODEL), **values}
    plan = plan_training("fcn8", values, out=str(out), resume=resume)
    stop = StopRequest()
    hook = (lambda run: on_step(run, stop)) if on_step else None
    return train(plan.resolved, plan.source, torch.device("cpu"), plan.run_dir, resume=plan.checkpoint,
                 stop=stop, on_step=hook)


def _poison(run) -> None:
    with torch.no_grad():
        for param in run.model.parameters():
            param.fill_(float("nan"))


def test_non_finite_weights_after_the_last_step_keep_the_last_good_checkpoints(tiny_demo, tmp_path):
    # 8 images / batch 2 = 4 steps an epoch; NaN weights after step 8: no further loss shows it, only
    # the validation loss and the weights do.
    def poison_at_end(run, stop):
        if run.state.step == 8:
            _poison(run)

    with pytest.raises(SegtoolError, match=r"not finite after step 8 \(epoch 2\).*last good checkpoint"):
        _run(tiny_demo, tmp_path / "n", on_step=poison_at_end)
    for name in ("last.pt", "best.pt"):
        kept = load_checkpoint(tmp_path / "n" / name)
        assert kept["step"] == 4
        assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_no_run_dir(tiny_demo, tmp_path):
    def poison_early(run, stop):
        _poison(run)

    with pytest.raises(SegtoolError, match="no checkpoint was saved yet"):
        _run(tiny_demo, tmp_path / "gone", on_step=poison_early)
    assert not (tmp_path / "gone").exists()


def test_resume_cleans_temp_files_and_remakes_an_interrupted_copy(tiny_demo, tmp_path):
    run_dir = tmp_path / "r"

    def stop_in_epoch_2(run, stop):
        if run.state.step == 5:
            stop.request(signal.SIGTERM)

    with pytest.raises(Interrupted, match=r"at step 5 \(epoch 2, 1 step in\)"):
        _run(tiny_demo, run_dir, save_every=1, on_step=stop_in_epoch_2)
    # What a kill -9 during epoch 1's copies would have left: epoch-001.pt never written, temp files.
    saved = load_checkpoint(run_dir / "last.pt")
    saved_copies = saved["copies"]
    assert saved_copies == []  # the SIGTERM save made no copies; fake the epoch-1 save instead
    epoch1 = torch.load(run_dir / "epoch-001.pt", weights_only=True)  # a full copy (best.pt: weights only)
    assert epoch1["copies"] == ["best.pt", "epoch-001.pt"] and epoch1["step"] == 4
    (run_dir / "last.pt").write_bytes((run_dir / "epoch-001.pt").read_bytes())
    (run_dir / "epoch-001.pt").unlink()
    (run_dir / ".epoch-001.pt.tmp").write_bytes(b"half a checkpoint")
    (run_dir / ".last.pt.k2j3.tmp").write_bytes(b"half a checkpoint")
    (run_dir / ".notes.tmp").write_text("not ours")

    _run(tiny_demo, run_dir, save_every=1, resume=str(run_dir / "last.pt"))
    assert not (run_dir / ".epoch-001.pt.tmp").exists() and not (run_dir / ".last.pt.k2j3.tmp").exists()
    assert (run_dir / ".notes.tmp").exists()
    assert load_checkpoint(run_dir / "epoch-001.pt")["step"] == 4
    assert load_checkpoint(run_dir / "epoch-002.pt")["step"] == 8


def test_resume_auto_finds_a_run_with_a_custom_out(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    custom = tmp_path / "experiments" / "mine"
    custom.mkdir(parents=True)
    (custom / "last.pt").write_bytes(b"")
    assert find_latest_run("fcn8") is None
    record_run("fcn8", custom)
    assert find_latest_run("fcn8") == custom.resolve()
    assert find_latest_run("bisenetv2") is None
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # runs are found from the folder they were started in
    assert find_latest_run("fcn8") is None


def test_truncated_checkpoint_error_is_whole(tmp_path):
    from _train_helpers import random_checkpoint

    path = random_checkpoint(tmp_path / "c.pt")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(SegtoolError) as info:
        load_checkpoint(path)
    assert str(info.value) == f"{path}: cannot read checkpoint: the file is truncated or not a torch checkpoint"
