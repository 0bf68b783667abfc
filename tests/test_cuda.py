"""The CUDA paths: device resolution, the fused fcn8 head, AMP training, evaluate, predict, stylize, IoU.

Skipped on machines without CUDA (CI); run on a GPU machine with `pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _train_helpers import make_tiny_demo, train_args
from PIL import Image

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def exact_fp32():
    # TF32 would make fp32 comparisons fail for reasons unrelated to segtool.
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def test_resolve_cuda_and_index():
    from segtool.core.device import resolve_device

    assert resolve_device("auto", announce=False).type == "cuda"
    assert resolve_device("cuda:0", announce=False) == torch.device("cuda:0")


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fcn8_fused_head_matches_layers_on_cuda(mode):
    from segtool.models import create_model

    torch.manual_seed(0)
    model = create_model("fcn8", 5, width_mult=0.25).cuda()
    getattr(model, mode)()
    x = torch.randn(2, 3, 64, 96, device="cuda")
    outs, grads = [], []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        out = model(x)
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    scale = outs[1].abs().max()
    assert (outs[0] - outs[1]).abs().max() <= 1e-4 * scale
    for name, grad in grads[1].items():
        rel = (grads[0][name] - grad).norm() / grad.norm().clamp_min(1e-12)
        assert rel <= 1e-3, name


def test_train_amp_evaluate_predict_on_cuda(cli, tmp_path):
    data = make_tiny_demo(tmp_path / "demo")
    run = tmp_path / "run"
    args = train_args(data, run, "--max-steps", "3", "--amp")
    args[args.index("--device") + 1] = "cuda"
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert "device: cuda" in result.stderr
    checkpoint = torch.load(run / "last.pt", weights_only=True, map_location="cpu")
    assert checkpoint["scaler"], "fp16 AMP on CUDA keeps a GradScaler state"

    result = cli("evaluate", run / "last.pt", "--data", data, "--format", "demo", "--device", "cuda", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert 0.0 <= report["miou"] <= 1.0

    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "pred.png"
    result = cli("predict", run / "last.pt", image, "-o", out, "--device", "cuda")
    assert result.exit_code == 0, result.stderr
    assert Image.open(out).size == (56, 40)


def test_stylize_on_cuda(cli, tmp_path):
    rng = np.random.default_rng(0)
    for name in ("c.png", "s.png"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(tmp_path / name)
    out = tmp_path / "out.png"
    result = cli("stylize", tmp_path / "c.png", tmp_path / "s.png", "-o", out, "--random-weights",
                 "--size", "32x48", "--steps", "5", "--device", "cuda", "--json")
    assert result.exit_code == 0, result.stderr
    assert Image.open(out).size == (48, 32)


def test_chunked_iou_on_cuda_equals_cpu():
    from segtool.ops.boxes import best_match, pairwise_iou

    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=gen) * 100
    a = torch.cat([xy, xy + torch.rand(500, 2, generator=gen) * 50 + 1], dim=1)
    b = a.flip(0) + 3
    cpu = pairwise_iou(a, b)
    gpu = pairwise_iou(a.cuda(), b.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)
    best_cpu = best_match(a, b)
    best_gpu = best_match(a.cuda(), b.cuda())
    assert torch.equal(best_cpu[1].cpu(), best_gpu[1].cpu())
