"""--amp on the CPU (bf16 autocast, what examples/camvid_cpu.yaml trains with) and its slow-CPU warning."""

from __future__ import annotations

import json

import pytest
import torch
from _train_helpers import train_args

pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_amp_channels_last_on_cpu_then_evaluate(cli, tmp_path, tiny_demo):
    run = tmp_path / "run"
    result = cli(*train_args(tiny_demo, run, "--max-steps", "3", "--amp", "--channels-last"))
    assert result.exit_code == 0, result.stderr
    checkpoint = torch.load(run / "last.pt", weights_only=True, map_location="cpu")
    assert not checkpoint["scaler"], "bf16 needs no GradScaler"
    weights = [v for v in checkpoint["model"].values() if v.is_floating_point()]
    assert all(v.dtype == torch.float32 for v in weights), "autocast keeps fp32 master weights"
    assert all(torch.isfinite(v).all() for v in weights)

    result = cli("evaluate", run / "last.pt", "--data", tiny_demo, "--format", "demo", "--json")
    assert result.exit_code == 0, result.stderr
    assert 0.0 <= json.loads(result.stdout)["miou"] <= 1.0


@pytest.mark.parametrize("native", [True, False])
def test_amp_warns_only_where_cpu_bf16_is_emulated(cli, tmp_path, tiny_demo, monkeypatch, native):
    from segtool.engine import speed

    monkeypatch.setattr(speed, "cpu_bf16_is_native", lambda: native)
    result = cli(*train_args(tiny_demo, tmp_path / "run", "--max-steps", "1", "--amp"))
    assert result.exit_code == 0, result.stderr
    warned = "no native bf16" in result.stderr and "drop --amp" in result.stderr
    assert warned is (not native)


def test_no_warning_without_amp_or_off_the_cpu(monkeypatch, capsys):
    from segtool.engine import speed

    monkeypatch.setattr(speed, "cpu_bf16_is_native", lambda: False)
    speed.warn_slow_amp(torch.device("cpu"), False)
    speed.warn_slow_amp(torch.device("cuda"), True)
    assert "bf16" not in capsys.readouterr().err
    speed.warn_slow_amp(torch.device("cpu"), True)  # the same capture does see the warning
    assert "no native bf16" in capsys.readouterr().err
