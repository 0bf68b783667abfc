"""ModelEma: the average it keeps, its decay warm-up, integer buffers, and its checkpoint state."""

from __future__ import annotations

import pytest
import torch

from segtool.engine.ema import ModelEma


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


def test_ema_is_the_decayed_average_of_the_weights_after_each_step():
    model = _model()
    ema = ModelEma(model, decay=0.5)
    expected = {k: v.clone().float() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for n in range(4):
        model(torch.randn(2, 3, 8, 8)).square().mean().backward()
        opt.step()
        opt.zero_grad()
        ema.update(model)
        decay = min(0.5, (1 + n) / (10 + n))
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                expected[key] = decay * expected[key] + (1 - decay) * value
    got = ema.module.state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            assert got[key] == model.state_dict()[key] == 4  # integer buffers are copied
        else:
            assert torch.allclose(got[key], value, atol=1e-6), key
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training


def test_ema_state_round_trip_continues_the_same_average():
    model = _model()
    a = ModelEma(model, 0.9)
    for _ in range(3):
        with torch.no_grad():
            model[0].weight.add_(0.1)
        a.update(model)
    b = ModelEma(_model(), 0.9)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        model[0].weight.add_(0.1)
    a.update(model)
    b.update(model)
    assert b.updates == a.updates == 4
    assert all(torch.equal(x, y) for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values(),
                                                 strict=True))


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1])
def test_ema_decay_outside_0_1_is_refused(decay):
    from segtool.core.errors import SegtoolError
    from segtool.engine.config import TrainConfig
    from segtool.engine.config_layers import validate

    with pytest.raises(SegtoolError, match=r"--ema DECAY must be in \(0, 1\)"):
        validate(TrainConfig(ema=decay))


def test_models_that_cache_derived_weights_see_the_updated_average():
    """fcn8's eval-mode fused head caches kernels keyed on parameter versions: updates must bump them."""
    from segtool.models import create_model

    torch.manual_seed(0)
    model = create_model("fcn8", 3, width_mult=0.125)
    ema = ModelEma(model, 0.5)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ema.module(x)  # fills the cache
        for p in model.parameters():
            p.add_(0.05)
    ema.update(model)
    fresh = create_model("fcn8", 3, width_mult=0.125).eval()
    fresh.load_state_dict(ema.module.state_dict())
    with torch.no_grad():
        assert torch.allclose(ema.module(x), fresh(x), atol=1e-5)
