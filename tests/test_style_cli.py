"""`segtool stylize` end to end: outputs, snapshots, weights, and one clear line for bad input."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

FAST = ("--random-weights", "--seed", "0", "--size", "32x48", "--steps", "2", "--device", "cpu")


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "content.jpg"
    style = tmp_path / "style.png"
    Image.fromarray((rng.random((60, 90, 3)) * 255).astype(np.uint8)).save(content)
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(style)
    return content, style


def _one_error_line(result, *fragments):
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_writes_png_of_requested_size_and_json(cli, images, tmp_path):
    content, style = images
    out = tmp_path / "out.png"
    result = cli("stylize", content, style, "-o", out, "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (48, 32)
    report = json.loads(result.stdout)
    assert report["size"] == [32, 48] and report["random_weights"] is True
    assert set(report["losses"]) == {"content", "style", "tv", "total"}
    assert report["stages"][0]["steps"] == 2 and report["seconds"]["total"] > 0
    assert report["config"]["tv_smoothing"] == 0.0  # adam: d2l's exact TV
    assert "not artistic" in result.stderr


def test_lbfgs_with_tv_smoothing_option(cli, images, tmp_path):
    content, style = images
    out = tmp_path / "out.png"
    result = cli("stylize", content, style, "-o", out, "--json", *FAST, "--optimizer", "lbfgs",
                 "--tv-smoothing", "0.1")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["config"]["tv_smoothing"] == 0.1 and report["config"]["optimizer"] == "lbfgs"
    assert out.is_file()


def test_existing_output_needs_force(cli, images, tmp_path):
    content, style = images
    out = tmp_path / "out.png"
    out.write_bytes(b"keep")
    result = cli("stylize", content, style, "-o", out, *FAST)
    assert result.exit_code == 1
    _one_error_line(result, "already exists", "--force")
    assert out.read_bytes() == b"keep"
    assert cli("stylize", content, style, "-o", out, "--force", *FAST).exit_code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dash_writes_png_to_stdout(cli, images):
    content, style = images
    result = cli("stylize", content, style, "-o", "-", "--quiet", *FAST)
    assert result.exit_code == 0, result.stderr
    with Image.open(io.BytesIO(result.stdout_bytes)) as image:
        assert image.format == "PNG" and image.size == (48, 32)


def test_intermediate_saves_and_two_styles(cli, images, tmp_path):
    content, style = images
    out = tmp_path / "blend.png"
    result = cli("stylize", content, style, style, "--style-blend", "0.7,0.3", "--save-every", "2",
                 "--optimizer", "lbfgs", "-o", out, *FAST, "--steps", "4")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("blend*.png")) == [
        "blend.png", "blend.step0002.png", "blend.step0004.png"]
    with Image.open(tmp_path / "blend.step0002.png") as image:
        assert image.size == (48, 32)


def test_offline_missing_weights_is_quick_clear_error(cli, images, tmp_path):
    content, style = images
    started = time.perf_counter()
    result = cli("stylize", content, style, "-o", tmp_path / "o.png", "--steps", "1",
                 env={"TORCH_HOME": str(tmp_path / "torch")})
    assert time.perf_counter() - started < 15
    assert result.exit_code == 1
    _one_error_line(result, "vgg19-dcbb9e9d.pth", str(tmp_path / "torch" / "hub" / "checkpoints"),
                    "--weights", "--random-weights")
    assert not (tmp_path / "o.png").exists()


def test_weights_file_in_torchvision_format_loads(cli, images, tmp_path):
    from segtool.style import load_vgg19

    content, style = images
    torch.manual_seed(0)
    shallow = load_vgg19(["conv1_2"], random_weights=True)
    state = {f"features.{k}": v for k, v in shallow.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the rest of a torchvision checkpoint is ignored
    for legacy in (False, True):  # torchvision's own vgg19 file predates torch's zip format
        weights = tmp_path / f"vgg{int(legacy)}.pth"
        torch.save(state, weights, _use_new_zipfile_serialization=not legacy)
        out = tmp_path / f"w{int(legacy)}.png"
        result = cli("stylize", content, style, "-o", out, "--weights", weights,
                     "--content-layers", "conv1_2", "--style-layers", "conv1_1, relu1_1",
                     "--size", "32x48", "--steps", "2", "--device", "cpu")
        assert result.exit_code == 0, result.stderr
        assert out.exists()
    # A file that is not a VGG-19 state dict is one clear error.
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"nope")
    result = cli("stylize", content, style, "-o", tmp_path / "b.png", "--weights", bogus, "--steps", "1")
    _one_error_line(result, "bogus.pth", "not a readable PyTorch weight file")


@pytest.mark.parametrize("case", ["not-image", "blend", "layer", "memory", "init"])
def test_bad_input_one_line_no_output(cli, images, tmp_path, case):
    content, style = images
    out = tmp_path / "bad.png"
    args = ["stylize", content, style, "-o", out, *FAST]
    if case == "not-image":
        fake = tmp_path / "fake.jpg"
        fake.write_text("hello")
        args[1] = fake
        expect = ("fake.jpg", "not an image")
    elif case == "blend":
        args += ["--style-blend", "0.5,0.3,0.2"]
        expect = ("--style-blend", "3 weight(s) for 1 style")
    elif case == "layer":
        args += ["--style-layers", "conv1_1,conv6_1"]
        expect = ("conv6_1", "valid:", "relu5_4")
    elif case == "memory":
        args += ["--size", "60000x90000"]
        expect = ("--size 60000x90000", "needs about", "GiB", "free", "--scales")
    else:
        args += ["--init", str(tmp_path / "missing.png")]
        expect = ("missing.png", "not found")
    result = cli(*args)
    assert result.exit_code == 1, result.stderr
    _one_error_line(result, *expect)
    assert not out.exists()
    if case in ("not-image", "init"):  # inputs are read before the device is announced
        assert result.stderr.startswith("error:"), result.stderr


def test_bad_option_values_exit_2(cli, images, tmp_path):
    content, style = images
    assert cli("stylize", content, style, "--size", "huge", *FAST[:3]).exit_code == 2
    assert cli("stylize", content, style, "-o", "-", "--json", *FAST).exit_code == 2
    assert cli("stylize", content, style, "-o", "-", "--save-every", "1", *FAST).exit_code == 2
    assert cli("stylize", content, style, "--weights", content, *FAST).exit_code == 2
    assert cli("stylize", content, style, "--tv-smoothing", "-1", *FAST).exit_code == 2


def test_grey_and_rgba_inputs_work(cli, tmp_path):
    rng = np.random.default_rng(1)
    grey = tmp_path / "grey.png"
    rgba = tmp_path / "rgba.png"
    Image.fromarray((rng.random((40, 60)) * 255).astype(np.uint8)).save(grey)
    Image.fromarray((rng.random((40, 40, 4)) * 255).astype(np.uint8)).save(rgba)
    result = cli("stylize", grey, rgba, "-o", tmp_path / "o.png", *FAST)
    assert result.exit_code == 0, result.stderr
    with Image.open(tmp_path / "o.png") as image:
        assert image.mode == "RGB"
