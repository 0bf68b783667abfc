"""Where the data is: format detection, the --data/--format decision, and checkpoint data sources."""

from __future__ import annotations

import numpy as np
import pytest

from segtool.core.errors import SegtoolError
from segtool.data.demo import make_demo_dataset
from segtool.data.sources import DataSource, detect_format, find_data_source, resolve_split
from segtool.data.stats import count_class_pixels
from segtool.engine.checkpoint import source_for_checkpoint, window_for_checkpoint

DEMO = {"train": 2, "val": 1, "size": 32, "classes": 2}


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("sources") / "demo", **DEMO)


def test_detect_format_reads_the_folder_layout(tmp_path, demo_root):
    assert detect_format(demo_root) == "demo"
    (tmp_path / "f" / "images").mkdir(parents=True)
    assert detect_format(tmp_path / "f") == "folder"
    assert detect_format(tmp_path) == "camvid"


def test_find_data_source_falls_back_to_the_demo_set(tmp_path, monkeypatch, demo_root):
    monkeypatch.setenv("SEGTOOL_DATA", str(tmp_path / "no-data"))
    fallback = find_data_source(None, "auto", DEMO)
    assert (fallback.format, fallback.root, fallback.demo) == ("demo", None, DEMO) and "demo set" in fallback.note
    assert find_data_source(str(demo_root), "auto", DEMO) == DataSource("demo", demo_root)
    with pytest.raises(SegtoolError, match="dataset not found"):
        find_data_source(str(tmp_path / "missing"), "auto", DEMO)
    with pytest.raises(SegtoolError, match="needs --data"):
        find_data_source(None, "camvid", DEMO)


def test_checkpoint_data_dict_round_trips_and_can_be_overridden(demo_root):
    source = DataSource("demo", demo_root, DEMO)
    ckpt = {"data": {"format": "demo", "root": str(demo_root), "demo": DEMO}}  # as written before this layout
    assert source.to_dict() == ckpt["data"]
    assert source_for_checkpoint(ckpt) == source
    assert source_for_checkpoint(ckpt, data=str(demo_root)) == DataSource("demo", demo_root)
    assert source_for_checkpoint(ckpt, fmt="demo").root is None  # --format demo: the cached default set


def test_window_for_checkpoint_defaults_to_the_training_crop():
    ckpt = {"config": {"crop": [96, 60]}}
    assert window_for_checkpoint(ckpt, False, (8, 8)) == (None, None)
    assert window_for_checkpoint(ckpt, True) == ((96, 60), (64, 40))
    assert window_for_checkpoint(ckpt, True, (30, 30), (10, 20)) == ((30, 30), (10, 20))
    assert window_for_checkpoint({"config": {}}, True) == ((512, 512), (341, 341))


def test_count_class_pixels_matches_a_hand_count(demo_root):
    masks = [np.array([[0, 0, 1], [255, 1, 1]], np.uint8), np.array([[0, 0], [0, 255]], np.uint8)]
    pixels, pixels_of_images_with = count_class_pixels(masks, 3)
    assert pixels.tolist() == [5, 3, 0]
    assert pixels_of_images_with.tolist() == [10, 6, 0]
    files = resolve_split("demo", demo_root, "train")
    pixels, _ = count_class_pixels((files.decoder(mask) for _, mask in files.samples), 3)
    assert pixels.sum() > 0
