"""`segtool profile`: counts against torchvision's published figures, measurements, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from _train_helpers import TINY_MODEL, random_checkpoint

from segtool.deploy.costs import count_costs

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fcn_resnet50_matches_torchvision_published_figures():
    costs = count_costs("tv:fcn_resnet50", 21, (520, 520))
    # torchvision's weights meta: _ops 152.717 "GFLOPS" (MACs, aux head included), num_params 35,322,218.
    assert round(costs["train_macs"] / 1e9, 3) == 152.717
    assert costs["params"] == 35_322_218 == costs["trainable_params"]
    assert costs["eval_flops"] == 2 * costs["eval_macs"]
    assert costs["eval_macs"] < costs["train_macs"]  # segtool's eval skips the aux head


def test_lraspp_matches_torchvision_published_figure():
    costs = count_costs("tv:lraspp_mobilenet_v3_large", 21, (520, 520))
    assert round(costs["eval_macs"] / 1e9, 3) == 2.086


def test_grouped_conv_backward_counted_once_per_gradient():
    from segtool.deploy.costs import _count_flops

    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    forward = _count_flops(lambda: conv(x))
    both = _count_flops(lambda: conv(x).sum().backward())
    assert both == 3 * forward  # forward + grad-input + grad-weight, not groups times more


def test_fcn8_heads_side_by_side(cli):
    result = cli("profile", "fcn8", "--size", "64", "--no-timing", "--json",
                 "--model-option", f"width_mult={TINY_MODEL['width_mult']}")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    fused, layered = report["variants"]
    assert (fused["variant"], layered["variant"]) == ("fused head", "layer-by-layer head")
    assert fused["params"] == layered["params"]
    assert fused["eval_macs"] < layered["eval_macs"]


def test_checkpoint_measured_eval_and_train_step(cli, tmp_path):
    ckpt = random_checkpoint(tmp_path / "random.pt")
    result = cli("profile", ckpt, "--batch", "1,2", "--runs", "2", "--warmup", "1", "--device", "cpu", "--json",
                 "--model-option", "fused=true")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["size"] == [32, 32] and report["checkpoint_bytes"] == ckpt.stat().st_size
    (row,) = report["variants"]
    assert [m["batch"] for m in row["eval"]] == [1, 2]
    for m in (*row["eval"], row["train_step"]):
        assert m["runs"] == 2 and 0 < m["median_ms"] <= m["p90_ms"] and m["images_per_s"] > 0


@pytest.mark.parametrize("args, message", [
    (("nosuchnet",), "unknown model 'nosuchnet'"),
    (("fcn8", "--size", "50x64"), "not a multiple of 32 (use --size 64x64"),
    (("missing/last.pt",), "checkpoint not found"),
])
def test_bad_input_is_one_error_line(cli, args, message):
    result = cli("profile", *args, "--no-timing")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1


def test_checkpoint_without_model_metadata(cli, tmp_path):
    path = tmp_path / "bare.pt"
    torch.save({"format": "segtool-checkpoint", "format_version": 1, "model": {}}, path)
    result = cli("profile", path, "--no-timing")
    assert result.exit_code == 1 and "no model metadata (model_name, num_classes missing)" in result.stderr


def test_bad_batch_list_is_a_usage_error(cli):
    result = cli("profile", "fcn8", "--batch", "1,x", "--no-timing")
    assert result.exit_code == 2 and "--batch" in result.stderr
