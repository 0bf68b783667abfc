"""`segtool train` / `evaluate` on published layouts: a --val-fraction split recorded in the run and
reused by evaluate and --resume; crops that are not multiples of the model's stride."""

from __future__ import annotations

import json

import pytest
import torch
from test_real_layouts import make_bag, make_segnet_camvid

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--model-option", "width_mult=0.125", "--batch-size", "2", "--workers", "0", "--device", "cpu"]


def test_bag_train_val_fraction_then_evaluate_and_resume(cli, tmp_path):
    data = make_bag(tmp_path / "bag", count=10, size=(30, 40))
    out = tmp_path / "run"
    result = cli("train", "fcn8", "--data", data, "--binary", "--val-fraction", "0.2", "--crop", "30x40",
                 "--epochs", "1", "--out", out, *TINY)
    assert result.exit_code == 0, result.stderr
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["config"]["val_fraction"] == 0.2 and checkpoint["config"]["binary"] is True
    assert "val_fraction: 0.2" in (out / "config.yaml").read_text()
    result = cli("evaluate", out / "last.pt", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["images"] == 2  # the held-out 20 %, not all 10 images
    result = cli("train", "fcn8", "--resume", out / "last.pt", "--epochs", "2", *TINY)
    assert result.exit_code == 0, result.stderr
    assert torch.load(out / "last.pt", weights_only=True)["config"]["val_fraction"] == 0.2


def test_camvid_crop_not_a_multiple_of_32(cli, tmp_path):
    data = make_segnet_camvid(tmp_path / "CamVid", size=(36, 48))
    out = tmp_path / "run"
    result = cli("train", "fcn8", "--data", data, "--crop", "36x48", "--epochs", "1", "--max-steps", "1",
                 "--out", out, *TINY)
    assert result.exit_code == 0, result.stderr
    assert "multiples" not in result.stderr


def test_bad_val_fraction_leaves_no_run_dir(cli, tmp_path):
    data = make_bag(tmp_path / "bag", count=4)
    out = tmp_path / "run"
    result = cli("train", "fcn8", "--data", data, "--binary", "--val-fraction", "1.5", "--out", out, *TINY)
    assert result.exit_code != 0 and "--val-fraction" in result.stderr
    assert not out.exists()


def test_input_scale_scores_at_full_label_resolution(cli, tmp_path):
    from segtool.engine.inference import model_logits

    model = torch.nn.Conv2d(3, 4, 1)
    logits = model_logits(model, torch.rand(2, 3, 36, 50), 32, None, None, input_scale=0.5)
    assert logits.shape == (2, 4, 36, 50)
    data = make_segnet_camvid(tmp_path / "CamVid", size=(36, 48))
    out = tmp_path / "run"
    result = cli("train", "fcn8", "--data", data, "--input-scale", "0.5", "--crop", "18x24", "--max-steps", "1",
                 "--out", out, *TINY)
    assert result.exit_code == 0, result.stderr
    result = cli("evaluate", out / "last.pt", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["num_pixels"] == 2 * 36 * 48 * 11 // 12  # every labelled pixel, void left out
