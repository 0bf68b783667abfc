"""Long work tells the truth: plain progress lines when stderr is not a terminal, an estimate of the
whole training run after its first steps, warnings when the recipe and the data disagree."""

from __future__ import annotations

import pytest

from segtool.core import console
from segtool.core.console import PlainProgress, format_duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_progress_prints_at_most_every_interval(capsys):
    clock = Clock()
    bar = PlainProgress(interval=30, clock=clock)
    task = bar.add_task("epoch 1/3", total=100, unit="batch")
    for _ in range(10):
        clock.now += 5
        bar.advance(task, 5)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1  # at 30 s, not at every step
    assert lines[0].startswith("epoch 1/3: 30/100  1.00 batch/s  ETA 1 min 10 s")


def test_plain_progress_shows_stats_and_open_totals(capsys):
    clock = Clock()
    bar = PlainProgress(interval=0, clock=clock)
    task = bar.add_task("voc-stats", total=None, stats="")
    clock.now = 2
    bar.update(task, advance=40, stats="loss 0.5")
    assert "voc-stats: 40  20 it/s  elapsed 2 s  loss 0.5" in capsys.readouterr().err


def test_progress_is_plain_off_a_terminal_and_silent_when_quiet():
    if console.console.is_terminal:
        pytest.skip("stderr is a terminal")
    with console.progress() as bar:
        assert isinstance(bar, PlainProgress)
    console.set_quiet(True)
    try:
        with console.progress() as bar:
            assert not isinstance(bar, PlainProgress)
    finally:
        console.set_quiet(False)


@pytest.mark.parametrize(("seconds", "text"), [(8.2, "8 s"), (95, "1 min 35 s"), (34800, "9 h 40 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_train_prints_estimate_progress_and_demo_notice(cli, tmp_path, tiny_demo):
    from _train_helpers import train_args

    args = train_args(tiny_demo, tmp_path / "run")
    args[args.index("--epochs") + 1] = "30"
    result = cli(*args, "--max-steps", "6", env={"SEGTOOL_PROGRESS_INTERVAL": "0"})
    assert result.exit_code == 0, result.stderr
    assert "estimate: ~" in result.stderr and "img/s" in result.stderr
    assert "epoch 1/30: " in result.stderr  # a plain progress line (stderr is not a terminal here)
    assert "validate: " in result.stderr
    # A make-demo-data folder gets the demo preset (engine.launch), with one notice; --epochs still wins.
    assert "is a segtool demo set: training with the demo preset" in result.stderr


def test_crop_larger_than_the_images_warns(cli, tmp_path):
    from test_real_layouts import make_bag

    data = make_bag(tmp_path / "bag", count=4, size=(30, 40))
    result = cli("train", "fcn8", "--data", data, "--binary", "--val-fraction", "0.25", "--crop", "64x64",
                 "--max-steps", "1", "--batch-size", "2", "--model-option", "width_mult=0.125", "--device", "cpu",
                 "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert "crop 64x64 is larger than most images (30x40 median)" in result.stderr
    assert "--crop 30x40" in result.stderr


def test_demo_preset_settings_on_a_real_folder_warn(cli, tmp_path):
    from test_real_layouts import make_bag

    data = make_bag(tmp_path / "bag", count=4, size=(64, 64))
    result = cli("train", "fcn8", "--data", data, "--binary", "--val-fraction", "0.25", "--crop", "64",
                 "--batch-size", "16", "--epochs", "4", "--max-steps", "1", "--model-option", "width_mult=0.125",
                 "--device", "cpu", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert "demo preset's settings" in result.stderr
