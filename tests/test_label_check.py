"""The shared label check: one line per finding, with the command that fixes it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_real_layouts import make_bag, make_segnet_camvid

from segtool.core.errors import SegtoolError
from segtool.data.folder import FolderLayout
from segtool.data.label_check import check_dataset, spread


def messages(check, level):
    return [f.message for f in check.findings if f.level == level]


def test_grey_jpeg_masks_need_binary(tmp_path):
    root = make_bag(tmp_path / "bag", count=6)
    check = check_dataset("folder", root, command="segtool train fcns --data bag")
    (error,) = messages(check, "error")
    assert "distinct values" in error and "segtool train fcns --data bag --binary" in error
    assert "--tolerance" in error
    with pytest.raises(SegtoolError, match="label check"):
        check.report()
    assert not check_dataset("folder", root, binary=True, layout=FolderLayout(val_fraction=0.5)).errors


def test_zero_255_png_masks_without_binary(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 255
    for i in range(2):
        Image.new("RGB", (8, 8)).save(root / "images" / f"{i}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    (error,) = messages(check_dataset("folder", root, command="X"), "error")
    assert "only 0 and 255" in error and "X --binary" in error


def test_colour_masks_without_palette(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.new("RGB", (8, 8)).save(root / "images" / "a.jpg")
    Image.new("RGB", (8, 8), (128, 0, 0)).save(root / "masks" / "a.png")
    (error,) = messages(check_dataset("folder", root, command="X"), "error")
    assert "RGB colour mask but no palette" in error and "X --palette" in error


def test_label_values_beyond_the_classes_and_absent_val_classes(tmp_path):
    root = make_segnet_camvid(tmp_path / "CamVid", counts=(2, 1, 1))
    Image.fromarray(np.full((36, 48), 14, np.uint8)).save(root / "trainannot" / "train_000.png")
    Image.fromarray(np.zeros((36, 48), np.uint8)).save(root / "valannot" / "val_000.png")
    check = check_dataset("camvid", root, command="X")
    assert any("label 14 but the dataset has 11 classes" in m for m in messages(check, "error"))
    Image.fromarray(np.ones((36, 48), np.uint8)).save(root / "trainannot" / "train_000.png")
    check = check_dataset("camvid", root, command="X")
    assert not check.errors
    (warning,) = messages(check, "warning")
    assert "appear in the train masks but in none of the 1 val masks" in warning and "Building" in warning


def test_same_images_for_train_and_val_and_orphan_masks(tmp_path):
    root = make_bag(tmp_path / "bag", count=4)
    Image.new("L", (40, 30)).save(root / "bag_data_msk" / "99.png")
    check = check_dataset("folder", root, binary=True, command="X")
    warnings = messages(check, "warning")
    assert any("X --val-fraction 0.1" in w for w in warnings)
    assert any("99.png: 1 masks" in w for w in warnings)


def test_mask_size_mismatch_is_an_error(tmp_path):
    root = make_bag(tmp_path / "bag", count=3)
    Image.new("L", (5, 5)).save(root / "bag_data_msk" / "1.jpg")
    check = check_dataset("folder", root, binary=True)
    assert any("1.jpg: mask is 5x5" in m for m in messages(check, "error"))


def test_spread_keeps_ends():
    assert spread(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert spread([1, 2], 5) == [1, 2]


def test_train_stops_before_the_run_dir(cli, tmp_path):
    root = make_bag(tmp_path / "bag", count=4)
    out = tmp_path / "run"
    result = cli("train", "fcn8", "--data", root, "--out", out, "--device", "cpu")
    assert result.exit_code == 1
    assert "error: label check:" in result.stderr and "--binary" in result.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written (absent once run dirs are made late)


def test_voc_stats_reports_binary_hint(cli, tmp_path):
    root = make_bag(tmp_path / "bag", count=3)
    result = cli("voc-stats", root, "--format", "folder", "--workers", "1", "--json")
    assert result.exit_code == 0, result.stderr
    assert "--binary" in result.stderr
    result = cli("voc-stats", root, "--format", "folder", "--workers", "1", "--json", "--binary")
    assert result.exit_code == 0, result.stderr
    assert "label check" not in result.stderr  # thresholded: nothing left to warn about
