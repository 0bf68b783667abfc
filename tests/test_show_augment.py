"""`segtool show-augment`: the samples training feeds, reproducible per epoch, drawn as a titled grid."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from segtool.data.augment_trace import format_params
from segtool.engine.augment_samples import TrainingSamples, to_uint8
from segtool.engine.builders import build_data
from segtool.engine.distributed import DistInfo
from segtool.engine.launch import plan_training
from segtool.viz.augment_grid import grid_size

pytestmark = pytest.mark.usefixtures("one_thread")

AUGMENT = ("--crop", "32", "--scale", "0.5,2.0", "--rotation", "15", "--color-jitter", "0.5", "--hflip",
           "--vflip", "--workers", "0")
VALUES = {"format": "demo", "crop": [32, 32], "scale": [0.5, 2.0], "rotation": 15.0, "color_jitter": 0.5,
          "hflip": True, "vflip": True, "workers": 0, "batch_size": 4}


def _plan(data, **overrides):
    return plan_training("fcn8", {"data": str(data), **VALUES, **overrides}, create_dir=False)


def test_samples_are_what_the_training_loader_yields(tiny_demo):
    plan = _plan(tiny_demo)
    drawn = TrainingSamples(plan.resolved.config, plan.source).first(4, epoch=2)
    # The real thing: a fresh build of training's data, its loader's first batch of epoch 2 (0-based 1).
    data = build_data(plan.resolved.config, plan.source.materialise(), DistInfo(), torch.device("cpu"), 32)
    data.sampler.set_epoch(1)
    images, masks, _sizes = next(iter(data.train))
    assert torch.equal(torch.stack([s.image for s in drawn]), images)
    assert torch.equal(torch.stack([s.mask for s in drawn]), masks)


def test_same_epoch_same_pixels_other_epoch_other_draw(tiny_demo):
    plan = _plan(tiny_demo)
    first = TrainingSamples(plan.resolved.config, plan.source)
    again = TrainingSamples(plan.resolved.config, plan.source)
    a, b = first.sample(3, epoch=1), again.sample(3, epoch=1)
    assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask) and a.params == b.params
    other = first.sample(3, epoch=2)
    assert not torch.equal(a.image, other.image) and a.params != other.params
    assert first.order(1) != first.order(2) and sorted(first.order(1)) == list(range(len(first)))


def test_crop_box_is_where_the_pixels_come_from(tiny_demo):
    # No scale, rotation, jitter or flips: the sample is the original image at the recorded box.
    plan = _plan(tiny_demo, scale=None, rotation=0.0, color_jitter=0.0, hflip=False, vflip=False, crop=[16, 24])
    samples = TrainingSamples(plan.resolved.config, plan.source)
    sample = samples.sample(5, epoch=1)
    top, left, height, width = sample.params["crop"]
    assert (height, width) == (16, 24) and sample.params["pad"] is None
    original, labels = samples.dataset.read_sample(5)
    assert np.array_equal(to_uint8(sample.image, None), original[top:top + height, left:left + width])
    assert np.array_equal(sample.mask.numpy(), labels[top:top + height, left:left + width])


def test_titles_name_the_sample_and_parameters(tiny_demo):
    plan = _plan(tiny_demo)
    sample = TrainingSamples(plan.resolved.config, plan.source).sample(2, epoch=1)
    title = sample.title()
    assert title[0] == "#2 demo_00002 · epoch 1"
    assert title[1].startswith("scale ") and "rot " in title[1]
    assert title[2].startswith("crop y") and "32x32" in title[2]
    assert title[3].startswith("jitter b")
    params = {"scale": 1.5, "rotation": -3.25, "crop": [-2, 5, 32, 32], "pad": [2, 2, 2, 2], "hflip": True,
              "vflip": False, "jitter": {"brightness": 1.1, "contrast": 0.9, "order": ["contrast", "brightness"]}}
    assert format_params(params) == ["scale 1.50 · rot -3.2°", "crop y-2 x5 32x32 +pad · hflip", "jitter b1.10 c0.90"]
    assert format_params({}) == ["no scale/rotation", "no crop", "no colour jitter"]


def test_grid_png_size_reproducible_and_epoch_dependent(cli, tiny_demo, tmp_path):
    out = [tmp_path / name for name in ("a.png", "b.png", "c.png")]
    for path, epoch in zip(out, (1, 1, 2), strict=True):
        result = cli("show-augment", tiny_demo, "--format", "demo", *AUGMENT, "-n", 6, "--epoch", epoch,
                     "--columns", 4, "-o", path)
        assert result.exit_code == 0, result.stderr
    pixels = [np.asarray(Image.open(path)) for path in out]
    assert pixels[0].shape[1::-1] == grid_size(6, (32, 32), 4)
    # 32-px crops are enlarged 5x (to >= 160 px); 4 cells in the first row, 2 in the second.
    width, height = grid_size(6, (32, 32), 4)
    assert width == 4 * ((2 * 32 + 1) * 5 + 4) + 4
    assert np.array_equal(pixels[0], pixels[1])
    assert not np.array_equal(pixels[0], pixels[2])


def test_json_index_and_term(cli, tiny_demo):
    result = cli("show-augment", tiny_demo, "--format", "demo", *AUGMENT, "--index", "1,6", "--json", "-o",
                 "/dev/null", "--force")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["index"] for s in report["samples"]] == [1, 6] and report["epoch"] == 1
    assert set(report["samples"][0]["params"]) >= {"scale", "rotation", "crop", "hflip", "vflip", "jitter"}
    term = cli("show-augment", tiny_demo, "--format", "demo", *AUGMENT, "-n", 2, "--term")
    assert term.exit_code == 0, term.stderr
    assert "▀" in term.stdout and term.stdout.count("epoch 1") == 2


def test_stdout_png(cli, tiny_demo):
    result = cli("show-augment", tiny_demo, "--format", "demo", *AUGMENT, "-n", 2, "-o", "-", "--quiet")
    assert result.exit_code == 0, result.stderr
    with Image.open(io.BytesIO(result.stdout_bytes)) as image:
        assert image.size == grid_size(2, (32, 32), 4)


@pytest.mark.parametrize("case", ["recipe-key", "missing-data", "index", "epoch-zero"])
def test_bad_input_one_line_no_output(cli, tiny_demo, tmp_path, case):
    out = tmp_path / "grid.png"
    args = ["show-augment", tiny_demo, "--format", "demo", *AUGMENT, "-o", out]
    if case == "recipe-key":
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text("crop: 32\nflipz: true\n")
        args += ["--config", recipe]
        expect, code = ("recipe.yaml", "unknown option 'flipz'", "valid keys"), 1
    elif case == "missing-data":
        args[1] = tmp_path / "nowhere"
        expect, code = ("nowhere", "not found"), 1
    elif case == "index":
        args += ["--index", "99"]
        expect, code = ("--index 99", "8 samples"), 1
    else:
        args += ["--epoch", "0"]
        expect, code = ("--epoch",), 2
    result = cli(*args)
    assert result.exit_code == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert all(fragment in lines[0] for fragment in expect), lines[0]
    assert not out.exists()
