"""fcn8: the SPEC architecture, and the fused 8x head against the layer-by-layer chain."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segtool.models import create_model
from segtool.models.fcn8 import FCN8
from segtool.models.fcn8_fused_head import bias_response, compose_head, fused_head_forward

pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise_head(model: FCN8, seed: int = 0) -> None:
    """Non-trivial biases and weights, so the bias map and the border ring matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (model.upsample_81, model.upsample_82, model.final):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) / layer.weight[0].numel() ** 0.5)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))


def _forward_both(model: FCN8, x: torch.Tensor, *, grads: bool):
    """Outputs (and parameter gradients) of the fused and the layer-by-layer head on the same weights."""
    results = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad(set_to_none=True)
        out = model(x)
        grad = None
        if grads:
            # A loss that weights every output pixel differently, so border errors cannot cancel.
            weights = torch.linspace(-1, 1, out.numel()).view_as(out)
            (out * weights).sum().backward()
            grad = {name: p.grad.clone() for name, p in model.named_parameters()}
        results.append((out.detach(), grad))
    return results


def _assert_close(fused, layered, grads: bool) -> None:
    (out_f, grad_f), (out_l, grad_l) = fused, layered
    scale = out_l.abs().max()
    assert (out_f - out_l).abs().max() <= 1e-4 * scale
    if grads:
        for name, g_l in grad_l.items():
            err = (grad_f[name] - g_l).abs().max() / g_l.abs().max().clamp_min(1e-12)
            assert err <= 1e-3, f"gradient of {name} differs by {err:.2e} (relative)"


def test_parameter_count_and_layer_names():
    model = create_model("fcn8", 21)
    assert sum(p.numel() for p in model.parameters()) == 31_899_372
    names = {key.split(".")[0] for key in model.state_dict()}
    assert names == {"stage1", "stage2", "stage3", "stage4", "stage5", "upsample_2", "upsample_4",
                     "upsample_81", "upsample_82", "final"}
    # ReLU comes before BatchNorm in every conv block.
    block = list(model.stage3)
    assert [type(m) for m in block[:3]] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]


def test_fused_and_layered_share_one_state_dict():
    fused = create_model("fcn8", 3, fused=True, width_mult=0.0625)
    layered = create_model("fcn8", 3, fused=False, width_mult=0.0625)
    layered.load_state_dict(fused.state_dict())
    fused.eval(), layered.eval()
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        a, b = fused(x), layered(x)
    assert (a - b).abs().max() <= 1e-4 * b.abs().max()


@pytest.mark.parametrize("size", [(32, 32), (64, 96)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fused_head_matches_layers_narrow(size, mode):
    torch.manual_seed(0)
    model = FCN8(5, width_mult=0.0625)  # head of 16 + 32 + 5 = 53 channels
    _randomise_head(model)
    model.train(mode == "train")
    x = torch.randn(2, 3, *size)
    fused, layered = _forward_both(model, x, grads=True)
    assert fused[0].shape == (2, 5, *size)
    _assert_close(fused, layered, grads=True)


@pytest.mark.slow
def test_fused_head_matches_layers_real_789_channel_head():
    torch.manual_seed(0)
    model = FCN8(21)  # the SPEC model: 768 + 21 = 789 head channels
    assert model.final.in_channels == 789
    _randomise_head(model)
    model.train()
    x = torch.randn(1, 3, 32, 64)  # non-square, head input 4 x 8
    fused, layered = _forward_both(model, x, grads=True)
    _assert_close(fused, layered, grads=True)


def test_head_functions_exact_in_float64():
    torch.manual_seed(1)
    c, n = 12, 3
    up81 = nn.ConvTranspose2d(c, c, 4, 4).double()
    up82 = nn.ConvTranspose2d(c, c, 4, 2, 1).double()
    final = nn.Conv2d(c, n, 7, padding=3).double()
    for layer in (up81, up82, final):
        nn.init.normal_(layer.bias)
    for h, w in [(1, 1), (2, 5), (3, 2)]:
        x = torch.randn(2, c, h, w, dtype=torch.float64)
        composed = compose_head(up81.weight, up82.weight, final.weight)
        bias = bias_response(up81.bias, up82.bias, final.bias, up82.weight, final.weight, h, w)
        got = fused_head_forward(x, composed, bias)
        want = final(up82(up81(x)))
        assert (got - want).abs().max() < 1e-10


def test_eval_cache_reused_and_invalidated_by_weight_changes():
    torch.manual_seed(0)
    model = FCN8(4, fused=True, width_mult=0.0625).eval()
    _randomise_head(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        first = model(x)
        composed = model._head_cache._composed
        model(x)
        assert model._head_cache._composed is composed  # reused, not recomposed

    # An optimizer step changes the weights in place: the next eval call must recompose.
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(2, 3, 32, 32)).square().mean().backward()
    optim.step()
    model.eval()
    with torch.no_grad():
        after_step = model(x)
        model.fused = False
        reference = model(x)
        model.fused = True
    assert not torch.allclose(after_step, first)
    assert (after_step - reference).abs().max() <= 1e-4 * reference.abs().max()

    # So must load_state_dict.
    other = FCN8(4, width_mult=0.0625).eval()
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        loaded = model(x)
        other.fused = False
        expected = other(x)
    assert (loaded - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_eval_with_gradients_recomposes_so_head_weights_get_gradients():
    model = FCN8(3, fused=True, width_mult=0.0625).eval()
    model(torch.randn(1, 3, 32, 32)).sum().backward()
    assert model.final.weight.grad is not None and model.upsample_81.weight.grad.abs().sum() > 0


def test_auto_rule_picks_the_cheaper_head():
    model = FCN8(21)
    model.train()
    small = torch.empty(1, 789, 4, 4, device="meta")  # a 32x32 image
    large = torch.empty(8, 789, 28, 28, device="meta")  # batch 8 at 224x224
    assert not model.use_fused_head(small)
    assert model.use_fused_head(large)
    model.fused = False
    assert not model.use_fused_head(large)
    model.fused = True
    assert model.use_fused_head(small)
