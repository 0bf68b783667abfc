"""Warm-up in front of every schedule, its checkpoint state, and --lr as the one-cycle peak."""

from __future__ import annotations

import io

import pytest
import torch

from segtool.engine.schedules import SCHEDULES, WARMUP_START, build_scheduler, warmup_steps, with_warmup


def _lrs(name, warmup=0, mode="linear", total=20, options=None, base=0.5):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base, momentum=0.9)
    sched = with_warmup(build_scheduler(opt, name, total, steps_per_epoch=5, options=options), warmup, mode)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("mode", ["linear", "exp"])
def test_warmup_scales_the_first_steps_of_any_schedule_and_then_leaves_it_alone(name, mode):
    options = {"step_epochs": 1, "gamma": 0.5} if name == "step" else None
    plain, warm = _lrs(name, options=options), _lrs(name, warmup=4, mode=mode, options=options)
    for step in range(4):
        t = step / 4
        factor = WARMUP_START + (1 - WARMUP_START) * t if mode == "linear" else WARMUP_START ** (1 - t)
        assert warm[step] == pytest.approx(plain[step] * factor, rel=1e-9)
    assert warm[4:] == pytest.approx(plain[4:], rel=1e-9)  # StepLR (chainable) too
    assert warm[0] < warm[1] < warm[2] < warm[3]


def test_warmup_state_survives_a_weights_only_checkpoint():
    param = torch.nn.Parameter(torch.zeros(1))

    def make():
        opt = torch.optim.SGD([param], lr=0.1)
        return opt, with_warmup(build_scheduler(opt, "poly", 10, 5), 5)

    opt, sched = make()
    for _ in range(3):
        opt.step()
        sched.step()
    buffer = io.BytesIO()
    torch.save({"s": sched.state_dict(), "o": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    opt2, sched2 = make()
    opt2.load_state_dict(saved["o"])
    sched2.load_state_dict(saved["s"])
    for _ in range(5):
        opt.step()
        sched.step()
        opt2.step()
        sched2.step()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_warmup_ratio_counts_the_runs_steps():
    assert warmup_steps(200, ratio=0.05) == 10 and warmup_steps(200, steps=7) == 7 and warmup_steps(200) == 0


def test_lr_sets_the_one_cycle_peak_of_the_fcn8_recipe():
    from segtool.engine.config_layers import resolve_config
    from segtool.models import get_model_info

    info = get_model_info("fcn8")
    default = resolve_config("fcn8", info).config
    assert default.schedule == "onecycle" and default.lr == 0.1  # the recipe's max_lr, now shown as lr
    ours = resolve_config("fcn8", info, {}, {"lr": 0.05}).config
    lrs = _lrs("onecycle", total=20, options=ours.schedule_options, base=ours.lr)
    assert max(lrs) == pytest.approx(0.05, rel=1e-3)
    # An explicit max_lr still wins, as its name says.
    explicit = resolve_config("fcn8", info, {}, {"lr": 0.05, "schedule_options": {"max_lr": 0.2}}).config
    assert max(_lrs("onecycle", options=explicit.schedule_options, base=explicit.lr)) == pytest.approx(0.2, rel=1e-3)
