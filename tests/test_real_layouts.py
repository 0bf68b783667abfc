"""Datasets as they are published: the bag set's X/ + X_msk/ with grey JPEG masks and no lists,
SegNet's CamVid at 360x480-like sizes (not multiples of 32), explicit --images/--masks folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.data.folder import FolderLayout, detect_pair, folder_samples, split_pairs
from segtool.data.sources import detect_format, resolve_split

pytestmark = pytest.mark.usefixtures("one_thread")


def make_bag(root: Path, count: int = 10, size: tuple[int, int] = (30, 40)) -> Path:
    """bag_data/N.jpg + bag_data_msk/N.jpg: RGB photos and grey JPEG masks (a bright square, JPEG noise)."""
    rng = np.random.default_rng(0)
    (root / "bag_data").mkdir(parents=True)
    (root / "bag_data_msk").mkdir()
    h, w = size
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "bag_data" / f"{i}.jpg")
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
        Image.fromarray(mask, "L").save(root / "bag_data_msk" / f"{i}.jpg", quality=75)
    return root


def make_segnet_camvid(root: Path, counts=(4, 2, 2), size=(36, 48)) -> Path:
    """SegNet's CamVid layout: {split}/ + {split}annot/ grey PNGs (0..10, 11 void) and list files."""
    rng = np.random.default_rng(1)
    h, w = size
    for split, count in zip(("train", "val", "test"), counts, strict=True):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for i in range(count):
            name = f"{split}_{i:03d}.png"
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / split / name)
            labels = (np.arange(h * w).reshape(h, w) % 12).astype(np.uint8)
            Image.fromarray(labels, "L").save(root / f"{split}annot" / name)
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_bag_layout_detected_and_paired(tmp_path):
    root = make_bag(tmp_path / "bag")
    assert detect_format(root) == "folder"
    assert detect_pair(root) == (root / "bag_data", root / "bag_data_msk")
    samples = folder_samples(root, "train")
    assert len(samples) == 10 and all(m.parent.name == "bag_data_msk" for _, m in samples)
    # --data pointing at the image folder itself finds its _msk sibling
    assert detect_pair(root / "bag_data") == (root / "bag_data", root / "bag_data_msk")


def test_masks_with_another_extension(tmp_path):
    root = tmp_path / "d"
    for sub in ("img", "ann"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8)).save(root / "img" / f"a{i}.jpg")
        Image.new("L", (8, 8)).save(root / "ann" / f"a{i}.png")
    samples = folder_samples(root, "train")
    assert [(i.suffix, m.suffix) for i, m in samples] == [(".jpg", ".png")] * 3


def test_explicit_folders(tmp_path):
    root = make_bag(tmp_path / "bag", count=4)
    layout = FolderLayout(images=str(root / "bag_data"), masks=str(root / "bag_data_msk"))
    assert len(folder_samples(tmp_path, "train", layout)) == 4
    with pytest.raises(SegtoolError, match="--images folder not found"):
        folder_samples(root, "train", FolderLayout(images="nope", masks="bag_data_msk"))


def test_val_fraction_split_is_deterministic_and_disjoint(tmp_path):
    root = make_bag(tmp_path / "bag", count=20)
    layout = FolderLayout(val_fraction=0.1, split_seed=0)
    train = folder_samples(root, "train", layout)
    val = folder_samples(root, "val", layout)
    assert (len(train), len(val)) == (18, 2)
    assert not set(train) & set(val)
    assert folder_samples(root, "val", layout) == val  # same split every time
    other = folder_samples(root, "val", FolderLayout(val_fraction=0.1, split_seed=1))
    assert other != val
    with pytest.raises(SegtoolError, match="between 0 and 1"):
        split_pairs(train, 1.5, 0)
    with pytest.raises(SegtoolError, match="only train and val"):
        folder_samples(root, "test", layout)


def test_grey_jpeg_masks_thresholded_at_128(tmp_path):
    root = make_bag(tmp_path / "bag", count=2)
    files = resolve_split("folder", root, "train", binary=True)
    labels = files.decoder(files.samples[0][1])
    assert set(np.unique(labels).tolist()) == {0, 1}
    raw = np.array(Image.open(files.samples[0][1]))
    assert len(np.unique(raw)) > 2  # JPEG noise is really there
    assert (labels == (raw >= 128)).all()


def test_folders_that_do_not_pair_up(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.new("RGB", (8, 8)).save(root / "images" / "a.jpg")
    Image.new("L", (8, 8)).save(root / "masks" / "b.png")
    with pytest.raises(SegtoolError, match="do not pair up"):
        folder_samples(root, "train")
    Image.new("RGB", (8, 8)).save(root / "images" / "b.jpg")
    with pytest.raises(SegtoolError, match="a.jpg: no mask"):
        folder_samples(root, "train")


def test_mask_of_another_size_names_the_file(tmp_path):
    from segtool.data.datasets import build_dataset

    root = make_bag(tmp_path / "bag", count=2)
    Image.new("L", (5, 5)).save(root / "bag_data_msk" / "1.jpg")
    dataset = build_dataset("folder", root, "train", binary=True)
    with pytest.raises(SegtoolError, match="1.jpg: mask is 5x5"):
        dataset.read_sample(1)


def test_segnet_camvid_detected(tmp_path):
    root = make_segnet_camvid(tmp_path / "CamVid")
    assert detect_format(root) == "camvid"
    files = resolve_split("camvid", root, "train")
    assert len(files.samples) == 4 and files.palette.num_classes == 11


def test_val_fraction_option_validated():
    from segtool.engine.config_layers import resolve_config
    from segtool.models import get_model_info

    with pytest.raises(SegtoolError, match="--val-fraction"):
        resolve_config("fcn8", get_model_info("fcn8"), cli_values={"val_fraction": 1.0})


def test_voc_stats_reads_the_split_and_folders_train_uses(cli, tmp_path):
    root = make_bag(tmp_path / "bag", count=10)
    args = ("voc-stats", root, "--format", "folder", "--binary", "--workers", "1", "--json")
    held_out = json.loads(cli(*args, "--val-fraction", "0.2", "--split", "val").stdout)
    train = json.loads(cli(*args, "--val-fraction", "0.2", "--split", "train").stdout)
    assert (held_out["images"], train["images"]) == (2, 8)
    every = json.loads(cli(*args, "--val-fraction", "0.2", "--split", "all").stdout)
    assert every["images"] == 10 and every["splits"] == {"train": 8, "val": 2}
    explicit = cli("voc-stats", tmp_path, "--format", "folder", "--binary", "--workers", "1", "--json",
                   "--images", root / "bag_data", "--masks", root / "bag_data_msk")
    assert explicit.exit_code == 0, explicit.stderr
    assert json.loads(explicit.stdout)["images"] == 10


@pytest.mark.parametrize(("extra", "message"), [
    (("--val-fraction", "1.5"), "error: --val-fraction: must be between 0 and 1"),
    (("--images", "bag/bag_data"), "error: --images: --images and --masks go together"),
    (("--format", "camvid", "--val-fraction", "0.1"), "need --format folder"),
])
def test_voc_stats_layout_options_refused_cleanly(cli, tmp_path, extra, message):
    root = make_bag(tmp_path / "bag", count=4)
    result = cli("voc-stats", root, "--format", "folder", *extra)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
