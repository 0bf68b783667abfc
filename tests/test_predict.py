"""`segtool predict`: outputs at the input's original size, formats, stdin/stdout, bad images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from _train_helpers import random_checkpoint
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", num_classes=3, seed=1)


@pytest.fixture
def images(tmp_path):
    """Odd sizes (fcn8 needs multiples of 32, so these are padded and cropped back)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    sizes = {"a.png": (37, 50), "b.jpg": (37, 50), "c.png": (45, 33)}  # (height, width)
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder, sizes


def test_index_color_and_overlay_at_original_size(cli, checkpoint, images, tmp_path):
    folder, sizes = images
    for fmt, mode in (("index", "P"), ("color", "RGB"), ("overlay", "RGB")):
        out = tmp_path / fmt
        result = cli("predict", checkpoint, folder, "--out-dir", out, "--format", fmt, "--batch-size", "2",
                     "--device", "cpu")
        assert result.exit_code == 0, result.stderr
        for name, (h, w) in sizes.items():
            img = Image.open(out / f"{name.rsplit('.', 1)[0]}.png")
            assert img.size == (w, h) and img.mode == mode, (fmt, name)
    labels = np.asarray(Image.open(tmp_path / "index" / "a.png"))
    assert labels.max() < 3  # palette PNG of class indices, readable as VOC-style labels
    # The colour PNG is the palette's colouring of the index PNG.
    colors = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0]], dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "color" / "a.png")), colors[labels])


def test_batched_equals_one_by_one(cli, checkpoint, images, tmp_path):
    folder, _ = images
    cli("predict", checkpoint, folder, "--out-dir", tmp_path / "batched", "--batch-size", "3", "--device", "cpu")
    cli("predict", checkpoint, folder, "--out-dir", tmp_path / "single", "--batch-size", "1", "--device", "cpu")
    for name in ("a.png", "b.png", "c.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "batched" / name)),
                              np.asarray(Image.open(tmp_path / "single" / name)))


def test_stdout_and_stdin(cli, checkpoint, images, tmp_path):
    folder, _ = images
    result = cli("predict", checkpoint, folder / "c.png", "-o", "-", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    img = Image.open(io.BytesIO(result.stdout_bytes))
    assert img.format == "PNG" and img.size == (33, 45)

    listing = f"{folder / 'a.png'}\n{folder / 'c.png'}\n"
    result = cli("predict", checkpoint, "-", "--out-dir", tmp_path / "from-stdin", "--device", "cpu", input=listing)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "from-stdin").iterdir()) == ["a.png", "c.png"]


def test_bad_inputs(cli, checkpoint, images, tmp_path):
    folder, _ = images
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = cli("predict", checkpoint, folder, "--out-dir", tmp_path / "o1", "--device", "cpu")
    assert result.exit_code == 1 and "broken.png" in result.stderr

    result = cli("predict", checkpoint, folder, "--out-dir", tmp_path / "o2", "--device", "cpu", "--skip-bad")
    assert result.exit_code == 0, result.stderr
    assert "skipped" in result.stderr and "broken.png" in result.stderr
    assert len(list((tmp_path / "o2").iterdir())) == 3

    # Existing outputs are kept unless --force.
    result = cli("predict", checkpoint, folder / "a.png", "--out-dir", tmp_path / "o2", "--device", "cpu")
    assert result.exit_code == 1 and "already exists" in result.stderr
    result = cli("predict", checkpoint, folder / "a.png", "--out-dir", tmp_path / "o2", "--device", "cpu", "--force")
    assert result.exit_code == 0, result.stderr

    result = cli("predict", checkpoint, folder / "a.png", folder / "c.png", "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and "exactly one input" in result.stderr
    result = cli("predict", checkpoint, folder / "a.png")
    assert result.exit_code == 2  # neither -o nor --out-dir
    result = cli("predict", checkpoint, tmp_path / "nope.png", "--out-dir", tmp_path / "o3")
    assert result.exit_code == 1 and "nope.png" in result.stderr


def test_refuses_to_overwrite_its_input_even_with_force(cli, checkpoint, images):
    folder, _ = images
    before = (folder / "a.png").read_bytes()
    for where in (("--out-dir", folder), ("-o", folder / "a.png")):
        result = cli("predict", checkpoint, folder / "a.png", *where, "--force", "--device", "cpu")
        assert result.exit_code == 1 and "would overwrite the input" in result.stderr, result.stderr
    assert (folder / "a.png").read_bytes() == before
