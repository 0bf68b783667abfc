"""Built-in demo data: layout, determinism, atomic cached generation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.data.demo import ensure_demo_dataset, make_demo_dataset


def test_layout_masks_and_determinism(tmp_path):
    a = make_demo_dataset(tmp_path / "a", train=3, val=2, size=64, classes=4, seed=7)
    b = make_demo_dataset(tmp_path / "b", train=3, val=2, size=64, classes=4, seed=7)
    lists = a / "ImageSets" / "Segmentation"
    assert len(lists.joinpath("train.txt").read_text().split()) == 3
    assert len(lists.joinpath("val.txt").read_text().split()) == 2
    assert len(lists.joinpath("trainval.txt").read_text().split()) == 5
    seen = set()
    for name in lists.joinpath("trainval.txt").read_text().split():
        mask = Image.open(a / "SegmentationClass" / f"{name}.png")
        assert mask.mode == "P" and mask.size == (64, 64)
        assert Image.open(a / "JPEGImages" / f"{name}.jpg").size == (64, 64)
        values = np.array(mask)
        seen |= set(np.unique(values).tolist())
        assert (values == np.array(Image.open(b / "SegmentationClass" / f"{name}.png"))).all()
    assert 255 in seen and seen <= {0, 1, 2, 3, 4, 255} and len(seen - {0, 255}) >= 2
    c = make_demo_dataset(tmp_path / "c", train=3, val=2, size=64, classes=4, seed=8)
    assert (a / "JPEGImages/demo_00000.jpg").read_bytes() != (c / "JPEGImages/demo_00000.jpg").read_bytes()


def test_void_band_is_thin_and_objects_are_large(tmp_path):
    root = make_demo_dataset(tmp_path / "d", train=12, val=0, size=96, classes=5)
    fractions, voids = [], []
    for path in sorted((root / "SegmentationClass").glob("*.png")):
        values = np.array(Image.open(path))
        fractions.append(np.isin(values, [1, 2, 3, 4, 5]).mean())
        voids.append((values == 255).mean())
    assert 0.08 < np.mean(fractions) < 0.6
    assert 0 < np.mean(voids) < 0.1


def test_refuses_non_demo_dir_and_replaces_with_force(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(SegtoolError, match="not empty"):
        make_demo_dataset(tmp_path / "x", train=1, val=0, size=32, classes=1)
    with pytest.raises(SegtoolError, match="not a segtool demo set"):
        make_demo_dataset(tmp_path / "x", train=1, val=0, size=32, classes=1, force=True)
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
    make_demo_dataset(tmp_path / "y", train=1, val=0, size=32, classes=1)
    make_demo_dataset(tmp_path / "y", train=2, val=0, size=32, classes=1, force=True)
    assert len(list((tmp_path / "y" / "JPEGImages").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_ensure_demo_dataset_caches_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_CACHE", str(tmp_path / "cache"))
    first = ensure_demo_dataset(train=2, val=1, size=32, classes=2)
    stamp = (first / "demo.json").stat().st_mtime_ns
    assert ensure_demo_dataset(train=2, val=1, size=32, classes=2) == first
    assert (first / "demo.json").stat().st_mtime_ns == stamp
    assert first.parent == tmp_path / "cache"
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]


def test_bad_parameters():
    with pytest.raises(SegtoolError, match="classes"):
        make_demo_dataset("/nonexistent/never", train=1, val=0, size=64, classes=30)
