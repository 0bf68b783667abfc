"""`segtool stylize --mask`: the predict | stylize pipeline, options, and one clear line for bad input."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from _train_helpers import random_checkpoint
from PIL import Image

from segtool.data.masks import label_image
from segtool.data.palettes import get_palette

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ("--random-weights", "--seed", "0", "--size", "32x48", "--steps", "2", "--device", "cpu")


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    content, style, mask = tmp_path / "photo.png", tmp_path / "starry.png", tmp_path / "labels.png"
    Image.fromarray((rng.random((32, 48, 3)) * 255).astype(np.uint8)).save(content)
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(style)
    labels = np.zeros((32, 48), np.uint8)
    labels[8:24, 16:40] = 15  # a VOC person
    label_image(labels, get_palette("voc")).save(mask)
    return content, style, mask


def _one_error_line(result, *fragments):
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_predict_pipes_its_mask_into_stylize(cli, files, tmp_path):
    content, style, _ = files
    checkpoint = random_checkpoint(tmp_path / "best.pt", num_classes=3, seed=1)
    predicted = cli("predict", checkpoint, content, "-o", "-", "--device", "cpu", "--quiet")
    assert predicted.exit_code == 0, predicted.stderr
    out = tmp_path / "out.png"
    # The demo checkpoint's classes are not VOC's, so the pipe names them by index.
    result = cli("stylize", content, "--mask", "-", "--style", "0=none", "--style-default", style,
                 "-o", out, "--json", *FAST, input=predicted.stdout_bytes)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {r["style"] for r in report["regions"]} >= {"none"}
    assert sum(r["pixels"] for r in report["regions"]) == 32 * 48
    with Image.open(out) as image:
        assert image.size == (48, 32)


def test_named_classes_from_a_palette_png(cli, files, tmp_path):
    content, style, mask = files
    out = tmp_path / "out.png"
    result = cli("stylize", content, "--mask", mask, "--style", "person=none", "--style", f"background={style}",
                 "--feather", "1.5", "--save-every", "1", "-o", out, "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(r["name"], r["style"]) for r in report["regions"]] == [("background", str(style)), ("person", "none")]
    assert report["feather"] == 1.5
    assert (tmp_path / "out.step0001.png").is_file() and (tmp_path / "out.step0002.png").is_file()
    # The person is the content (away from the feathered border), the background is not.
    got = np.asarray(Image.open(out), dtype=float)
    original = np.asarray(Image.open(content), dtype=float)
    assert np.abs(got[12:20, 22:34] - original[12:20, 22:34]).mean() < 1.0
    assert np.abs(got[:4] - original[:4]).mean() > 5.0


def test_other_size_mask_is_resized_with_a_warning_or_refused_with_strict(cli, files, tmp_path):
    content, style, _ = files
    small = tmp_path / "small.png"
    labels = np.zeros((16, 24), np.uint8)
    labels[:, 12:] = 15
    label_image(labels, get_palette("voc")).save(small)
    out = tmp_path / "out.png"
    result = cli("stylize", content, "--mask", small, "--style", f"person={style}", "-o", out, *FAST)
    assert result.exit_code == 0, result.stderr
    assert "16x24 differs from the content image 32x48; resized (nearest)" in result.stderr
    strict = tmp_path / "strict.png"
    result = cli("stylize", content, "--mask", small, "--style", f"person={style}", "--strict", "-o", strict, *FAST)
    assert result.exit_code == 1
    _one_error_line(result, "--mask", "16x24", "32x48", "--strict")
    assert not strict.exists()


@pytest.mark.parametrize("case", ["class", "style-file", "feather", "all-none", "not-mask", "empty-stdin"])
def test_bad_input_one_line_no_output(cli, files, tmp_path, case):
    content, style, mask = files
    out = tmp_path / "bad.png"
    args = ["stylize", content, "--mask", mask, "-o", out, *FAST]
    stdin = None
    if case == "class":
        args += ["--style", f"persn={style}"]
        expect = ("'persn'", "voc palette", "valid: background", "person")
    elif case == "style-file":
        args += ["--style", f"person={tmp_path / 'missing.jpg'}"]
        expect = ("missing.jpg", "not found")
    elif case == "feather":
        args += ["--style", f"person={style}", "--feather", "-2"]
        expect = ("--feather", "non-negative")
    elif case == "all-none":
        args += ["--style", "person=none"]
        expect = ("every region", "--style-default")
    elif case == "not-mask":
        fake = tmp_path / "fake.png"
        fake.write_text("hello")
        args[3] = fake
        args += ["--style", f"person={style}"]
        expect = ("fake.png", "not an image")
    else:
        args[3] = "-"
        args += ["--style", f"person={style}"]
        stdin, expect = b"", ("nothing on stdin",)
    result = cli(*args, input=stdin)
    assert result.exit_code == (2 if case == "feather" else 1), result.stderr  # a bad option value: usage, 2
    _one_error_line(result, *expect)
    assert not out.exists()
    assert result.stderr.startswith("error:"), result.stderr  # refused before any work


def test_option_clashes_exit_2(cli, files, tmp_path):
    content, style, mask = files
    out = str(tmp_path / "o.png")
    assert cli("stylize", content, style, "--mask", mask, "-o", out, *FAST).exit_code == 2
    assert cli("stylize", content, style, "--style", f"person={style}", "-o", out, *FAST).exit_code == 2
    assert cli("stylize", content, "-o", out, *FAST).exit_code == 2
    assert cli("stylize", content, "--mask", mask, "--style", "person", "-o", out, *FAST).exit_code == 2
    assert cli("stylize", content, "--mask", mask, "--style", f"person={style}", "--style-blend", "1",
               "-o", out, *FAST).exit_code == 2
    assert not (tmp_path / "o.png").exists()


def test_stdout_output_with_mask(cli, files):
    content, style, mask = files
    result = cli("stylize", content, "--mask", mask, "--style", f"person={style}", "-o", "-", "--quiet", *FAST)
    assert result.exit_code == 0, result.stderr
    with Image.open(io.BytesIO(result.stdout_bytes)) as image:
        assert image.size == (48, 32)


def test_style_mask_option_resizes_with_a_warning(cli, files, tmp_path):
    content, style, _ = files
    mask = files[2]
    style_mask = tmp_path / "style_labels.png"
    labels = np.zeros((20, 20), np.uint8)
    labels[10:] = 15
    label_image(labels, get_palette("voc")).save(style_mask)
    out = tmp_path / "out.png"
    result = cli("stylize", content, "--mask", mask, "--style", f"person={style}", "--style-default", style,
                 "--style-mask", style_mask, "-o", out, "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    assert "--style-mask: 20x20 differs from" in result.stderr and "resized (nearest)" in result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["regions"]] == ["background", "person"]
    strict = cli("stylize", content, "--mask", mask, "--style", f"person={style}", "--style-mask", style_mask,
                 "--strict", "-o", tmp_path / "strict.png", *FAST)
    assert strict.exit_code == 1 and "--style-mask" in strict.stderr and not (tmp_path / "strict.png").exists()
